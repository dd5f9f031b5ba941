//! Matrix factorisation (Koren, Bell & Volinsky, "Matrix Factorization Techniques for
//! Recommender Systems", IEEE Computer 42(8), 2009).
//!
//! A rating is modelled through the logit
//!
//! ```text
//! z(u, i) = p_u · q_i  [+ b_u + b_i]  + c
//! ```
//!
//! with user and item embeddings `p_u`, `q_i`, optional user and item biases and a constant
//! offset `c` derived from the global mean rating `μ`. [`MfOutput`] says what becomes of `z`:
//!
//! - [`MfOutput::Linear`]: `r̂ = z` with `c = μ`, trained with MSE. Without biases and with
//!   `μ = 0` this is the plain dot product of Keras' "version 1"; with biases it is Koren's
//!   biased MF.
//! - [`MfOutput::ScaledSigmoid`]: `r̂ = min + (max - min) σ(z)`, trained with MSE, so predictions
//!   stay on the rating scale.
//! - [`MfOutput::Logit`]: the same `r̂`, but trained with binary cross-entropy on the logit `z`
//!   against min-max normalised ratings `(r - min) / (max - min)` (Keras' "version 4": biases,
//!   sigmoid, BCE).
//!
//! In both sigmoid forms `c = logit((μ - min) / (max - min))`, so an untrained model predicts `μ`.
//! An L2 penalty `(λ · Σ_batch (|p_u|² + |q_i|²) [+ λ_b · Σ_batch (b_u² + b_i²)]) / batch` on the
//! looked-up rows is returned separately in [`ModelLoss::penalty`]; the bias weight `λ_b`
//! (`l2_bias`) defaults to `λ`. With `l2_frequency_exponent = α ≠ 0` and the training counts
//! given ([`Mf::with_frequency_weights`]) each looked-up row's term is weighted by
//! `(n̄ / n_r)^α`, `n_r` the row's number of training ratings and `n̄` the mean over the table:
//! `α = 0` is the classic per-rating penalty (a row is penalised `n_r` times an epoch), `α = 1`
//! penalises every row equally.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::losses::{bce_with_logits, mse};
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer, pairwise_loss};

/// What [`Mf`] does with its logit (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfOutput {
    /// The logit is the rating; MSE.
    Linear,
    /// `min + (max - min) σ(logit)`; MSE.
    ScaledSigmoid,
    /// `min + (max - min) σ(logit)`; BCE on the logit against normalised ratings.
    Logit,
}

impl MfOutput {
    /// The constant of the logit that makes an untrained model predict `mean`: `mean` itself
    /// for [`MfOutput::Linear`], `logit((mean - min) / (max - min))` for the sigmoid outputs.
    pub fn offset(self, mean: f32, min: f32, max: f32) -> f32 {
        match self {
            MfOutput::Linear => mean,
            MfOutput::ScaledSigmoid | MfOutput::Logit => {
                let p = ((mean - min) / (max - min)).clamp(1e-3, 1.0 - 1e-3);
                (p / (1.0 - p)).ln()
            }
        }
    }

    /// Logits `z` as ratings: `z`, or `min + (max - min) σ(z)`.
    pub fn to_rating<const D: usize>(self, z: Tensor<D>, min: f32, max: f32) -> Tensor<D> {
        match self {
            MfOutput::Linear => z,
            MfOutput::ScaledSigmoid | MfOutput::Logit => {
                sigmoid(z).mul_scalar(max - min).add_scalar(min)
            }
        }
    }

    /// The data term of the training loss of logits `z` against `ratings`: MSE of the ratings,
    /// or for [`MfOutput::Logit`] BCE of the logits against `(r - min) / (max - min)`.
    ///
    /// # Shapes
    /// - `z`, `ratings`: `[batch]`
    /// - output: `[1]`
    pub fn loss(self, z: Tensor<1>, ratings: Tensor<1>, min: f32, max: f32) -> Tensor<1> {
        match self {
            MfOutput::Linear | MfOutput::ScaledSigmoid => mse(self.to_rating(z, min, max), ratings),
            MfOutput::Logit => {
                let target = ratings
                    .sub_scalar(min)
                    .div_scalar(max - min)
                    .clamp(0.0, 1.0);
                bce_with_logits(z, target)
            }
        }
    }
}

