//! # recsys-data
//!
//! Files in, [`Interactions`] + [`IdMap`] out: loaders for every MovieLens release and generic
//! delimited files, filters, seeded splits, per-user histories, negative sampling, statistics,
//! a MovieLens-shaped synthetic generator and the download of the official releases.
//!
//! Nothing here knows about tensors: the data flows one way, from this crate to the models.

pub mod error;
pub mod fetch;
pub mod filter;
pub mod fuzz;
pub mod history;
pub mod interactions;
pub mod io;
pub mod load;
mod parse;
pub mod source;
pub mod split;
pub mod stats;
pub mod synth;

pub use error::{DataError, Result};
pub use filter::{NormalizeKind, Normalizer};
pub use history::{NegativeSampler, TestCase, TestNegatives, UserHistory, UserRows};
pub use interactions::{Dataset, IdMap, Interactions, ItemInfo, Remapped, Vocab};
pub use load::{
    DelimitedSpec, Duplicates, Format, LoadOptions, detect, load, load_with_ids, ml100k_fold,
};
pub use source::{DEFAULT_SOURCE, open};
pub use split::{Size, Split, SplitKind, SplitMethod, k_fold, split};
pub use stats::{Stats, stats};

#[cfg(test)]
mod tests;
