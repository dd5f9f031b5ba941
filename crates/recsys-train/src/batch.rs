//! Training data to device tensors, in seeded shuffled mini-batches: rated pairs of
//! [`Interactions`] as [`RatingBatch`]es, rows of a [`UserHistory`] (the rating matrix by user or by
//! item) as dense [`RowBatch`]es.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use recsys_data::{Interactions, UserHistory};
use recsys_models::{RatingBatch, RowBatch, row_batch};

/// Training data that a model's batch type is cut from: `len()` examples, any subset of which
/// becomes one batch. The training loop shuffles `0..len()` per epoch and asks for batches.
pub trait BatchSource {
    type Batch;

    /// Number of examples (rated pairs, or rows of the rating matrix).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples `rows` as one batch on `device`.
    fn batch(&self, rows: &[usize], device: &Device) -> Self::Batch;
}

/// Rated pairs.
impl BatchSource for Interactions {
    type Batch = RatingBatch;

    fn len(&self) -> usize {
        Interactions::len(self)
    }

    fn batch(&self, rows: &[usize], device: &Device) -> RatingBatch {
        batch_of(self, rows, device)
    }
}

/// Rows of the rating matrix (users', or items' with [`UserHistory::by_item`]).
impl BatchSource for UserHistory {
    type Batch = RowBatch;

    fn len(&self) -> usize {
        self.n_users()
    }

    fn batch(&self, rows: &[usize], device: &Device) -> RowBatch {
        let rows: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        row_batch(self, &rows, device)
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

/// Floats as a tensor.
pub fn float_tensor(values: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

/// The rows `rows` of `data` as one batch on `device`.
pub fn batch_of(data: &Interactions, rows: &[usize], device: &Device) -> RatingBatch {
    let users: Vec<u32> = rows.iter().map(|&r| data.users[r]).collect();
    let items: Vec<u32> = rows.iter().map(|&r| data.items[r]).collect();
    let ratings: Vec<f32> = rows.iter().map(|&r| data.ratings[r]).collect();
    RatingBatch {
        users: index_tensor(&users, device),
        items: index_tensor(&items, device),
        ratings: float_tensor(&ratings, device),
        negatives: None,
    }
}

/// Mini-batches over `data`: shuffled with `(seed, epoch)` when `shuffle` is given, in row order
/// otherwise. The last batch may be smaller.
pub struct Batches<'a, S: BatchSource = Interactions> {
    data: &'a S,
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
    device: Device,
}

impl<'a, S: BatchSource> Batches<'a, S> {
    pub fn new(
        data: &'a S,
        batch_size: usize,
        shuffle: Option<(u64, usize)>,
        device: &Device,
    ) -> Self {
        let order = match shuffle {
            Some((seed, epoch)) => epoch_order(data.len(), seed, epoch),
            None => (0..data.len()).collect(),
        };
        Self {
            data,
            order,
            batch_size: batch_size.max(1),
            pos: 0,
            device: device.clone(),
        }
    }

    /// Number of batches in total.
    pub fn n_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }
}

impl<S: BatchSource> Iterator for Batches<'_, S> {
    type Item = (S::Batch, usize);

    /// The next batch and its number of examples.
    fn next(&mut self) -> Option<(S::Batch, usize)> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let batch = self.data.batch(&self.order[self.pos..end], &self.device);
        let n = end - self.pos;
        self.pos = end;
        Some((batch, n))
    }
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
        let b = Batches::new(&d, 2, Some((3, 0)), &device);
        assert_eq!(b.n_batches(), 3);
        let mut ratings: Vec<f32> = b
            .flat_map(|(b, _)| b.ratings.into_data().try_into_vec_as::<f32>().unwrap())
            .collect();
        ratings.sort_by(f32::total_cmp);
        assert_eq!(ratings, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let (first, n) = Batches::new(&d, 10, None, &device).next().unwrap();
        assert_eq!(n, 5);
        let users = first.users.into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(users, vec![0, 1, 2, 0, 1]);
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
        for (b, n) in Batches::new(&rows, 2, Some((1, 1)), &device) {
            assert_eq!(b.rows.dims(), [n, 3]);
            total += b.rows.sum().into_scalar::<f32>();
        }
        assert_eq!(total, 10.0);
    }
}
