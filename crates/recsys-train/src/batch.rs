//! Training data to device tensors, in seeded shuffled mini-batches: rated pairs of
//! [`Interactions`] as [`RatingBatch`]es, rows of a [`UserHistory`] (the rating matrix by user or by
//! item) as dense [`RowBatch`]es.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use recsys_data::{Interactions, UserHistory};
use recsys_models::{HostRows, RatingBatch, RowBatch};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Training data that a model's batch type is cut from: `len()` examples, any subset of which
/// becomes one batch. The training loop shuffles `0..len()` per epoch and asks for batches.
///
/// A batch is made in two halves: [`BatchSource::host_batch`] cuts it on the host (any thread:
/// the training loop prepares the next batches on a helper thread while the device works) and
/// [`BatchSource::upload`] sends it to the device.
pub trait BatchSource: Sync {
    type Batch;
    /// A batch still on the host.
    type Host: Send;

    /// Number of examples (rated pairs, or rows of the rating matrix).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples `rows` of epoch `epoch` (1-based; 0 outside training) as one batch on the
    /// host. Sources that sample (negatives) draw from `epoch`, so every epoch resamples; the
    /// result depends on `(rows, epoch)` only.
    fn host_batch(&self, rows: &[usize], epoch: usize) -> Self::Host;

    /// A host batch on `device`.
    fn upload(host: Self::Host, device: &Device) -> Self::Batch;

    /// [`BatchSource::host_batch`] then [`BatchSource::upload`].
    fn batch(&self, rows: &[usize], epoch: usize, device: &Device) -> Self::Batch {
        Self::upload(self.host_batch(rows, epoch), device)
    }
}

/// A [`RatingBatch`] on the host.
#[derive(Debug, Clone, Default)]
pub struct HostPairs {
    pub users: Vec<i32>,
    pub items: Vec<i32>,
    pub ratings: Vec<f32>,
    /// BPR negatives.
    pub negatives: Option<Vec<i32>>,
}

impl HostPairs {
    pub fn upload(self, device: &Device) -> RatingBatch {
        let ints = |v: Vec<i32>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
        };
        let n = self.ratings.len();
        RatingBatch {
            users: ints(self.users),
            items: ints(self.items),
            ratings: Tensor::from_data(TensorData::new(self.ratings, [n]), device),
            negatives: self.negatives.map(ints),
        }
    }
}

/// Rated pairs.
impl BatchSource for Interactions {
    type Batch = RatingBatch;
    type Host = HostPairs;

    fn len(&self) -> usize {
        Interactions::len(self)
    }

    fn host_batch(&self, rows: &[usize], _epoch: usize) -> HostPairs {
        HostPairs {
            users: rows.iter().map(|&r| self.users[r] as i32).collect(),
            items: rows.iter().map(|&r| self.items[r] as i32).collect(),
            ratings: rows.iter().map(|&r| self.ratings[r]).collect(),
            negatives: None,
        }
    }

    fn upload(host: HostPairs, device: &Device) -> RatingBatch {
        host.upload(device)
    }
}

/// Rows of the rating matrix (users', or items' with [`UserHistory::by_item`]).
impl BatchSource for UserHistory {
    type Batch = RowBatch;
    type Host = HostRows;

    fn len(&self) -> usize {
        self.n_users()
    }

    fn host_batch(&self, rows: &[usize], _epoch: usize) -> HostRows {
        let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        HostRows::new(self, &rows)
    }

    fn upload(host: HostRows, device: &Device) -> RowBatch {
        host.upload(device)
    }
}

/// How implicit-feedback training pairs are made from positives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "loss", rename_all = "snake_case")]
pub enum ImplicitLoss {
    /// Pointwise: each positive (label 1) with `negatives` sampled unseen items (label 0), for
    /// binary cross-entropy (NCF).
    Bce { negatives: usize },
    /// Pairwise: each positive with one sampled unseen item, for the BPR loss.
    Bpr,
    /// Positives only: the other items of a batch are the negatives (in-batch softmax of the
    /// two-tower retrieval task).
    InBatch,
}