/// Configuration of [`Mf`].
#[derive(Config, Debug)]
pub struct MfConfig {
    pub n_users: usize,
    pub n_items: usize,
    /// Embedding width.
    #[config(default = 32)]
    pub embedding_dim: usize,
    #[config(default = "EmbeddingInit::Normal { std: 0.05 }")]
    pub init: EmbeddingInit,
    /// Learn a bias per user and per item.
    #[config(default = false)]
    pub bias: bool,
    #[config(default = "MfOutput::Linear")]
    pub output: MfOutput,
    /// Rating scale, used by the sigmoid outputs.
    #[config(default = 1.0)]
    pub rating_min: f32,
    #[config(default = 5.0)]
    pub rating_max: f32,
    /// Global mean rating `μ` of the training data (0 for plain "version 1").
    #[config(default = 0.0)]
    pub global_mean: f32,
    /// Weight `λ` of the L2 penalty on looked-up embeddings and biases.
    #[config(default = 0.0)]
    pub l2: f32,
    /// Weight `λ_b` of the L2 penalty on the looked-up biases; `None`: the same as `l2`.
    pub l2_bias: Option<f32>,
    /// Exponent `α` of the per-row penalty weight `(n̄ / n_r)^α` (see the module docs); 0 (the
    /// default) weights every looked-up row alike. Needs [`Mf::with_frequency_weights`].
    #[config(default = 0.0)]
    pub l2_frequency_exponent: f32,
    /// Seed of the initial weights.
    #[config(default = 42)]
    pub seed: u64,
}

impl MfConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.n_users == 0 || self.n_items == 0 || self.embedding_dim == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "n_users ({}), n_items ({}) and embedding_dim ({}) must be positive",
                self.n_users, self.n_items, self.embedding_dim
            )));
        }
        if self.output != MfOutput::Linear
            && (self.rating_max.is_nan() || self.rating_max <= self.rating_min)
        {
            return Err(ModelError::InvalidConfig(format!(
                "rating_max ({}) must exceed rating_min ({}) for a sigmoid output",
                self.rating_max, self.rating_min
            )));
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return Err(ModelError::InvalidConfig(format!(
                "l2 ({}) must be >= 0",
                self.l2
            )));
        }
        if let Some(b) = self.l2_bias
            && (b.is_nan() || b < 0.0)
        {
            return Err(ModelError::InvalidConfig(format!(
                "l2_bias ({b}) must be >= 0"
            )));
        }
        Ok(())
    }

    /// Builds the model on `device` (use an autodiff device to train it).
    pub fn init(&self, device: &Device) -> Result<Mf> {
        self.validate()?;
        let table = |n: usize, dim: usize, init: EmbeddingInit, salt: u64| {
            EmbeddingTableConfig::new(n, dim)
                .with_init(init)
                .with_seed(self.seed.wrapping_mul(4).wrapping_add(salt))
                .init(device)
        };
        let offset = self
            .output
            .offset(self.global_mean, self.rating_min, self.rating_max);
        Ok(Mf {
            user_embedding: table(self.n_users, self.embedding_dim, self.init, 0),
            item_embedding: table(self.n_items, self.embedding_dim, self.init, 1),
            user_bias: self
                .bias
                .then(|| table(self.n_users, 1, EmbeddingInit::Zeros, 2)),
            item_bias: self
                .bias
                .then(|| table(self.n_items, 1, EmbeddingInit::Zeros, 3)),
            output: self.output,
            rating_min: self.rating_min,
            rating_max: self.rating_max,
            offset,
            l2: self.l2,
            l2_bias: self.l2_bias.unwrap_or(self.l2),
            l2_frequency_exponent: self.l2_frequency_exponent,
            row_weights: None,
        })
    }
}

