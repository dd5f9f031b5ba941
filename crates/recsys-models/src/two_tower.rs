//! A two-tower retrieval model (Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large
//! Corpus Item Recommendations", RecSys 2019; the TensorFlow Recommenders retrieval tutorial).
//!
//! Each tower maps an id to a vector: an embedding, then optional dense layers (ReLU between
//! them, none after the last), so `u = f(user)`, `v = g(item)` and the score is `u · v`.
//!
//! Training is the retrieval task on a batch of `B` positive pairs: every other item of the batch
//! is a negative for each user (in-batch softmax),
//!
//! ```text
//! logits[a, b] = u_a · v_b / τ  [- ln Q(item_b)]     (τ: temperature; Q: sampling probability)
//! loss = Σ_a ( logsumexp_b logits[a, b] - logits[a, a] )
//! ```
//!
//! With the popularity correction (logQ), each candidate's logit is lowered by the log of its
//! probability of appearing in a batch (its share of the training pairs), which removes the
//! bias of in-batch negatives towards popular items. Accidental hits (the same item as the row's
//! positive elsewhere in the batch) are masked out of the softmax. The loss is summed over the
//! batch as TFRS does (`sum_loss`), or averaged.
//!
//! With `oov`, each table has one extra row (the last) for ids outside the vocabulary, as Keras'
//! `StringLookup` / `IntegerLookup` keep one.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor};

use crate::embedding::{EmbeddingInit, EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::layers::{DenseInit, seeded_stack};
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer, pairwise_loss};

/// Configuration of [`TwoTower`]; defaults follow the TFRS tutorial (dimension 32, no dense
/// layers, TFRS' uniform embedding initialiser).
#[derive(Config, Debug)]
pub struct TwoTowerConfig {
    pub n_users: usize,
    pub n_items: usize,
    /// Width of the embeddings.
    #[config(default = 32)]
    pub embedding_dim: usize,
    /// Dense layers on top of each embedding (the last width is the output dimension).
    #[config(default = "Vec::new()")]
    pub hidden: Vec<usize>,
    /// Softmax temperature `τ`.
    #[config(default = 1.0)]
    pub temperature: f32,
    /// Subtract `ln Q(item)` from candidate logits (popularity correction).
    #[config(default = false)]
    pub logq: bool,
    /// Mask other occurrences of a row's positive item out of its softmax.
    #[config(default = true)]
    pub remove_accidental_hits: bool,
    /// Sum the loss over the batch (TFRS) instead of averaging it.
    #[config(default = true)]
    pub sum_loss: bool,
    /// One extra row per table for out-of-vocabulary ids.
    #[config(default = false)]
    pub oov: bool,
    /// Weight of an L2 penalty on the looked-up embedding rows (per batch, averaged).
    #[config(default = 0.0)]
    pub l2: f32,
    #[config(default = "EmbeddingInit::Uniform { limit: 0.05 }")]
    pub init: EmbeddingInit,
    #[config(default = 42)]
    pub seed: u64,
}

impl TwoTowerConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(format!("two_tower: {m}")));
        if self.n_users == 0 || self.n_items == 0 || self.embedding_dim == 0 {
            return bad("n_users, n_items and embedding_dim must be positive".into());
        }
        if self.hidden.contains(&0) {
            return bad(format!(
                "hidden widths must be positive, got {:?}",
                self.hidden
            ));
        }
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return bad(format!(
                "temperature ({}) must be positive",
                self.temperature
            ));
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return bad(format!("l2 ({}) must be >= 0", self.l2));
        }
        Ok(())
    }

    /// Rows of the user table (one more with `oov`).
    pub fn user_rows(&self) -> usize {
        self.n_users + usize::from(self.oov)
    }

    /// Rows of the item table (one more with `oov`).
    pub fn item_rows(&self) -> usize {
        self.n_items + usize::from(self.oov)
    }

    pub fn init(&self, device: &Device) -> Result<TwoTower> {
        self.validate()?;
        device.seed(self.seed);
        let table = |n: usize, salt: u64| {
            EmbeddingTableConfig::new(n, self.embedding_dim)
                .with_init(self.init)
                .with_seed(self.seed.wrapping_mul(2).wrapping_add(salt))
                .init(device)
        };
        let layers = |tower: u64| -> Vec<Linear> {
            let mut widths = vec![self.embedding_dim];
            widths.extend(&self.hidden);
            seeded_stack(
                &widths,
                DenseInit::XavierUniform { gain: 1.0 },
                self.seed,
                100 * tower,
                device,
            )
        };
        Ok(TwoTower {
            user_embedding: table(self.user_rows(), 0),
            item_embedding: table(self.item_rows(), 1),
            user_layers: layers(1),
            item_layers: layers(2),
            temperature: self.temperature,
            remove_accidental_hits: self.remove_accidental_hits,
            sum_loss: self.sum_loss,
            l2: self.l2,
            n_items: self.n_items,
            log_q: None,
            logq: self.logq,
        })
    }
}

