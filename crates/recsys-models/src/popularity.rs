//! The popularity baseline, fitted in closed form: one score per item, the same for every user.
//!
//! - For ratings, an item's mean rating shrunk towards the global mean `μ` by `β` pseudo-ratings:
//!   `r̂(u, i) = (Σ_u r_ui + β μ) / (n_i + β)` (the damped mean of Funk's Netflix-prize notes;
//!   `β = 0` is the plain item mean, an item without ratings gets `μ`).
//! - For implicit feedback, the share of the training positives that fall on the item, `n_i / n`
//!   (most-popular ranking, the baseline every ranking paper reports).
//!
//! As a [`Retriever`] the user vector is `[1]` and the item vector `[score]`.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use recsys_data::Interactions;

use crate::baseline::column_table;
use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::losses::mse;
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer};

/// Configuration of [`Popularity`].
#[derive(Config, Debug)]
pub struct PopularityConfig {
    pub n_users: usize,
    pub n_items: usize,
    /// `β`: pseudo-ratings at the global mean added to each item's ratings.
    #[config(default = 5.0)]
    pub shrinkage: f32,
    /// Global mean rating `μ` of the training data.
    #[config(default = 0.0)]
    pub global_mean: f32,
    /// Score items by their share of the positives (implicit feedback) instead of a rating.
    #[config(default = false)]
    pub by_count: bool,
}

impl PopularityConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n_users == 0 || self.n_items == 0 {
            return Err(ModelError::InvalidConfig(
                "popularity: n_users and n_items must be positive".into(),
            ));
        }
        if self.shrinkage.is_nan() || self.shrinkage < 0.0 {
            return Err(ModelError::InvalidConfig(format!(
                "popularity: shrinkage ({}) must be >= 0",
                self.shrinkage
            )));
        }
        Ok(())
    }

    /// The model with every item's score at zero (what saved scores are loaded into).
    pub fn init(&self, device: &Device) -> Result<Popularity> {
        self.validate()?;
        Ok(Popularity {
            item_score: EmbeddingTableConfig::new(self.n_items, 1)
                .with_init(EmbeddingInit::Zeros)
                .init(device),
            n_users: self.n_users,
        })
    }

    /// The item scores of `data` (see the module docs).
    pub fn scores(&self, data: &Interactions) -> Vec<f32> {
        let counts = data.item_counts();
        if self.by_count {
            let n = data.len().max(1) as f32;
            return counts.iter().map(|&c| c as f32 / n).collect();
        }
        let mut sums = vec![0.0f64; self.n_items];
        for (&i, &r) in data.items.iter().zip(&data.ratings) {
            sums[i as usize] += r as f64;
        }
        let (beta, mu) = (self.shrinkage as f64, self.global_mean as f64);
        sums.iter()
            .zip(&counts)
            .map(|(&s, &n)| {
                let d = n as f64 + beta;
                if d > 0.0 { ((s + beta * mu) / d) as f32 } else { mu as f32 }
            })
            .collect()
    }

    /// The model fitted on `data`.
    pub fn fit_on(&self, data: &Interactions, device: &Device) -> Result<Popularity> {
        let mut model = self.init(device)?;
        model.item_score = column_table(self.scores(data), device);
        Ok(model)
    }
}

/// The popularity baseline; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Popularity {
    /// `[n_items, 1]`.
    pub item_score: EmbeddingTable,
    #[module(skip)]
    n_users: usize,
}

impl Popularity {
    pub fn n_users(&self) -> usize {
        self.n_users
    }
}

impl Scorer for Popularity {
    fn n_items(&self) -> usize {
        self.item_score.n()
    }

    fn score(&self, _users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let [batch] = items.dims();
        self.item_score.lookup(items).reshape([batch])
    }

    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = users.dims();
        let n = self.n_items();
        self.item_score
            .table()
            .reshape([1, n])
            .expand([batch, n])
    }
}

impl Retriever for Popularity {
    /// `[1]`.
    fn user_vectors(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = users.dims();
        Tensor::ones([batch, 1], &users.device())
    }

    /// `[score]`.
    fn item_vectors(&self) -> Tensor<2> {
        self.item_score.table()
    }
}

impl RatingModel for Popularity {
    type Batch = RatingBatch;

    /// The squared error of the scores (the model is fitted in closed form, not by this loss).
    fn loss(&self, batch: &RatingBatch) -> ModelLoss {
        let pred = self.score(batch.users.clone(), batch.items.clone());
        ModelLoss {
            loss: mse(pred, batch.ratings.clone()),
            penalty: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrunk_item_means_and_shares_of_positives() {
        let data = Interactions::new(
            vec![0, 1, 2, 0],
            vec![0, 0, 0, 1],
            vec![5.0, 5.0, 5.0, 1.0],
            None,
            3,
            3,
        )
        .unwrap();
        let c = PopularityConfig::new(3, 3)
            .with_global_mean(4.0)
            .with_shrinkage(1.0);
        // Item 0: (15 + 4) / 4; item 1: (1 + 4) / 2; item 2 (unrated): the global mean.
        assert_eq!(c.scores(&data), vec![19.0 / 4.0, 2.5, 4.0]);
        let shares = c.clone().with_by_count(true).scores(&data);
        assert_eq!(shares, vec![0.75, 0.25, 0.0]);
        let device = Device::flex();
        let m = c.fit_on(&data, &device).unwrap();
        let all: Vec<f32> = m
            .score_all(Tensor::from_ints([0, 2], &device))
            .into_data()
            .try_into_vec_as()
            .unwrap();
        assert_eq!(&all[..3], &all[3..]);
        assert_eq!(all[1], 2.5);
    }
}
