//! RecommenderNet, "version 3" of the Keras collaborative-filtering walkthrough (after Jeremy
//! Howard's fast.ai lesson on collaborative filtering): instead of a dot product, the user and item
//! embeddings are concatenated and fed to a small fully connected network,
//!
//! ```text
//! x = dropout_in([p_u, q_i]);  x = dropout(relu(W_k x + b_k)) for each hidden layer;
//! r̂ = min + (max - min) · σ(w · x + b)
//! ```
//!
//! trained with MSE. Embeddings and dense kernels start He-normal as in the notebook; an optional
//! L2 penalty `λ · Σ_batch (|p_u|² + |q_i|²) / batch` applies to the looked-up rows.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor};

use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::layers::{DenseInit, seeded_stack};
use crate::losses::mse;
use crate::traits::{
    ModelLoss, RatingBatch, RatingModel, Scorer, pairs_with_every_item, pairwise_loss,
};

/// Configuration of [`RecommenderNet`]; defaults follow the notebook (50 factors, one dense layer
/// of 10, dropout 0.05 on the embeddings and 0.5 after the dense layer).
#[derive(Config, Debug)]
pub struct RecommenderNetConfig {
    pub n_users: usize,
    pub n_items: usize,
    #[config(default = 50)]
    pub embedding_dim: usize,
    /// Widths of the hidden dense layers (ReLU).
    #[config(default = "vec![10]")]
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Dropout on the concatenated embeddings.
    #[config(default = 0.05)]
    pub input_dropout: f64,
    #[config(default = "EmbeddingInit::HeNormal")]
    pub init: EmbeddingInit,
    /// Weight of the L2 penalty on the looked-up embeddings.
    #[config(default = 1e-6)]
    pub l2: f32,
    #[config(default = 1.0)]
    pub rating_min: f32,
    #[config(default = 5.0)]
    pub rating_max: f32,
    #[config(default = 42)]
    pub seed: u64,
}

impl RecommenderNetConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if self.n_users == 0 || self.n_items == 0 || self.embedding_dim == 0 {
            return bad(
                "recommender_net: n_users, n_items and embedding_dim must be positive".into(),
            );
        }
        if self.hidden.contains(&0) {
            return bad(format!(
                "recommender_net: hidden widths must be positive, got {:?}",
                self.hidden
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) || !(0.0..1.0).contains(&self.input_dropout) {
            return bad("recommender_net: dropout rates must be in [0, 1)".into());
        }
        if self.rating_max.is_nan() || self.rating_max <= self.rating_min {
            return bad(format!(
                "recommender_net: rating_max ({}) must exceed rating_min ({})",
                self.rating_max, self.rating_min
            ));
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return bad(format!("recommender_net: l2 must be >= 0, got {}", self.l2));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Result<RecommenderNet> {
        self.validate()?;
        device.seed(self.seed);
        let table = |n: usize, salt: u64| {
            EmbeddingTableConfig::new(n, self.embedding_dim)
                .with_init(self.init)
                .with_seed(self.seed.wrapping_mul(2).wrapping_add(salt))
                .init(device)
        };
        let mut widths = vec![2 * self.embedding_dim];
        widths.extend(&self.hidden);
        widths.push(1);
        let he = DenseInit::KaimingNormal { gain: 2f64.sqrt() };
        let layers = seeded_stack(&widths, he, self.seed, 100, device);
        Ok(RecommenderNet {
            user_embedding: table(self.n_users, 0),
            item_embedding: table(self.n_items, 1),
            layers,
            input_dropout: DropoutConfig::new(self.input_dropout).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            rating_min: self.rating_min,
            rating_max: self.rating_max,
            l2: self.l2,
        })
    }
}

/// RecommenderNet; see the [module docs](self).
#[derive(Module, Debug)]
pub struct RecommenderNet {
    pub user_embedding: EmbeddingTable,
    pub item_embedding: EmbeddingTable,
    /// Hidden layers then the one-unit output layer.
    pub layers: Vec<Linear>,
    pub input_dropout: Dropout,
    pub dropout: Dropout,
    #[module(skip)]
    rating_min: f32,
    #[module(skip)]
    rating_max: f32,
    #[module(skip)]
    l2: f32,
}

impl RecommenderNet {
    /// Logits of `(users[k], items[k])` and the L2 penalty when set.
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch]`, `[1]`
    pub fn logits_with_penalty(
        &self,
        users: Tensor<1, Int>,
        items: Tensor<1, Int>,
    ) -> (Tensor<1>, Option<Tensor<1>>) {
        let [batch] = users.dims();
        // `[p_u ; q_i]`: fused without an L2 penalty; with one, the penalty reads the same
        // looked-up rows, so that their gradients add up as in Burn's composition.
        let (pq, penalty) = if self.l2 > 0.0 {
            let p = self.user_embedding.lookup(users);
            let q = self.item_embedding.lookup(items);
            let penalty = (p.clone().square().sum() + q.clone().square().sum())
                .mul_scalar(self.l2 / batch.max(1) as f32);
            (Tensor::cat(vec![p, q], 1), Some(penalty))
        } else {
            let pq = crate::fused::pair_concat(
                self.user_embedding.table(),
                self.item_embedding.table(),
                users,
                items,
                EmbeddingTable::lookup_in,
            );
            (pq, None)
        };
        let (last, hidden) = self.layers.split_last().expect("output layer");
        let x = self.input_dropout.forward(pq);
        let x = hidden.iter().fold(x, |x, l| {
            self.dropout.forward(relu(crate::fused::dense(l, x)))
        });
        (crate::fused::dense(last, x).reshape([batch]), penalty)
    }

    fn to_rating(&self, z: Tensor<1>) -> Tensor<1> {
        sigmoid(z)
            .mul_scalar(self.rating_max - self.rating_min)
            .add_scalar(self.rating_min)
    }
}

impl Scorer for RecommenderNet {
    fn n_items(&self) -> usize {
        self.item_embedding.n()
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.to_rating(self.logits_with_penalty(users, items).0)
    }

    /// Every item scored for each user: the pairs `users × 0..n_items` in one batch.
    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = users.dims();
        let n = self.n_items();
        let (u, i) = pairs_with_every_item(users, n);
        self.score(u, i).reshape([batch, n])
    }
}

impl RatingModel for RecommenderNet {
    type Batch = RatingBatch;

    fn loss(&self, batch: &RatingBatch) -> ModelLoss {
        if let Some(out) = pairwise_loss(batch, |u, i| self.logits_with_penalty(u, i)) {
            return out;
        }
        let (z, penalty) = self.logits_with_penalty(batch.users.clone(), batch.items.clone());
        ModelLoss {
            loss: mse(self.to_rating(z), batch.ratings.clone()),
            penalty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_stay_in_the_rating_range() {
        let device = Device::flex();
        let m = RecommenderNetConfig::new(5, 7)
            .with_embedding_dim(4)
            .with_hidden(vec![8, 3])
            .init(&device)
            .unwrap();
        let all = m
            .score_all(Tensor::from_ints([0i64, 4, 2], &device))
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(all.iter().all(|&r| (1.0..=5.0).contains(&r)));
    }

    #[test]
    fn invalid_config_is_an_error() {
        let device = Device::flex();
        assert!(
            RecommenderNetConfig::new(2, 2)
                .with_dropout(1.5)
                .init(&device)
                .is_err()
        );
        assert!(
            RecommenderNetConfig::new(2, 2)
                .with_hidden(vec![0])
                .init(&device)
                .is_err()
        );
    }
}
