//! Item-based k-nearest neighbours on baseline residuals (Koren, "Factor in the Neighbors",
//! TKDD 4(1), 2010, section 2.2; Surprise's `KNNBaseline` with `user_based = False`):
//!
//! ```text
//! r̂(u, i) = b_ui + Σ_{j ∈ N_k(i; u)} s_ij (r_uj - b_uj) / Σ_{j ∈ N_k(i; u)} s_ij
//! ```
//!
//! where `b_ui = μ + b_u + b_i` are baselines fitted by alternating least squares
//! ([`als_biases`]) and `N_k(i; u)` are the `k` items the user rated that are most similar to
//! `i`, positive similarities only (none: the baseline alone). The similarity `s_ij` is computed
//! once, in closed form, over the users who rated both items, and shrunk towards 0 when they are
//! few:
//!
//! - [`Similarity::Pearson`]: the correlation of the baseline residuals `r - b` (Surprise's
//!   `pearson_baseline`), times `(n_ij - 1) / (n_ij - 1 + shrinkage)`;
//! - [`Similarity::Cosine`]: the cosine of the raw ratings, times `n_ij / (n_ij + shrinkage)`.
//!
//! The model keeps the similarities as a dense `[n_items, n_items]` table, and reads the
//! ratings of its users at prediction time (the training ratings, or others given with
//! [`ItemKnn::with_inputs`]). It has no id vectors and is not a [`Retriever`](crate::Retriever).

use std::collections::HashMap;
use std::sync::Arc;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use recsys_data::{Interactions, UserHistory};
use serde::{Deserialize, Serialize};

use crate::autorec::row_batch;
use crate::baseline::{als_biases, column_table};
use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::losses::mse;
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Scorer};

/// The most items an item-KNN model takes: its similarity table is dense (`n_items²` floats,
/// 576 MB at this size).
pub const MAX_ITEMS: usize = 12_000;

/// Scores of pairs computed at once, bounding the `[pairs, n_items]` temporaries.
const PAIR_FLOATS: usize = 1 << 22;

/// How item-KNN compares two items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// Pearson correlation of baseline residuals, shrunk.
    #[default]
    Pearson,
    /// Cosine of the raw ratings, shrunk.
    Cosine,
}

/// Configuration of [`ItemKnn`].
#[derive(Config, Debug)]
pub struct ItemKnnConfig {
    pub n_users: usize,
    pub n_items: usize,
    /// `k`: neighbours per prediction, among the items the user rated.
    #[config(default = 40)]
    pub neighbours: usize,
    /// Shrinkage of similarities computed on few common users.
    #[config(default = 100.0)]
    pub shrinkage: f32,
    #[config(default = "Similarity::Pearson")]
    pub similarity: Similarity,
    /// Global mean rating `μ` of the training data.
    #[config(default = 0.0)]
    pub global_mean: f32,
    /// Baselines: ALS regularisation of the user biases.
    #[config(default = 15.0)]
    pub als_reg_user: f32,
    /// Baselines: ALS regularisation of the item biases.
    #[config(default = 10.0)]
    pub als_reg_item: f32,
    /// Baselines: ALS rounds.
    #[config(default = 10)]
    pub als_epochs: usize,
}

impl ItemKnnConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if self.n_users == 0 || self.n_items == 0 {
            return bad("item-knn: n_users and n_items must be positive".into());
        }
        if self.n_items > MAX_ITEMS {
            return bad(format!(
                "item-knn keeps a dense item x item similarity table: at most {MAX_ITEMS} items, \
                 the data has {} (filter it, e.g. recsys data filter --min-item-ratings)",
                self.n_items
            ));
        }
        if self.neighbours == 0 {
            return bad("item-knn: neighbours must be at least 1".into());
        }
        if !(self.shrinkage >= 0.0 && self.als_reg_user >= 0.0 && self.als_reg_item >= 0.0) {
            return bad("item-knn: shrinkage and the ALS regularisations must be >= 0".into());
        }
        Ok(())
    }

    /// The model with zero similarities and biases (what saved weights are loaded into).
    pub fn init(&self, device: &Device) -> Result<ItemKnn> {
        self.validate()?;
        let zeros = |n: usize, d: usize| {
            EmbeddingTableConfig::new(n, d)
                .with_init(EmbeddingInit::Zeros)
                .init(device)
        };
        Ok(ItemKnn {
            similarity: zeros(self.n_items, self.n_items),
            user_bias: zeros(self.n_users, 1),
            item_bias: zeros(self.n_items, 1),
            global_mean: self.global_mean,
            neighbours: self.neighbours.min(self.n_items),
            inputs: None,
        })
    }

    /// The model fitted on `data`: ALS baselines, then the item similarities; it reads `data`.
    pub fn fit_on(&self, data: &Interactions, device: &Device) -> Result<ItemKnn> {
        let mut model = self.init(device)?;
        let (bu, bi) = als_biases(
            data,
            self.global_mean,
            self.als_reg_user,
            self.als_reg_item,
            self.als_epochs,
        );
        let values: Vec<f32> = match self.similarity {
            Similarity::Pearson => (0..data.len())
                .map(|k| {
                    let (u, i) = (data.users[k] as usize, data.items[k] as usize);
                    data.ratings[k] - self.global_mean - bu[u] - bi[i]
                })
                .collect(),
            Similarity::Cosine => data.ratings.clone(),
        };
        let sims = similarities(data, &values, self.similarity, self.shrinkage);
        let n = self.n_items;
        model.similarity = EmbeddingTable {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(sims, [n, n]), device)),
        };
        model.user_bias = column_table(bu, device);
        model.item_bias = column_table(bi, device);
        Ok(model.with_inputs(data))
    }
}

