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
//! An L2 penalty `λ · Σ_batch (|p_u|² + |q_i|² [+ b_u² + b_i²]) / batch` on the looked-up rows
//! is returned separately in [`ModelLoss::penalty`].

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::losses::{bce_with_logits, mse};
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer};

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

/// Configuration of [`Mf`].
#[derive(Config, Debug)]
pub struct MfConfig {
    pub n_users: usize,
    pub n_items: usize,
    /// Embedding width.
    #[config(default = 32)]
    pub dim: usize,
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
    /// Seed of the initial weights.
    #[config(default = 42)]
    pub seed: u64,
}

impl MfConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.n_users == 0 || self.n_items == 0 || self.dim == 0 {
            return Err(ModelError::InvalidConfig(format!(
                "n_users ({}), n_items ({}) and dim ({}) must be positive",
                self.n_users, self.n_items, self.dim
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
        let offset = match self.output {
            MfOutput::Linear => self.global_mean,
            MfOutput::ScaledSigmoid | MfOutput::Logit => {
                let p = ((self.global_mean - self.rating_min)
                    / (self.rating_max - self.rating_min))
                    .clamp(1e-3, 1.0 - 1e-3);
                (p / (1.0 - p)).ln()
            }
        };
        Ok(Mf {
            user_embedding: table(self.n_users, self.dim, self.init, 0),
            item_embedding: table(self.n_items, self.dim, self.init, 1),
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
}

impl Mf {
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
        let p = self.user_embedding.lookup(users.clone());
        let q = self.item_embedding.lookup(items.clone());
        let mut z: Tensor<2> = (p.clone() * q.clone()).sum_dim(1); // [batch, 1]
        let mut sq = (self.l2 > 0.0).then(|| p.square().sum() + q.square().sum());
        if let (Some(bu), Some(bi)) = (&self.user_bias, &self.item_bias) {
            let bu = bu.lookup(users);
            let bi = bi.lookup(items);
            sq = sq.map(|s| s + bu.clone().square().sum() + bi.clone().square().sum());
            z = z + bu + bi;
        }
        let z = z.reshape([batch]).add_scalar(self.offset);
        let penalty = sq.map(|s| s.mul_scalar(self.l2 / batch.max(1) as f32));
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
        match self.output {
            MfOutput::Linear => z,
            MfOutput::ScaledSigmoid | MfOutput::Logit => sigmoid(z)
                .mul_scalar(self.rating_max - self.rating_min)
                .add_scalar(self.rating_min),
        }
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
        let (z, penalty) = self.logits_with_penalty(batch.users.clone(), batch.items.clone());
        let loss = match self.output {
            MfOutput::Linear | MfOutput::ScaledSigmoid => {
                mse(self.to_rating(z), batch.ratings.clone())
            }
            MfOutput::Logit => {
                let span = self.rating_max - self.rating_min;
                let target = batch
                    .ratings
                    .clone()
                    .sub_scalar(self.rating_min)
                    .div_scalar(span)
                    .clamp(0.0, 1.0);
                bce_with_logits(z, target)
            }
        };
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
        let base = MfConfig::new(5, 7).with_dim(4).with_global_mean(3.5);
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
    fn score_agrees_with_score_all_and_retriever() {
        let device = Device::flex();
        for config in configs() {
            let mut model = config.init(&device).unwrap();
            if let Some(b) = model.item_bias.take() {
                // Non-zero biases so they are exercised.
                let w = b.table().add_scalar(0.3);
                model.item_bias = Some(EmbeddingTable {
                    weight: burn::module::Param::from_tensor(w),
                });
            }
            let users = [0i64, 3, 4, 4];
            let items = [6i64, 0, 2, 5];
            let u = Tensor::<1, Int>::from_ints(users, &device);
            let i = Tensor::<1, Int>::from_ints(items, &device);
            let pair = vec1(model.score(u.clone(), i));
            let all = model
                .score_all(u.clone())
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            let dots = model
                .to_rating(
                    model
                        .user_vectors(u)
                        .matmul(model.item_vectors().transpose()),
                )
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            for k in 0..4 {
                let at = k * 7 + items[k] as usize;
                assert!(
                    (pair[k] - all[at]).abs() < 1e-5,
                    "{config:?}: {} vs {}",
                    pair[k],
                    all[at]
                );
                assert!(
                    (pair[k] - dots[at]).abs() < 1e-5,
                    "{config:?}: {} vs {}",
                    pair[k],
                    dots[at]
                );
            }
        }
    }

    #[test]
    fn untrained_sigmoid_model_predicts_near_the_mean() {
        let device = Device::flex();
        let model = MfConfig::new(3, 3)
            .with_dim(2)
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
        let batch = RatingBatch {
            users: Tensor::from_ints([0, 1], &device),
            items: Tensor::from_ints([1, 2], &device),
            ratings: Tensor::from_floats([4.0, 2.0], &device),
        };
        for config in configs() {
            let model = config.init(&device).unwrap();
            let out = model.loss(&batch);
            assert_eq!(out.penalty.is_some(), config.l2 > 0.0);
            let loss = vec1(out.total())[0];
            assert!(loss.is_finite() && loss > 0.0);
        }
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