/// Implicit-feedback training examples: the positive `(user, item)` pairs of the training data and
/// negatives drawn uniformly from each user's unseen items. A negative depends only on
/// `(seed, epoch, example)`, so every epoch resamples and a run is reproducible.
#[derive(Debug, Clone)]
pub struct ImplicitPairs {
    users: Vec<u32>,
    items: Vec<u32>,
    seen: Arc<UserHistory>,
    loss: ImplicitLoss,
    seed: u64,
}

impl ImplicitPairs {
    /// The positives of `train` (every pair counts) with negatives per `loss`. Fails when a user
    /// has fewer unseen items than negatives are asked for per positive.
    pub fn new(train: &Interactions, loss: ImplicitLoss, seed: u64) -> Result<Self> {
        let seen = UserHistory::new(train);
        let want = match loss {
            ImplicitLoss::Bce { negatives } => negatives,
            ImplicitLoss::Bpr => 1,
            ImplicitLoss::InBatch => 0,
        };
        for u in 0..seen.n_users() as u32 {
            let n_seen = seen.items(u).len();
            let unseen = seen.n_items() - n_seen;
            if n_seen > 0 && unseen < want {
                return Err(TrainError::Config(format!(
                    "user index {u} has {unseen} unseen items, fewer than the {want} negatives \
                     asked for per positive"
                )));
            }
        }
        Ok(Self {
            users: train.users.clone(),
            items: train.items.clone(),
            seen: Arc::new(seen),
            loss,
            seed,
        })
    }

    fn per_positive(&self) -> usize {
        match self.loss {
            ImplicitLoss::Bce { negatives } => 1 + negatives,
            ImplicitLoss::Bpr | ImplicitLoss::InBatch => 1,
        }
    }

    /// An unseen item of `user`, drawn from `(seed, epoch, example)`.
    fn negative(&self, user: u32, epoch: usize, example: usize) -> u32 {
        let seen = self.seen.items(user);
        let n = self.seen.n_items() as u64;
        let mut state = self.seed
            ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (example as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        loop {
            // SplitMix64.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let i = ((z as u128 * n as u128) >> 64) as u32;
            if seen.binary_search(&i).is_err() {
                return i;
            }
        }
    }
}

impl BatchSource for ImplicitPairs {
    type Batch = RatingBatch;
    type Host = HostPairs;

    fn len(&self) -> usize {
        self.users.len() * self.per_positive()
    }

    fn host_batch(&self, rows: &[usize], epoch: usize) -> HostPairs {
        let per = self.per_positive();
        let mut users = Vec::with_capacity(rows.len());
        let mut items = Vec::with_capacity(rows.len());
        let mut labels = Vec::with_capacity(rows.len());
        let mut negatives = Vec::new();
        for &r in rows {
            let (p, j) = (r / per, r % per);
            let u = self.users[p];
            users.push(u as i32);
            match self.loss {
                ImplicitLoss::Bpr => {
                    items.push(self.items[p] as i32);
                    labels.push(1.0);
                    negatives.push(self.negative(u, epoch, r) as i32);
                }
                ImplicitLoss::InBatch => {
                    items.push(self.items[p] as i32);
                    labels.push(1.0);
                }
                ImplicitLoss::Bce { .. } if j == 0 => {
                    items.push(self.items[p] as i32);
                    labels.push(1.0);
                }
                ImplicitLoss::Bce { .. } => {
                    items.push(self.negative(u, epoch, r) as i32);
                    labels.push(0.0);
                }
            }
        }
        HostPairs {
            users,
            items,
            ratings: labels,
            negatives: (self.loss == ImplicitLoss::Bpr).then_some(negatives),
        }
    }

