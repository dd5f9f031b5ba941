//! One libFuzzer binary for every target; `RECSYS_FUZZ_TARGET` names the target (set by
//! `cargo xtask fuzz --target NAME`). The targets are the library crates' own entry points,
//! the same functions the smoke test (`tests/fuzz_smoke.rs`) feeds.
#![no_main]

use std::sync::OnceLock;

fn target() -> fn(&[u8]) {
    static RUN: OnceLock<fn(&[u8])> = OnceLock::new();
    *RUN.get_or_init(|| {
        let name = std::env::var("RECSYS_FUZZ_TARGET").unwrap_or_default();
        match targets().find(|t| t.name == name) {
            Some(t) => t.run,
            None => {
                let names: Vec<&str> = targets().map(|t| t.name).collect();
                eprintln!(
                    "RECSYS_FUZZ_TARGET={name:?} names no target of this build: {}",
                    names.join(", ")
                );
                std::process::exit(2);
            }
        }
    })
}

#[cfg(feature = "train")]
fn targets() -> impl Iterator<Item = &'static recsys_data::fuzz::Target> {
    recsys_train::fuzz::all()
}

#[cfg(not(feature = "train"))]
fn targets() -> impl Iterator<Item = &'static recsys_data::fuzz::Target> {
    recsys_data::fuzz::TARGETS.iter()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    target()(data);
});
