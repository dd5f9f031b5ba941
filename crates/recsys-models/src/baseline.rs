//! The baseline predictor (Koren, "Factor in the Neighbors: Scalable and Accurate Collaborative
//! Filtering", TKDD 4(1), 2010, section 2.1; Surprise's `BaselineOnly`):
//!
//! ```text
//! z(u, i) = c + b_u + b_i
//! ```
//!
//! user and item biases around a constant `c` from the global mean rating `μ`, with the outputs of
//! [`MfOutput`] (`Linear`: `r̂ = z`, `c = μ`, MSE; the sigmoid forms as in [`Mf`](crate::Mf)).
//! An L2 penalty `λ · Σ_batch (b_u² + b_i²) / batch` on the looked-up biases is returned in
//! [`ModelLoss::penalty`]. For ranking it is popularity learned from the data: every user gets
//! the items in the order of `b_i`.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::mf::MfOutput;
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer, pairwise_loss};

/// Configuration of [`Baseline`].
#[derive(Config, Debug)]
pub struct BaselineConfig {
    pub n_users: usize,
    pub n_items: usize,
    #[config(default = "MfOutput::Linear")]
    pub output: MfOutput,
    /// Rating scale of the sigmoid outputs.
    #[config(default = 1.0)]
    pub rating_min: f32,
    #[config(default = 5.0)]
    pub rating_max: f32,
    /// Global mean rating `μ` of the training data.
    #[config(default = 0.0)]
    pub global_mean: f32,
    /// Weight `λ` of the L2 penalty on the looked-up biases.
    #[config(default = 0.01)]
    pub l2: f32,
}

impl BaselineConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if self.n_users == 0 || self.n_items == 0 {
            return bad("baseline: n_users and n_items must be positive".into());
        }
        if self.output != MfOutput::Linear
            && (self.rating_max.is_nan() || self.rating_max <= self.rating_min)
        {
            return bad(format!(
                "baseline: rating_max ({}) must exceed rating_min ({}) for a sigmoid output",
                self.rating_max, self.rating_min
            ));
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return bad(format!("baseline: l2 ({}) must be >= 0", self.l2));
        }
        Ok(())
    }

    /// Builds the model on `device`, biases at zero (an untrained model predicts `μ`).
    pub fn init(&self, device: &Device) -> Result<Baseline> {
        self.validate()?;
        let table = |n: usize| {
            EmbeddingTableConfig::new(n, 1)
                .with_init(EmbeddingInit::Zeros)
                .init(device)
        };
        Ok(Baseline {
            user_bias: table(self.n_users),
            item_bias: table(self.n_items),
            output: self.output,
            rating_min: self.rating_min,
            rating_max: self.rating_max,
            offset: self
                .output
                .offset(self.global_mean, self.rating_min, self.rating_max),
            l2: self.l2,
        })
    }
}

/// The baseline predictor; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Baseline {
    /// `[n_users, 1]`.
    pub user_bias: EmbeddingTable,
    /// `[n_items, 1]`.
    pub item_bias: EmbeddingTable,
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

impl Baseline {
    /// The logits `z(u, i)` and, with an L2 weight, the penalty on the biases looked up.
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
        let bu = self.user_bias.lookup(users);
        let bi = self.item_bias.lookup(items);
        let penalty = (self.l2 > 0.0).then(|| {
            (bu.clone().square().sum() + bi.clone().square().sum())
                .mul_scalar(self.l2 / batch.max(1) as f32)
        });
        ((bu + bi).reshape([batch]).add_scalar(self.offset), penalty)
    }

    fn to_rating<const D: usize>(&self, z: Tensor<D>) -> Tensor<D> {
        self.output.to_rating(z, self.rating_min, self.rating_max)
    }
}

impl Scorer for Baseline {
    fn n_items(&self) -> usize {
        self.item_bias.n()
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.to_rating(self.logits_with_penalty(users, items).0)
    }

    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let z = self.user_bias.lookup(users) + self.item_bias.table().transpose();
        self.to_rating(z.add_scalar(self.offset))
    }
}

impl Retriever for Baseline {
    /// `[1, b_u + c]`, so that `user_vectors · item_vectorsᵀ` is the logit.
    fn user_vectors(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let bias = self.user_bias.lookup(users).add_scalar(self.offset);
        let [batch, _] = bias.dims();
        Tensor::cat(vec![Tensor::ones([batch, 1], &bias.device()), bias], 1)
    }

    /// `[b_i, 1]`.
    fn item_vectors(&self) -> Tensor<2> {
        let bias = self.item_bias.table();
        let [n, _] = bias.dims();
        Tensor::cat(vec![bias.clone(), Tensor::ones([n, 1], &bias.device())], 1)
    }
}

impl RatingModel for Baseline {
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

    #[test]
    fn untrained_model_predicts_the_mean_and_penalises_biases() {
        let device = Device::flex();
        let m = BaselineConfig::new(3, 4)
            .with_global_mean(3.5)
            .init(&device)
            .unwrap();
        let all: Vec<f32> = m
            .score_all(Tensor::from_ints([0, 2], &device))
            .into_data()
            .try_into_vec_as()
            .unwrap();
        assert!(all.iter().all(|&r| (r - 3.5).abs() < 1e-6), "{all:?}");
        let batch = RatingBatch::pairs(
            Tensor::from_ints([0, 1], &device),
            Tensor::from_ints([2, 3], &device),
            Tensor::from_floats([4.5, 2.5], &device),
        );
        let out = m.loss(&batch);
        let loss = out.loss.into_data().try_into_vec_as::<f32>().unwrap()[0];
        assert!((loss - 1.0).abs() < 1e-6, "{loss}");
        assert!(
            BaselineConfig::new(3, 4)
                .with_l2(-1.0)
                .init(&device)
                .is_err()
        );
    }
}
