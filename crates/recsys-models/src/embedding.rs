//! An embedding table looked up with `gather`.
//!
//! `burn::nn::Embedding` looks rows up with `select`, whose backward (`select_assign`) runs
//! serially on wgpu; [`EmbeddingTable::lookup`] gathers with the index expanded to `[batch, dim]`,
//! whose backward is a parallel `scatter_add`.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How an embedding table is initialised. Values are drawn on the host from a seeded
/// [`StdRng`], so a table is identical on every backend and independent of Burn's global RNG.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EmbeddingInit {
    /// Normal with mean 0 and standard deviation `std`.
    Normal { std: f64 },
    /// He (Kaiming) normal as Keras' `he_normal` applies it to an embedding table: standard
    /// deviation `sqrt(2 / fan_in)` with `fan_in` the number of rows.
    HeNormal,
    /// Uniform on `[-limit, limit]`.
    Uniform { limit: f64 },
    /// All zeros (biases).
    Zeros,
}

impl EmbeddingInit {
    fn sample(&self, n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = n * dim;
        match *self {
            EmbeddingInit::Zeros => vec![0.0; len],
            EmbeddingInit::Uniform { limit } => (0..len)
                .map(|_| rng.random_range(-limit..=limit) as f32)
                .collect(),
            EmbeddingInit::Normal { std } => normals(&mut rng, len, std),
            EmbeddingInit::HeNormal => normals(&mut rng, len, (2.0 / n.max(1) as f64).sqrt()),
        }
    }
}

/// `len` draws from N(0, std²) by the Box-Muller transform.
pub(crate) fn normals(rng: &mut StdRng, len: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        // u1 in (0, 1] so ln(u1) is finite.
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        out.push((std * r * theta.cos()) as f32);
        out.push((std * r * theta.sin()) as f32);
    }
    out.truncate(len);
    out
}

/// Configuration of an [`EmbeddingTable`].
/// Whether `device` is one of the CPU backends (flex, ndarray): they report no hardware
/// identity; every GPU runtime does.
pub fn on_cpu(device: &Device) -> bool {
    device.identity().is_none()
}

#[derive(Config, Debug)]
pub struct EmbeddingTableConfig {
    /// Number of rows (users, items, ...).
    pub n: usize,
    /// Width of a row.
    pub dim: usize,
    #[config(default = "EmbeddingInit::Normal { std: 0.05 }")]
    pub init: EmbeddingInit,
    /// Seed of the host RNG drawing the initial values.
    #[config(default = 0)]
    pub seed: u64,
}

impl EmbeddingTableConfig {
    pub fn init(&self, device: &Device) -> EmbeddingTable {
        let values = self.init.sample(self.n, self.dim, self.seed);
        EmbeddingTable {
            weight: Param::from_data(TensorData::new(values, [self.n, self.dim]), device),
        }
    }
}

/// A trainable `[n, dim]` table of row vectors.
#[derive(Module, Debug)]
pub struct EmbeddingTable {
    /// `[n, dim]`
    pub weight: Param<Tensor<2>>,
}

impl EmbeddingTable {
    /// Rows at `idx`. On a GPU, `weight.gather(0, idx expanded to [batch, dim])`, whose backward
    /// is an atomic scatter-add (`select`'s backward, `select_assign`, is serialised there). On
    /// the CPU backends, `weight.select(0, idx)`: the same rows and the same gradient (the rows'
    /// gradients added in batch order), without building and reading a `[batch, dim]` index.
    ///
    /// # Shapes
    /// - `idx`: `[batch]`
    /// - output: `[batch, dim]`
    pub fn lookup(&self, idx: Tensor<1, Int>) -> Tensor<2> {
        Self::lookup_in(self.weight.val(), idx)
    }

    /// [`lookup`](Self::lookup) in any `[n, dim]` table.
    pub fn lookup_in(weight: Tensor<2>, idx: Tensor<1, Int>) -> Tensor<2> {
        if on_cpu(&weight.device()) {
            return weight.select(0, idx);
        }
        let [batch] = idx.dims();
        let [_, dim] = weight.dims();
        let idx = idx.reshape([batch, 1]).expand([batch, dim]);
        weight.gather(0, idx)
    }

    /// The whole table.
    ///
    /// # Shapes
    /// - output: `[n, dim]`
    pub fn table(&self) -> Tensor<2> {
        self.weight.val()
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.weight.shape().dims::<2>()[0]
    }

    /// Width of a row.
    pub fn dim(&self) -> usize {
        self.weight.shape().dims::<2>()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_returns_rows() {
        let device = Device::flex();
        let table = EmbeddingTableConfig::new(4, 3).with_seed(7).init(&device);
        let all = table.table().into_data().try_into_vec_as::<f32>().unwrap();
        let idx = Tensor::<1, Int>::from_ints([2, 0, 2], &device);
        let got = table
            .lookup(idx)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        let want: Vec<f32> = [2usize, 0, 2]
            .iter()
            .flat_map(|&r| all[r * 3..r * 3 + 3].to_vec())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn cpu_lookup_matches_the_gather_path_in_values_and_gradients() {
        let device = Device::flex().autodiff();
        assert!(on_cpu(&device));
        let table = EmbeddingTableConfig::new(5, 3).with_seed(3).init(&device);
        let ids = [4i64, 1, 4, 0, 4];
        let weights = Tensor::<2>::from_floats(
            [
                [1.0, -2.0, 0.5],
                [3.0, 1.0, 1.0],
                [0.25, 2.0, -1.0],
                [1.0, 1.0, 1.0],
                [-3.0, 0.0, 2.0],
            ],
            &device,
        );
        let idx = || Tensor::<1, Int>::from_ints(ids, &device);
        let run = |rows: Tensor<2>| {
            let loss = (rows.clone() * rows * weights.clone()).sum();
            let grads = loss.backward();
            let grad = table.weight.grad(&grads).unwrap();
            (
                loss.into_data().try_into_vec_as::<f32>().unwrap(),
                grad.into_data().try_into_vec_as::<f32>().unwrap(),
            )
        };
        let fast = run(table.lookup(idx()));
        let gather_idx = idx().reshape([5, 1]).expand([5, 3]);
        let reference = run(table.weight.val().gather(0, gather_idx));
        assert_eq!(fast, reference);
    }

    #[test]
    fn init_is_seeded_and_scaled() {
        let a = EmbeddingInit::Normal { std: 0.1 }.sample(100, 50, 1);
        let b = EmbeddingInit::Normal { std: 0.1 }.sample(100, 50, 1);
        let c = EmbeddingInit::Normal { std: 0.1 }.sample(100, 50, 2);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let var = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / a.len() as f64;
        assert!((var.sqrt() - 0.1).abs() < 0.01, "std {}", var.sqrt());
        let u = EmbeddingInit::Uniform { limit: 0.5 }.sample(10, 10, 3);
        assert!(u.iter().all(|x| x.abs() <= 0.5));
        let he = EmbeddingInit::HeNormal.sample(200, 50, 3);
        let var = he.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / he.len() as f64;
        assert!((var - 2.0 / 200.0).abs() < 2e-3, "var {var}");
    }
}
