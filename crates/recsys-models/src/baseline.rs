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
//!
//! The biases are learned by gradient descent with the trainer ([`BaselineFit::Sgd`]) or fitted
//! in closed form by alternating least squares as Surprise's `baseline_als` does
//! ([`BaselineFit::Als`], [`als_biases`]).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use recsys_data::Interactions;
use serde::{Deserialize, Serialize};

use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::mf::MfOutput;
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer, pairwise_loss};

/// How [`Baseline`]'s biases are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum BaselineFit {
    /// Gradient descent with the trainer (any optimiser, MSE or the implicit losses).
    #[default]
    Sgd,
    /// Alternating least squares on ratings, in closed form ([`als_biases`]).
    Als,
}

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
    /// Gradient descent or alternating least squares.
    #[config(default = "BaselineFit::Sgd")]
    pub fit: BaselineFit,
    /// ALS: regularisation of the user biases (Surprise's `reg_u`).
    #[config(default = 15.0)]
    pub als_reg_user: f32,
    /// ALS: regularisation of the item biases (Surprise's `reg_i`).
    #[config(default = 10.0)]
    pub als_reg_item: f32,
    /// ALS: rounds of item then user updates (Surprise's `n_epochs`).
    #[config(default = 10)]
    pub als_epochs: usize,
}

/// User and item biases around `mean` fitted by alternating least squares (Surprise's
/// `baseline_als`): `epochs` rounds of, for every item, `b_i = Σ_u (r_ui - μ - b_u) / (reg_item
/// + n_i)`, then for every user `b_u = Σ_i (r_ui - μ - b_i) / (reg_user + n_u)`.
pub fn als_biases(
    data: &Interactions,
    mean: f32,
    reg_user: f32,
    reg_item: f32,
    epochs: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (mut bu, mut bi) = (vec![0.0f32; data.n_users], vec![0.0f32; data.n_items]);
    let (nu, ni) = (data.user_counts(), data.item_counts());
    for _ in 0..epochs {
        let mut dev = vec![0.0f64; data.n_items];
        for k in 0..data.len() {
            let (u, i) = (data.users[k] as usize, data.items[k] as usize);
            dev[i] += (data.ratings[k] - mean - bu[u]) as f64;
        }
        for i in 0..data.n_items {
            bi[i] = (dev[i] / (reg_item as f64 + ni[i] as f64)) as f32;
        }
        let mut dev = vec![0.0f64; data.n_users];
        for k in 0..data.len() {
            let (u, i) = (data.users[k] as usize, data.items[k] as usize);
            dev[u] += (data.ratings[k] - mean - bi[i]) as f64;
        }
        for u in 0..data.n_users {
            bu[u] = (dev[u] / (reg_user as f64 + nu[u] as f64)) as f32;
        }
    }
    (bu, bi)
}

/// A `[n, 1]` table holding `values`, on `device`.
pub(crate) fn column_table(values: Vec<f32>, device: &Device) -> EmbeddingTable {
    let n = values.len();
    EmbeddingTable {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(values, [n, 1]), device)),
    }
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
        if !(self.als_reg_user >= 0.0 && self.als_reg_item >= 0.0) {
            return bad("baseline: the ALS regularisations must be >= 0".into());
        }
        Ok(())
    }

    /// The model with the biases of [`als_biases`] on `data` (ratings, a linear output).
    pub fn fit_als(&self, data: &Interactions, device: &Device) -> Result<Baseline> {
        let mut model = self.init(device)?;
        if self.output != MfOutput::Linear {
            return Err(ModelError::InvalidConfig(
                "baseline: ALS fits ratings with a linear output".into(),
            ));
        }
        let (bu, bi) = als_biases(
            data,
            self.global_mean,
            self.als_reg_user,
            self.als_reg_item,
            self.als_epochs,
        );
        model.user_bias = column_table(bu, device);
        model.item_bias = column_table(bi, device);
        Ok(model)
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
    fn als_biases_solve_each_side_given_the_other() {
        // Two users, two items; user 0 rates high, item 1 low.
        let data = Interactions::new(
            vec![0, 0, 1, 1],
            vec![0, 1, 0, 1],
            vec![5.0, 3.0, 4.0, 2.0],
            None,
            2,
            2,
        )
        .unwrap();
        let mean = 3.5;
        let (bu, bi) = als_biases(&data, mean, 0.0, 0.0, 20);
        // Unregularised, the fit is exact: r = μ + b_u + b_i.
        for k in 0..4 {
            let (u, i) = (data.users[k] as usize, data.items[k] as usize);
            assert!((mean + bu[u] + bi[i] - data.ratings[k]).abs() < 1e-4, "{bu:?} {bi:?}");
        }
        // Regularised, the last item update satisfies its own equation exactly.
        let (bu, bi) = als_biases(&data, mean, 2.0, 3.0, 1);
        let want_bu0 = ((5.0 - mean - bi[0]) + (3.0 - mean - bi[1])) / (2.0 + 2.0);
        assert!((bu[0] - want_bu0).abs() < 1e-6);
        let m = BaselineConfig::new(2, 2)
            .with_global_mean(mean)
            .with_fit(BaselineFit::Als)
            .fit_als(&data, &Device::flex())
            .unwrap();
        let got: Vec<f32> = m
            .score_all(Tensor::from_ints([0], &Device::flex()))
            .into_data()
            .try_into_vec_as()
            .unwrap();
        assert!(got[0] > got[1], "{got:?}");
    }

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