/// The two-tower model; see the [module docs](self).
#[derive(Module, Debug)]
pub struct TwoTower {
    pub user_embedding: EmbeddingTable,
    pub item_embedding: EmbeddingTable,
    pub user_layers: Vec<Linear>,
    pub item_layers: Vec<Linear>,
    #[module(skip)]
    temperature: f32,
    #[module(skip)]
    remove_accidental_hits: bool,
    #[module(skip)]
    sum_loss: bool,
    #[module(skip)]
    l2: f32,
    /// Items of the catalogue (without the OOV row).
    #[module(skip)]
    n_items: usize,
    #[module(skip)]
    logq: bool,
    /// `[item_rows]` `ln Q(item)`, set from the training data when `logq` is on.
    #[module(skip)]
    log_q: Option<Tensor<1>>,
}

fn tower(layers: &[Linear], x: Tensor<2>) -> Tensor<2> {
    let n = layers.len();
    layers.iter().enumerate().fold(x, |x, (k, l)| {
        let y = crate::fused::dense(l, x);
        if k + 1 < n { relu(y) } else { y }
    })
}

impl TwoTower {
    /// Sets the candidate sampling probabilities `Q(item)` (the item's share of the training
    /// pairs, at least one pair each) when the model corrects for popularity; a no-op otherwise.
    pub fn with_item_counts(mut self, items: &[u32]) -> Self {
        if !self.logq {
            return self;
        }
        let rows = self.item_embedding.n();
        let mut counts = vec![1f32; rows];
        for &i in items {
            counts[i as usize] += 1.0;
        }
        let total: f32 = counts.iter().sum();
        let log_q: Vec<f32> = counts.iter().map(|c| (c / total).ln()).collect();
        let device = self.item_embedding.table().device();
        self.log_q = Some(Tensor::from_floats(log_q.as_slice(), &device));
        self
    }

    /// The user tower.
    ///
    /// # Shapes
    /// - `users`: `[batch]`
    /// - output: `[batch, d]`
    pub fn users_forward(&self, users: Tensor<1, Int>) -> Tensor<2> {
        tower(&self.user_layers, self.user_embedding.lookup(users))
    }

    /// The item tower.
    ///
    /// # Shapes
    /// - `items`: `[batch]`
    /// - output: `[batch, d]`
    pub fn items_forward(&self, items: Tensor<1, Int>) -> Tensor<2> {
        tower(&self.item_layers, self.item_embedding.lookup(items))
    }

    /// Both towers' outputs for the pairs `(users[k], items[k])`, and the L2 penalty on the
    /// embeddings they looked up (each row looked up once).
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch, d]`, `[batch, d]`, `[1]`
    fn pair_vectors(
        &self,
        users: Tensor<1, Int>,
        items: Tensor<1, Int>,
    ) -> (Tensor<2>, Tensor<2>, Option<Tensor<1>>) {
        let [b] = users.dims();
        let eu = self.user_embedding.lookup(users);
        let ei = self.item_embedding.lookup(items);
        let penalty = (self.l2 > 0.0).then(|| {
            (eu.clone().square().sum() + ei.clone().square().sum())
                .mul_scalar(self.l2 / b.max(1) as f32)
        });
        (
            tower(&self.user_layers, eu),
            tower(&self.item_layers, ei),
            penalty,
        )
    }

    /// The in-batch softmax loss of a batch of positive pairs (see the module docs).
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[1]`
    pub fn in_batch_loss(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let (u, v, _) = self.pair_vectors(users, items.clone());
        self.softmax_loss(u, v, items)
    }

    /// The in-batch softmax loss of the tower outputs `u`, `v` of a batch of positive pairs
    /// whose items are `items`.
    fn softmax_loss(&self, u: Tensor<2>, v: Tensor<2>, items: Tensor<1, Int>) -> Tensor<1> {
        let [b, _] = u.dims();
        let scale = |t: Tensor<2>| {
            if self.temperature == 1.0 {
                t
            } else {
                t.div_scalar(self.temperature)
            }
        };
        // The positives' logits, row by row: [b, 1].
        let mut positive = scale((u.clone() * v.clone()).sum_dim(1));
        let mut logits = scale(u.matmul(v.transpose())); // [b, b]
        if let Some(log_q) = &self.log_q {
            let q = log_q.clone().select(0, items.clone());
            positive = positive - q.clone().reshape([b, 1]);
            logits = logits - q.reshape([1, b]);
        }
        // With the mask, every entry whose item is the row's positive item (the diagonal
        // included) leaves the softmax and the positive is added back once.
        let lse = crate::fused::row_lse(
            logits,
            positive.clone(),
            items,
            self.remove_accidental_hits,
        );
        let per_row = (lse - positive).reshape([b]);
        if self.sum_loss {
            per_row.sum()
        } else {
            per_row.mean()
        }
    }
}