/// Matrix factorisation; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Mf {
    pub user_embedding: EmbeddingTable,
    pub item_embedding: EmbeddingTable,
    /// `[n_users, 1]` when biases are on.
    pub user_bias: Option<EmbeddingTable>,
    /// `[n_items, 1]` when biases are on.
    pub item_bias: Option<EmbeddingTable>,
    #[module(skip)]
    output: MfOutput,
    #[module(skip)]
    rating_min: f32,
    #[module(skip)]
    rating_max: f32,
    #[module(skip)]
    offset: f32,
    #[module(skip)]
    l2: f32,
    #[module(skip)]
    l2_bias: f32,
    #[module(skip)]
    l2_frequency_exponent: f32,
    /// Per-row penalty weights of users and items (`[n_users]`, `[n_items]`), when set.
    #[module(skip)]
    row_weights: Option<Box<(Tensor<1>, Tensor<1>)>>,
}

impl Mf {
    /// Sets the per-row penalty weights `(n̄ / n_r)^α` from the training data's counts when the
    /// config's `l2_frequency_exponent` `α` is non-zero (a no-op otherwise). Rows without ratings
    /// count as one rating.
    pub fn with_frequency_weights(mut self, train: &recsys_data::Interactions) -> Self {
        let alpha = self.l2_frequency_exponent;
        if alpha == 0.0 {
            return self;
        }
        let device = self.user_embedding.table().device();
        let weights = |ids: &[u32], n: usize| {
            let mut counts = vec![0f32; n];
            for &r in ids {
                counts[r as usize] += 1.0;
            }
            let mean = ids.len() as f32 / n.max(1) as f32;
            let w: Vec<f32> = counts
                .iter()
                .map(|&c| (mean / c.max(1.0)).powf(alpha))
                .collect();
            Tensor::<1>::from_floats(w.as_slice(), &device)
        };
        self.row_weights = Some(Box::new((
            weights(&train.users, self.user_embedding.n()),
            weights(&train.items, self.item_embedding.n()),
        )));
        self
    }

