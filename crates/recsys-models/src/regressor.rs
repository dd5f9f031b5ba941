//! The deep feed-forward regressor of the ML-20M "factorizer + regressor" notebook: a trained
//! matrix factorisation ([`Mf`](crate::Mf)) provides user and item embeddings, which are read
//! **frozen** (never updated), concatenated and passed through dense blocks
//!
//! ```text
//! DenseBlock(x) = relu(Ŵ · dropout(batch_norm(x)) + b),   Ŵ = V / ‖V‖ per column (unit norm)
//! r̂ / max = σ(ŵ · x + b)
//! ```
//!
//! trained with MSE on `rating / rating_max` (the notebook divides ratings by 5).
//!
//! **Unit-norm constraint.** Keras' `UnitNorm` projects each kernel column back to norm 1 after
//! every step. Here each dense layer is *weight-normalised* instead (Salimans & Kingma, 2016,
//! without the learned gain): the kernel used in the forward pass is the stored kernel `V` divided
//! by the norm of each of its columns, so every effective column has norm 1 at all times and the
//! training loop needs no post-step hook. The L2 penalty `l2 · Σ V²` (Keras `L1L2(l2=…)`) applies
//! to the stored kernels.
//!
//! **Frozen embeddings.** The tables are parameters (so a saved regressor is self-contained) but
//! are read through `detach` and built with `require_grad = false`: no gradient reaches them and
//! the optimiser never updates them.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor};

use crate::embedding::{EmbeddingTable, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::layers::{DenseInit, kernel_l2, salted, seeded_linear};

/// Burn's default for dense layers (Kaiming uniform with gain 1/sqrt(3)), drawn on the host.
const BURN_DEFAULT: DenseInit = DenseInit::KaimingUniform {
    gain: 0.577_350_269_189_625_8,
};
use crate::losses::mse;
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Scorer, pairs_with_every_item};

/// Configuration of [`Regressor`]; defaults are the notebook's final run (dense `[16, 4]`, no
/// dropout, no L2, ratings out of 5).
#[derive(Config, Debug)]
pub struct RegressorConfig {
    pub n_users: usize,
    pub n_items: usize,
    /// Width of the MF embeddings it reads.
    pub embedding_dim: usize,
    /// Widths of the dense blocks.
    #[config(default = "vec![16, 4]")]
    pub hidden: Vec<usize>,
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Weight of `Σ V²` over the dense kernels.
    #[config(default = 0.0)]
    pub l2: f32,
    /// Ratings are divided by this for the sigmoid output.
    #[config(default = 5.0)]
    pub rating_max: f32,
    #[config(default = 42)]
    pub seed: u64,
}

impl RegressorConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if self.n_users == 0 || self.n_items == 0 || self.embedding_dim == 0 {
            return bad("regressor: n_users, n_items and embedding_dim must be positive".into());
        }
        if self.hidden.contains(&0) {
            return bad(format!(
                "regressor: hidden widths must be positive, got {:?}",
                self.hidden
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!(
                "regressor: dropout must be in [0, 1), got {}",
                self.dropout
            ));
        }
        if self.rating_max.is_nan() || self.rating_max <= 0.0 || self.l2.is_nan() || self.l2 < 0.0 {
            return bad("regressor: rating_max must be positive and l2 >= 0".into());
        }
        Ok(())
    }

    /// Builds the model with placeholder (zero) embedding tables: replace them with
    /// [`Regressor::with_embeddings`] before training, or load saved weights.
    pub fn init(&self, device: &Device) -> Result<Regressor> {
        self.validate()?;
        device.seed(self.seed);
        let table = |n: usize| {
            EmbeddingTableConfig::new(n, self.embedding_dim)
                .with_init(crate::EmbeddingInit::Zeros)
                .init(device)
                .no_grad()
        };
        let mut blocks = Vec::new();
        let mut width = 2 * self.embedding_dim;
        for (k, &h) in (0u64..).zip(&self.hidden) {
            blocks.push(DenseBlock {
                norm: BatchNormConfig::new(width).init(device),
                dropout: DropoutConfig::new(self.dropout).init(),
                dense: seeded_linear(width, h, BURN_DEFAULT, salted(self.seed, 100 + k), device),
            });
            width = h;
        }
        Ok(Regressor {
            user_embedding: table(self.n_users),
            item_embedding: table(self.n_items),
            blocks,
            output: seeded_linear(width, 1, BURN_DEFAULT, salted(self.seed, 99), device),
            l2: self.l2,
            rating_max: self.rating_max,
        })
    }
}

/// `relu(unit_norm(dense)(dropout(batch_norm(x))))`.
#[derive(Module, Debug)]
pub struct DenseBlock {
    pub norm: BatchNorm,
    pub dropout: Dropout,
    pub dense: Linear,
}

