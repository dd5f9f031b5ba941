//! Recommender models on Burn: one file per model family, all generic over the runtime
//! [`Device`](burn::tensor::Device) (no model names a backend), no file IO.
//!
//! - [`traits`]: [`Scorer`], [`Retriever`] and [`RatingModel`], what the trainer and the CLI call.
//! - [`losses`]: MSE, masked MSE and numerically stable binary cross-entropy.
//! - [`embedding`]: an embedding table whose lookup is a `gather` (parallel backward on GPUs).
//! - [`fused`]: operations done in one pass on the CPU backends, each with its own backward
//!   (looked-up row pairs, dense layers).
//! - [`layers`]: activations as data, kernel L1 / L2 sums.
//! - [`mf`]: matrix factorisation ([`Mf`]).
//! - [`recommender_net`]: concatenated embeddings + dense layers ([`RecommenderNet`]).
//! - [`regressor`]: a dense regressor on frozen MF embeddings ([`Regressor`]).
//! - [`ncf`]: GMF, MLP and NeuMF ([`Ncf`]), from ids or from rating vectors.
//! - [`two_tower`]: a two-tower retrieval model with in-batch softmax ([`TwoTower`]).
//! - [`autorec`]: user- and item-based AutoRec ([`AutoRec`]).

pub use burn;

pub mod embedding;
pub mod error;
pub mod fused;
pub mod layers;
pub mod losses;
pub mod traits;

/// The model families, one line each: `module: Variant("family tag" | "older tags")`. The module
/// is a file here (the model) and a file of the same name in `recsys-train`'s `family/` (its
/// [`Family`](../recsys_train/family/trait.Family.html) implementation, whose `Config` type is the
/// `[model]` table); the tag names the family in a run's `config.toml`. `$callback` receives the
/// list after a `($)` token tree (a `$` for the macros it defines): this crate declares the
/// modules with it, `recsys-train` generates its registry.
#[macro_export]
macro_rules! with_families {
    ($callback:ident) => {
        $callback! { ($)
            mf: Mf("mf"),
            recommender_net: RecommenderNet("recommender_net"),
            regressor: Regressor("regressor"),
            autorec: AutoRec("autorec"),
            ncf: Ncf("ncf"),
            two_tower: TwoTower("two-tower" | "two_tower"),
            baseline: Baseline("baseline"),
            popularity: Popularity("popularity"),
            item_knn: ItemKnn("item-knn"),
        }
    };
}

macro_rules! declare_family_modules {
    (($d:tt) $( $module:ident: $variant:ident($($tags:tt)*) ),* $(,)?) => {
        $( pub mod $module; )*
    };
}
with_families!(declare_family_modules);

pub use autorec::{AutoRec, AutoRecBase, AutoRecConfig, HostRows, row_batch};
pub use baseline::{BaselineFit, als_biases};
pub use embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
pub use error::{ModelError, Result};
pub use item_knn::{ItemKnn, ItemKnnConfig, Similarity};
pub use layers::Activation;
pub use mf::{Mf, MfConfig, MfOutput};
pub use ncf::{Ncf, NcfConfig, NcfInput, NcfKind};
pub use popularity::{Popularity, PopularityConfig};
pub use recommender_net::{RecommenderNet, RecommenderNetConfig};
pub use regressor::{DenseBlock, Regressor, RegressorConfig};
pub use traits::{ModelLoss, RatingBatch, RatingModel, Retriever, RowBatch, Scorer, pairwise_loss};
pub use two_tower::{TwoTower, TwoTowerConfig};