impl Scorer for TwoTower {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let [b] = users.dims();
        (self.users_forward(users) * self.items_forward(items))
            .sum_dim(1)
            .reshape([b])
    }

    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        self.user_vectors(users)
            .matmul(self.item_vectors().transpose())
    }
}

impl Retriever for TwoTower {
    fn user_vectors(&self, users: Tensor<1, Int>) -> Tensor<2> {
        self.users_forward(users)
    }

    /// The catalogue's item vectors (the OOV row excluded).
    fn item_vectors(&self) -> Tensor<2> {
        let device = self.item_embedding.table().device();
        self.items_forward(Tensor::arange(0..self.n_items as i64, &device))
    }
}

impl RatingModel for TwoTower {
    type Batch = RatingBatch;

    /// In-batch softmax on the batch's pairs; BPR when the batch has negatives.
    fn loss(&self, batch: &RatingBatch) -> ModelLoss {
        if let Some(out) = pairwise_loss(batch, |u, i| {
            let [b] = u.dims();
            let (u, v, penalty) = self.pair_vectors(u, i);
            ((u * v).sum_dim(1).reshape([b]), penalty)
        }) {
            return out;
        }
        let (u, v, penalty) = self.pair_vectors(batch.users.clone(), batch.items.clone());
        ModelLoss {
            loss: self.softmax_loss(u, v, batch.items.clone()),
            penalty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vec1<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn oov_row_and_tower_widths() {
        let device = Device::flex();
        let m = TwoTowerConfig::new(4, 6)
            .with_embedding_dim(5)
            .with_hidden(vec![8, 3])
            .with_oov(true)
            .init(&device)
            .unwrap();
        assert_eq!(m.user_embedding.n(), 5);
        let users = Tensor::<1, Int>::from_ints([0, 3, 4], &device);
        assert_eq!(m.score_all(users).dims(), [3, 6]);
        assert_eq!(m.item_vectors().dims(), [6, 3]);
    }

    /// The in-batch loss by hand: `Σ_a logsumexp_b(l[a, b]) - l[a, a]`.
    fn by_hand(u: &[Vec<f32>], v: &[Vec<f32>], items: &[usize], mask: bool, log_q: &[f32]) -> f32 {
        let b = u.len();
        let mut total = 0.0;
        for a in 0..b {
            let logits: Vec<f32> = (0..b)
                .map(|c| {
                    let dot: f32 = u[a].iter().zip(&v[c]).map(|(x, y)| x * y).sum();
                    let l = dot - log_q[items[c]];
                    if mask && c != a && items[c] == items[a] {
                        -1e9
                    } else {
                        l
                    }
                })
                .collect();
            let max = logits.iter().cloned().fold(f32::MIN, f32::max);
            let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
            total += lse - logits[a];
        }
        total
    }

    #[test]
    fn in_batch_softmax_matches_a_hand_computation() {
        let device = Device::flex();
        let users = [0i64, 1, 2, 3];
        let items = [2usize, 0, 2, 5];
        for (mask, logq) in [(false, false), (true, false), (true, true)] {
            let m = TwoTowerConfig::new(4, 6)
                .with_embedding_dim(3)
                .with_init(EmbeddingInit::Normal { std: 0.7 })
                .with_remove_accidental_hits(mask)
                .with_logq(logq)
                .init(&device)
                .unwrap()
                .with_item_counts(&[0, 0, 0, 2, 5]);
            let u_t = m.users_forward(Tensor::from_ints(users, &device));
            let v_t = m.items_forward(Tensor::from_ints(items.map(|i| i as i64), &device));
            let rows =
                |t: Tensor<2>| -> Vec<Vec<f32>> { vec1(t).chunks(3).map(|c| c.to_vec()).collect() };
            let log_q: Vec<f32> = match &m.log_q {
                Some(q) => vec1(q.clone()),
                None => vec![0.0; 6],
            };
            let want = by_hand(&rows(u_t), &rows(v_t), &items, mask, &log_q);
            let got = vec1(m.in_batch_loss(
                Tensor::from_ints(users, &device),
                Tensor::from_ints(items.map(|i| i as i64), &device),
            ))[0];
            assert!((got - want).abs() < 1e-4, "{mask} {logq}: {got} vs {want}");
        }
        // Q from counts: item 0 three pairs (+1), the others 1 or 2; sums to 1.
        let m = TwoTowerConfig::new(2, 6)
            .with_logq(true)
            .init(&device)
            .unwrap()
            .with_item_counts(&[0, 0, 0, 2, 5]);
        let q: f32 = vec1(m.log_q.unwrap()).iter().map(|l| l.exp()).sum();
        assert!((q - 1.0).abs() < 1e-5);
    }
}
