//! Integration tests of the `recsys` library (one test binary, modules by topic).
//! Quality tests read real MovieLens data from `$RECSYS_DATA_DIR` and print a note when it is absent.

mod common;
mod contract;
mod data;
mod fuzz_smoke;
mod quality;
mod ranking_quality;
mod serve;