    /// The logits `z(u, i)` and, when an L2 weight is set, the penalty on the rows looked up.
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
        let mut z: Tensor<2> = crate::fused::pair_dot(
            self.user_embedding.table(),
            self.item_embedding.table(),
            users.clone(),
            items.clone(),
            EmbeddingTable::lookup_in,
        );
        let weights = self.row_weights.as_ref().map(|w| {
            let (wu, wi) = &**w;
            (
                wu.clone().select(0, users.clone()),
                wi.clone().select(0, items.clone()),
            )
        });
        // Σ_batch of the squared rows, each weighted when row weights are set.
        let sq = |u: Tensor<2>, i: Tensor<2>| -> Tensor<1> {
            let (u, i) = (u.square().sum_dim(1), i.square().sum_dim(1));
            match &weights {
                Some((wu, wi)) => {
                    (u.reshape([batch]) * wu.clone()).sum()
                        + (i.reshape([batch]) * wi.clone()).sum()
                }
                None => u.sum() + i.sum(),
            }
        };
        let mut penalty = (self.l2 > 0.0).then(|| {
            let p = self.user_embedding.lookup(users.clone());
            let q = self.item_embedding.lookup(items.clone());
            sq(p, q).mul_scalar(self.l2)
        });
        if let (Some(bu), Some(bi)) = (&self.user_bias, &self.item_bias) {
            let bu = bu.lookup(users);
            let bi = bi.lookup(items);
            if self.l2_bias > 0.0 {
                let b = sq(bu.clone(), bi.clone()).mul_scalar(self.l2_bias);
                penalty = Some(match penalty {
                    Some(s) => s + b,
                    None => b,
                });
            }
            z = z + bu + bi;
        }
        let z = z.reshape([batch]).add_scalar(self.offset);
        let penalty = penalty.map(|s| s.div_scalar(batch.max(1) as f32));
        (z, penalty)
    }

    /// The logits `z(u, i)`.
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch]`
    pub fn logits(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.logits_with_penalty(users, items).0
    }

    /// The logits of every item for each user.
    ///
    /// # Shapes
    /// - `users`: `[batch]`
    /// - output: `[batch, n_items]`
    pub fn logits_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let p = self.user_embedding.lookup(users.clone());
        let mut z = p.matmul(self.item_embedding.table().transpose());
        if let (Some(bu), Some(bi)) = (&self.user_bias, &self.item_bias) {
            z = z + bu.lookup(users) + bi.table().transpose();
        }
        z.add_scalar(self.offset)
    }

    /// Maps logits to ratings per [`MfOutput`].
    pub fn to_rating<const D: usize>(&self, z: Tensor<D>) -> Tensor<D> {
        self.output.to_rating(z, self.rating_min, self.rating_max)
    }

    pub fn output(&self) -> MfOutput {
        self.output
    }

    pub fn n_users(&self) -> usize {
        self.user_embedding.n()
    }
}

impl Scorer for Mf {
    fn n_items(&self) -> usize {
        self.item_embedding.n()
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.to_rating(self.logits(users, items))
    }

    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        self.to_rating(self.logits_all(users))
    }
}

impl Retriever for Mf {
    /// `[p_u, b_u + c, 1]`, so that `user_vectors · item_vectorsᵀ` is the logit.
    fn user_vectors(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let p = self.user_embedding.lookup(users.clone());
        let [batch, _] = p.dims();
        let device = p.device();
        let bias = match &self.user_bias {
            Some(bu) => bu.lookup(users).add_scalar(self.offset),
            None => Tensor::full([batch, 1], self.offset, &device),
        };
        Tensor::cat(vec![p, bias, Tensor::ones([batch, 1], &device)], 1)
    }

    /// `[q_i, 1, b_i]`.
    fn item_vectors(&self) -> Tensor<2> {
        let q = self.item_embedding.table();
        let [n, _] = q.dims();
        let device = q.device();
        let bias = match &self.item_bias {
            Some(bi) => bi.table(),
            None => Tensor::zeros([n, 1], &device),
        };
        Tensor::cat(vec![q, Tensor::ones([n, 1], &device), bias], 1)
    }
}

impl RatingModel for Mf {
    type Batch = RatingBatch;

    fn loss(&self, batch: &RatingBatch) -> ModelLoss {
        if let Some(out) = pairwise_loss(batch, |u, i| self.logits_with_penalty(u, i)) {
            return out;
        }
        let (z, penalty) = self.logits_with_penalty(batch.users.clone(), batch.items.clone());
        let loss = self
            .output
            .loss(z, batch.ratings.clone(), self.rating_min, self.rating_max);
        ModelLoss { loss, penalty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vec1(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    fn configs() -> Vec<MfConfig> {
        let base = MfConfig::new(5, 7).with_embedding_dim(4).with_global_mean(3.5);
        vec![
            base.clone(),
            base.clone().with_bias(true),
            base.clone()
                .with_bias(true)
                .with_output(MfOutput::ScaledSigmoid),
            base.with_bias(true)
                .with_output(MfOutput::Logit)
                .with_l2(0.1),
        ]
    }

    #[test]
    fn untrained_sigmoid_model_predicts_near_the_mean() {
        let device = Device::flex();
        let model = MfConfig::new(3, 3)
            .with_embedding_dim(2)
            .with_init(EmbeddingInit::Zeros)
            .with_bias(true)
            .with_global_mean(3.5)
            .with_output(MfOutput::Logit)
            .init(&device)
            .unwrap();
        let u = Tensor::<1, Int>::from_ints([0, 1], &device);
        let p = vec1(model.score(u.clone(), u));
        assert!(p.iter().all(|&x| (x - 3.5).abs() < 1e-4), "{p:?}");
    }

    #[test]
    fn penalty_is_returned_only_with_l2() {
        let device = Device::flex();
        let batch = RatingBatch::pairs(
            Tensor::from_ints([0, 1], &device),
            Tensor::from_ints([1, 2], &device),
            Tensor::from_floats([4.0, 2.0], &device),
        );
        for config in configs() {
            let model = config.init(&device).unwrap();
            let out = model.loss(&batch);
            assert_eq!(out.penalty.is_some(), config.l2 > 0.0);
            let loss = vec1(out.total())[0];
            assert!(loss.is_finite() && loss > 0.0);
        }
    }

    #[test]
    fn bias_l2_has_its_own_weight() {
        let device = Device::flex();
        let batch = RatingBatch::pairs(
            Tensor::from_ints([0, 1], &device),
            Tensor::from_ints([1, 2], &device),
            Tensor::from_floats([4.0, 2.0], &device),
        );
        let penalty = |l2: f32, l2_bias: Option<f32>| {
            let mut model = MfConfig::new(3, 3)
                .with_embedding_dim(2)
                .with_bias(true)
                .with_l2(l2)
                .with_l2_bias(l2_bias)
                .init(&device)
                .unwrap();
            // Biases of 1 (users) and 2 (items): Σ_batch (b_u² + b_i²) / batch = 5.
            for (b, v) in [(&mut model.user_bias, 1.0), (&mut model.item_bias, 2.0)] {
                let t = b.take().unwrap().table().ones_like().mul_scalar(v);
                *b = Some(EmbeddingTable {
                    weight: burn::module::Param::from_tensor(t),
                });
            }
            let factors = {
                let p = model.user_embedding.table().square().sum_dim(1);
                let q = model.item_embedding.table().square().sum_dim(1);
                let (p, q) = (vec1(p.reshape([3])), vec1(q.reshape([3])));
                (p[0] + p[1] + q[1] + q[2]) / 2.0
            };
            let got = model.loss(&batch).penalty.map(|t| vec1(t)[0]);
            (got, factors)
        };
        let (got, f) = penalty(0.1, None);
        assert!((got.unwrap() - 0.1 * (f + 5.0)).abs() < 1e-5);
        let (got, f) = penalty(0.1, Some(0.01));
        assert!((got.unwrap() - (0.1 * f + 0.01 * 5.0)).abs() < 1e-5);
        let (got, f) = penalty(0.1, Some(0.0));
        assert!((got.unwrap() - 0.1 * f).abs() < 1e-6);
        let (got, _) = penalty(0.0, Some(0.2));
        assert!((got.unwrap() - 0.2 * 5.0).abs() < 1e-5);
        assert!(penalty(0.0, None).0.is_none());
        assert!(
            MfConfig::new(2, 2)
                .with_l2_bias(Some(-1.0))
                .init(&device)
                .is_err()
        );
    }

    #[test]
    fn frequency_exponent_weights_each_row_by_its_count() {
        let device = Device::flex();
        // User 0 has 3 ratings, user 1 one (mean 2); item 0 has 2, item 1 two (mean 2).
        let train = recsys_data::Interactions::new(
            vec![0, 0, 0, 1],
            vec![0, 1, 0, 1],
            vec![4.0, 3.0, 5.0, 2.0],
            None,
            2,
            2,
        )
        .unwrap();
        let batch = RatingBatch::pairs(
            Tensor::from_ints([0, 1], &device),
            Tensor::from_ints([0, 1], &device),
            Tensor::from_floats([4.0, 2.0], &device),
        );
        let config = MfConfig::new(2, 2)
            .with_embedding_dim(2)
            .with_bias(true)
            .with_l2(0.1)
            .with_l2_bias(Some(0.0));
        let sq = |t: Tensor<2>| vec1(t.square().sum_dim(1).reshape([2]));
        let model = config.init(&device).unwrap();
        let (p, q) = (
            sq(model.user_embedding.table()),
            sq(model.item_embedding.table()),
        );
        let penalty = |m: &Mf| vec1(m.loss(&batch).penalty.unwrap())[0];
        // α = 0 (the default): per-rating weights, and the counts change nothing.
        let plain = (p[0] + p[1] + q[0] + q[1]) * 0.1 / 2.0;
        assert!((penalty(&model) - plain).abs() < 1e-6);
        let same = config.init(&device).unwrap().with_frequency_weights(&train);
        assert!((penalty(&same) - plain).abs() < 1e-6);
        // α = 1: weights n̄ / n_r = 2/3 and 2 for the users, 1 and 1 for the items.
        let weighted = config
            .with_l2_frequency_exponent(1.0)
            .init(&device)
            .unwrap()
            .with_frequency_weights(&train);
        let want = (p[0] * 2.0 / 3.0 + p[1] * 2.0 + q[0] + q[1]) * 0.1 / 2.0;
        assert!(
            (penalty(&weighted) - want).abs() < 1e-6,
            "{} vs {want}",
            penalty(&weighted)
        );
    }

    #[test]
    fn invalid_config_is_an_error() {
        let device = Device::flex();
        assert!(MfConfig::new(0, 3).init(&device).is_err());
        let bad = MfConfig::new(2, 3)
            .with_output(MfOutput::ScaledSigmoid)
            .with_rating_min(5.0)
            .with_rating_max(1.0);
        assert!(bad.init(&device).is_err());
    }
}