/// The shrunk similarities of every pair of items (row-major `[n_items, n_items]`, zero on the
/// diagonal) from `values[k]`, the value of row `k` of `data` (see the module docs).
pub fn similarities(
    data: &Interactions,
    values: &[f32],
    kind: Similarity,
    shrinkage: f32,
) -> Vec<f32> {
    let n = data.n_items;
    let with_values = Interactions {
        ratings: values.to_vec(),
        timestamps: None,
        ..data.clone()
    };
    let by_user = UserHistory::new(&with_values);
    let by_item = UserHistory::by_item(&with_values);
    let mut out = vec![0.0f32; n * n];
    let (mut prods, mut sq_i, mut sq_j) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    let mut freq = vec![0u32; n];
    for i in 0..n as u32 {
        for (&u, &x) in by_item.items(i).iter().zip(by_item.ratings(i)) {
            let x = x as f64;
            for (&j, &y) in by_user.items(u).iter().zip(by_user.ratings(u)) {
                let (j, y) = (j as usize, y as f64);
                prods[j] += x * y;
                sq_i[j] += x * x;
                sq_j[j] += y * y;
                freq[j] += 1;
            }
        }
        let row = &mut out[i as usize * n..(i as usize + 1) * n];
        for j in 0..n {
            if freq[j] > 0 && j != i as usize {
                let den = (sq_i[j] * sq_j[j]).sqrt();
                let f = freq[j] as f64;
                let shrunk = match kind {
                    Similarity::Pearson => (f - 1.0) / (f - 1.0 + shrinkage as f64),
                    Similarity::Cosine => f / (f + shrinkage as f64),
                };
                if den > 0.0 && shrunk.is_finite() {
                    row[j] = (prods[j] / den * shrunk) as f32;
                }
            }
            prods[j] = 0.0;
            sq_i[j] = 0.0;
            sq_j[j] = 0.0;
            freq[j] = 0;
        }
    }
    out
}

/// The ratings an [`ItemKnn`] reads at prediction time, by user.
#[derive(Debug, Clone)]
pub struct ItemKnnInputs(pub Arc<UserHistory>);

/// Item-based KNN with baselines; see the [module docs](self).
#[derive(Module, Debug)]
pub struct ItemKnn {
    /// `[n_items, n_items]`: row `i` holds `s_ij`.
    pub similarity: EmbeddingTable,
    /// `[n_users, 1]`.
    pub user_bias: EmbeddingTable,
    /// `[n_items, 1]`.
    pub item_bias: EmbeddingTable,
    #[module(skip)]
    global_mean: f32,
    #[module(skip)]
    neighbours: usize,
    #[module(skip)]
    inputs: Option<ItemKnnInputs>,
}

impl ItemKnn {
    /// The model reading the ratings of `data` (by user) at prediction time.
    pub fn with_inputs(mut self, data: &Interactions) -> Self {
        assert_eq!(
            (data.n_users, data.n_items),
            (self.user_bias.n(), self.similarity.n()),
            "item-KNN inputs of another id space"
        );
        self.inputs = Some(ItemKnnInputs(Arc::new(UserHistory::new(data))));
        self
    }

    fn inputs(&self) -> &UserHistory {
        &self
            .inputs
            .as_ref()
            .expect("item-KNN predicts from ratings: build it with `with_inputs`")
            .0
    }

