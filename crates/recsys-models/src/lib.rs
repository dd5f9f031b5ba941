//! Recommender models on Burn: one file per model family, all generic over the runtime
//! [`Device`](burn::tensor::Device) (no model names a backend), no file IO.
//!
//! - [`traits`]: [`Scorer`], [`Retriever`] and [`RatingModel`], what the trainer and the CLI call.
//! - [`losses`]: MSE, masked MSE and numerically stable binary cross-entropy.
//! - [`embedding`]: an embedding table whose lookup is a `gather` (parallel backward on GPUs).
//! - [`mf`]: matrix factorisation ([`Mf`]).

pub use burn;

pub mod embedding;
pub mod error;
pub mod losses;
pub mod mf;
pub mod traits;

pub use embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
pub use error::{ModelError, Result};
pub use mf::{Mf, MfConfig, MfOutput};
pub use traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer};