    fn upload(host: HostPairs, device: &Device) -> RatingBatch {
        host.upload(device)
    }
}

/// The rows of one epoch in training order: `0..n` shuffled by a [`StdRng`] seeded from
/// `(seed, epoch)`, so every epoch has its own order and a run is reproducible.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}

/// Dense indices as an `Int` tensor.
pub fn index_tensor(idx: &[u32], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
    Tensor::from_data(TensorData::new(data, [idx.len()]), device)
}

/// The batches of one epoch on the host: `order` cut into runs of `batch_size` rows (the last may
/// be shorter), each with its number of examples. The training loop runs this on a helper thread
/// and uploads what it yields.
pub fn host_batches<'a, S: BatchSource>(
    data: &'a S,
    order: &'a [usize],
    batch_size: usize,
    epoch: usize,
) -> impl Iterator<Item = (S::Host, usize)> + 'a {
    order
        .chunks(batch_size.max(1))
        .map(move |rows| (data.host_batch(rows, epoch), rows.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Interactions {
        Interactions::new(
            vec![0, 1, 2, 0, 1],
            vec![1, 2, 0, 2, 1],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            None,
            3,
            3,
        )
        .unwrap()
    }

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 0);
        assert_eq!(a, epoch_order(100, 7, 0));
        assert_ne!(a, epoch_order(100, 7, 1));
        assert_ne!(a, epoch_order(100, 8, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn batches_cover_every_row_once() {
        let d = data();
        let device = Device::flex();
        let order = epoch_order(d.len(), 3, 0);
        let batches: Vec<_> = host_batches(&d, &order, 2, 0).collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(
            batches.iter().map(|b| b.1).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let mut ratings: Vec<f32> = batches
            .into_iter()
            .flat_map(|(h, _)| {
                let b = Interactions::upload(h, &device);
                b.ratings.into_data().try_into_vec_as::<f32>().unwrap()
            })
            .collect();
        ratings.sort_by(f32::total_cmp);
        assert_eq!(ratings, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let in_order: Vec<usize> = (0..d.len()).collect();
        let first = d.batch(&in_order, 0, &device);
        let users = first.users.into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(users, vec![0, 1, 2, 0, 1]);
    }
}

#[cfg(test)]
mod implicit_tests {
    use super::*;

    fn ints(t: Tensor<1, Int>) -> Vec<i64> {
        t.into_data().try_into_vec_as::<i64>().unwrap()
    }

    #[test]
    fn negatives_are_unseen_seeded_and_resampled_per_epoch() {
        // User 0 saw items 0..3 of 6, user 1 item 5.
        let train = Interactions::new(vec![0, 0, 0, 1], vec![0, 1, 2, 5], vec![4.0; 4], None, 2, 6)
            .unwrap();
        let device = Device::flex();
        let src = ImplicitPairs::new(&train, ImplicitLoss::Bce { negatives: 3 }, 9).unwrap();
        assert_eq!(src.len(), 16);
        let all: Vec<usize> = (0..16).collect();
        let b = src.batch(&all, 1, &device);
        let (u, i) = (ints(b.users), ints(b.items));
        let labels = b.ratings.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(labels.iter().filter(|&&l| l == 1.0).count(), 4);
        for k in 0..16 {
            let seen = train
                .users
                .iter()
                .zip(&train.items)
                .any(|(&a, &b)| a as i64 == u[k] && b as i64 == i[k]);
            assert_eq!(seen, labels[k] == 1.0, "example {k}: ({}, {})", u[k], i[k]);
        }
        let again = ints(src.batch(&all, 1, &device).items);
        assert_eq!(i, again);
        let next = ints(src.batch(&all, 2, &device).items);
        assert_ne!(i, next);
        // BPR: one triple per positive, negatives unseen.
        let bpr = ImplicitPairs::new(&train, ImplicitLoss::Bpr, 9).unwrap();
        let b = bpr.batch(&[0, 1, 2, 3], 1, &device);
        let neg = ints(b.negatives.unwrap());
        assert!(neg[..3].iter().all(|&n| n >= 3) && neg[3] != 5, "{neg:?}");
        // More negatives than user 0 has unseen items.
        let err = ImplicitPairs::new(&train, ImplicitLoss::Bce { negatives: 4 }, 1).unwrap_err();
        assert!(
            err.to_string().contains("3 unseen items, fewer than the 4"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;

    #[test]
    fn row_batches_cover_every_row() {
        let d = Interactions::new(
            vec![0, 1, 2, 0],
            vec![1, 2, 0, 2],
            vec![1.0, 2.0, 3.0, 4.0],
            None,
            3,
            3,
        )
        .unwrap();
        let rows = UserHistory::by_item(&d);
        let device = Device::flex();
        let mut total = 0.0;
        let order = epoch_order(rows.len(), 1, 1);
        for (h, n) in host_batches(&rows, &order, 2, 1) {
            let b = UserHistory::upload(h, &device);
            assert_eq!(b.rows.dims(), [n, 3]);
            total += b.rows.sum().into_scalar::<f32>();
        }
        assert_eq!(total, 10.0);
    }
}
