//! [`Interactions`] rows to device tensors, in seeded shuffled mini-batches.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use recsys_data::Interactions;
use recsys_models::RatingBatch;

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
    }
}

/// Mini-batches over `data`: shuffled with `(seed, epoch)` when `shuffle` is given, in row order
/// otherwise. The last batch may be smaller.
pub struct Batches<'a> {
    data: &'a Interactions,
    order: Vec<usize>,
    batch_size: usize,
    pos: usize,
    device: Device,
}

impl<'a> Batches<'a> {
    pub fn new(
        data: &'a Interactions,
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

impl Iterator for Batches<'_> {
    type Item = RatingBatch;

    fn next(&mut self) -> Option<RatingBatch> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let batch = batch_of(self.data, &self.order[self.pos..end], &self.device);
        self.pos = end;
        Some(batch)
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
            .flat_map(|b| b.ratings.into_data().try_into_vec_as::<f32>().unwrap())
            .collect();
        ratings.sort_by(f32::total_cmp);
        assert_eq!(ratings, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        let first = Batches::new(&d, 10, None, &device).next().unwrap();
        let users = first.users.into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(users, vec![0, 1, 2, 0, 1]);
    }
}