    /// Predictions of the pairs `(users[k], items[k])`, all on one device batch.
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch]`
    fn predict_block(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let device = users.device();
        let [batch] = users.dims();
        let n = self.similarity.n();
        // Each distinct user's rating row once, then one row per pair.
        let ids = users
            .clone()
            .into_data()
            .try_into_vec_as::<i64>()
            .expect("int indices");
        let mut local: HashMap<i64, i64> = HashMap::new();
        let mut distinct: Vec<u32> = Vec::new();
        let rows_of_pairs: Vec<i64> = ids
            .iter()
            .map(|&u| {
                *local.entry(u).or_insert_with(|| {
                    distinct.push(u as u32);
                    distinct.len() as i64 - 1
                })
            })
            .collect();
        let rows = row_batch(self.inputs(), &distinct, &device);
        let d = distinct.len();
        let bu = self
            .user_bias
            .lookup(Tensor::from_data(TensorData::new(distinct.clone(), [d]), &device));
        let bi = self.item_bias.table().reshape([1, n]);
        let residual = (rows.rows - bu - bi.clone()).sub_scalar(self.global_mean) * rows.mask.clone();
        let at = Tensor::<1, Int>::from_data(TensorData::new(rows_of_pairs, [batch]), &device)
            .reshape([batch, 1])
            .expand([batch, n]);
        let residual = residual.gather(0, at.clone());
        let mask = rows.mask.gather(0, at);
        // Similarities to the items the user rated; the others far below any similarity.
        let sims = self.similarity.lookup(items.clone());
        let candidates = sims * mask.clone() + (mask - 1.0).mul_scalar(1e9);
        let (top, idx) = candidates.topk_with_indices(self.neighbours, 1);
        let weights = top.clamp_min(0.0);
        let num = (weights.clone() * residual.gather(1, idx)).sum_dim(1);
        let den = weights.sum_dim(1);
        let adjust = num / den.clamp_min(1e-12);
        let base = self.user_bias.lookup(users) + self.item_bias.lookup(items);
        (base + adjust).reshape([batch]).add_scalar(self.global_mean)
    }
}

impl Scorer for ItemKnn {
    fn n_items(&self) -> usize {
        self.similarity.n()
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let [batch] = users.dims();
        let per = (PAIR_FLOATS / self.n_items()).max(1);
        if batch <= per {
            return self.predict_block(users, items);
        }
        let parts: Vec<Tensor<1>> = (0..batch)
            .step_by(per)
            .map(|s| {
                let e = (s + per).min(batch);
                self.predict_block(users.clone().slice(s..e), items.clone().slice(s..e))
            })
            .collect();
        Tensor::cat(parts, 0)
    }

    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = users.dims();
        let n = self.n_items();
        let (u, i) = crate::traits::pairs_with_every_item(users, n);
        self.score(u, i).reshape([batch, n])
    }
}

impl RatingModel for ItemKnn {
    type Batch = RatingBatch;

    /// The squared error of the predictions (the model is fitted in closed form, not by this
    /// loss).
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

    /// Items 0 and 1 rated alike by every user, item 2 the opposite way.
    fn data() -> Interactions {
        let (mut u, mut i, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for user in 0..6u32 {
            let x = 1.0 + (user % 5) as f32;
            for (item, rating) in [(0, x), (1, x), (2, 6.0 - x)] {
                u.push(user);
                i.push(item);
                r.push(rating);
            }
        }
        Interactions::new(u, i, r, None, 6, 3).unwrap()
    }

    #[test]
    fn similarities_follow_the_ratings_and_shrink() {
        let d = data();
        let s = similarities(&d, &d.ratings, Similarity::Cosine, 0.0);
        assert_eq!(s[0], 0.0, "no self-similarity");
        assert!((s[1] - 1.0).abs() < 1e-6, "{s:?}");
        assert!(s[2] < s[1]);
        let shrunk = similarities(&d, &d.ratings, Similarity::Cosine, 6.0);
        assert!((shrunk[1] - 0.5).abs() < 1e-6, "6 common users, shrinkage 6: {shrunk:?}");
        let centred: Vec<f32> = d.ratings.iter().map(|r| r - 3.0).collect();
        let p = similarities(&d, &centred, Similarity::Pearson, 0.0);
        assert!(p[1] > 0.99 && p[2] < -0.9, "{p:?}");
    }

    #[test]
    fn a_neighbour_moves_the_prediction_from_the_baseline() {
        let device = Device::flex();
        let d = data();
        let c = ItemKnnConfig::new(6, 3)
            .with_global_mean(d.mean_rating() as f32)
            .with_shrinkage(0.0);
        let m = c.fit_on(&d, &device).unwrap();
        // User 4 rated item 0 with 5 (far above its baseline): item 1, its twin, follows;
        // reading ratings without item 0, the prediction falls back towards the baseline.
        let p = |m: &ItemKnn| -> f32 {
            m.score(Tensor::from_ints([4], &device), Tensor::from_ints([1], &device))
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap()[0]
        };
        let with = p(&m);
        let without = p(&m.clone().with_inputs(&d.filter_rows(|k| !(d.users[k] == 4 && d.items[k] == 0))));
        assert!(with > without + 0.1, "{with} vs {without}");
        assert!((with - 5.0).abs() < 0.5, "{with}");
    }
}