impl DenseBlock {
    /// # Shapes
    /// - `x`: `[batch, d_in]`
    /// - output: `[batch, d_out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        relu(unit_norm_forward(
            &self.dense,
            self.dropout.forward(self.norm.forward(x)),
        ))
    }
}

/// `x · (W / ‖W‖_col) + b` for a [`Linear`] with kernel `W: [d_in, d_out]`.
///
/// # Shapes
/// - `x`: `[batch, d_in]`
/// - output: `[batch, d_out]`
pub fn unit_norm_forward(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let w = layer.weight.val();
    let norm = w.clone().square().sum_dim(0).sqrt().clamp_min(1e-12); // [1, d_out]
    let y = x.matmul(w / norm);
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze::<2>(),
        None => y,
    }
}

/// The regressor; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Regressor {
    /// Frozen `[n_users, dim]` MF user embeddings.
    pub user_embedding: EmbeddingTable,
    /// Frozen `[n_items, dim]` MF item embeddings.
    pub item_embedding: EmbeddingTable,
    pub blocks: Vec<DenseBlock>,
    pub output: Linear,
    #[module(skip)]
    l2: f32,
    #[module(skip)]
    rating_max: f32,
}

impl Regressor {
    /// The model reading the (frozen) tables `users: [n_users, dim]` and `items: [n_items, dim]`.
    pub fn with_embeddings(mut self, users: Tensor<2>, items: Tensor<2>) -> Result<Self> {
        let want = [
            self.user_embedding.weight.dims(),
            self.item_embedding.weight.dims(),
        ];
        let got = [users.dims(), items.dims()];
        if want != got {
            return Err(ModelError::InvalidConfig(format!(
                "regressor: embedding tables are {got:?}, the configuration expects {want:?}"
            )));
        }
        let frozen = |t: Tensor<2>| EmbeddingTable {
            weight: Param::from_tensor(t.detach()).set_require_grad(false),
        };
        self.user_embedding = frozen(users);
        self.item_embedding = frozen(items);
        Ok(self)
    }

    /// Logits `z` with `r̂ = rating_max · σ(z)`.
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch]`
    pub fn logits(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let [batch] = users.dims();
        let p = self.user_embedding.lookup(users).detach();
        let q = self.item_embedding.lookup(items).detach();
        let x = self
            .blocks
            .iter()
            .fold(Tensor::cat(vec![p, q], 1), |x, b| b.forward(x));
        unit_norm_forward(&self.output, x).reshape([batch])
    }
}

impl Scorer for Regressor {
    fn n_items(&self) -> usize {
        self.item_embedding.n()
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        sigmoid(self.logits(users, items)).mul_scalar(self.rating_max)
    }

    /// # Shapes
    /// - `users`: `[batch]`
    /// - output: `[batch, n_items]`
    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = users.dims();
        let n = self.n_items();
        let (u, i) = pairs_with_every_item(users, n);
        self.score(u, i).reshape([batch, n])
    }
}

impl RatingModel for Regressor {
    type Batch = RatingBatch;

    fn loss(&self, batch: &RatingBatch) -> ModelLoss {
        let pred = sigmoid(self.logits(batch.users.clone(), batch.items.clone()));
        let target = batch.ratings.clone().div_scalar(self.rating_max);
        let penalty = (self.l2 > 0.0)
            .then(|| {
                kernel_l2(self.blocks.iter().map(|b| &b.dense).chain([&self.output]))
                    .map(|s| s.mul_scalar(self.l2))
            })
            .flatten();
        ModelLoss {
            loss: mse(pred, target),
            penalty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_norm_columns_and_table_shapes() {
        let device = Device::flex();
        let m = RegressorConfig::new(3, 4, 2)
            .with_hidden(vec![5])
            .init(&device)
            .unwrap();
        let users = Tensor::<2>::random([3, 2], burn::tensor::Distribution::Default, &device);
        let items = Tensor::<2>::random([4, 2], burn::tensor::Distribution::Default, &device);
        let m = m.with_embeddings(users, items).unwrap();
        // An identity input through a unit-norm layer gives the effective kernel.
        let eye = Tensor::<2>::eye(4, &device);
        let k = unit_norm_forward(&m.blocks[0].dense, eye)
            - m.blocks[0]
                .dense
                .bias
                .as_ref()
                .unwrap()
                .val()
                .unsqueeze::<2>();
        let norms = k
            .square()
            .sum_dim(0)
            .sqrt()
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5), "{norms:?}");
        assert!(
            RegressorConfig::new(3, 4, 2)
                .init(&device)
                .unwrap()
                .with_embeddings(
                    Tensor::zeros([3, 3], &device),
                    Tensor::zeros([4, 2], &device)
                )
                .is_err()
        );
    }
}
