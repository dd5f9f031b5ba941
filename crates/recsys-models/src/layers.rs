//! Small building blocks shared by the neural model families: activations as data, and the L1 / L2
//! sums of the kernels of [`Linear`] layers.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// An element-wise activation, chosen in a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Identity,
    Sigmoid,
    Relu,
    /// Leaky ReLU with Keras' negative slope, 0.3.
    #[cfg_attr(feature = "clap", value(alias = "leaky_relu"))]
    LeakyRelu,
}

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Relu => relu(x),
            Activation::LeakyRelu => burn::tensor::activation::leaky_relu(x, 0.3),
        }
    }
}

/// How a dense layer's weights are drawn, with the formulas of Burn's `Initializer` (`fan_in` the
/// layer's inputs, `fan_out` its outputs; the bias drawn from the same law, as Burn does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DenseInit {
    /// `U(-a, a)`, `a = gain · sqrt(6 / (fan_in + fan_out))` (Glorot).
    XavierUniform { gain: f64 },
    /// `N(0, σ²)`, `σ = gain / sqrt(fan_in)` (He).
    KaimingNormal { gain: f64 },
    /// `U(-a, a)`, `a = gain · sqrt(3 / fan_in)`.
    KaimingUniform { gain: f64 },
}

/// A dense layer `[d_in] -> [d_out]` whose weights are drawn on the host from `seed`, so a model
/// starts from the same weights on every backend (Burn's own initialisers draw from the
/// backend's generator, which differs between the CPU backends and wgpu).
pub fn seeded_linear(
    d_in: usize,
    d_out: usize,
    init: DenseInit,
    seed: u64,
    device: &Device,
) -> Linear {
    let mut rng = StdRng::seed_from_u64(seed);
    let (fan_in, fan_out) = (d_in.max(1) as f64, d_out.max(1) as f64);
    let mut draw = |len: usize| -> Vec<f32> {
        let uniform = |rng: &mut StdRng, a: f64| -> Vec<f32> {
            (0..len).map(|_| rng.random_range(-a..=a) as f32).collect()
        };
        match init {
            DenseInit::XavierUniform { gain } => {
                uniform(&mut rng, gain * (6.0 / (fan_in + fan_out)).sqrt())
            }
            DenseInit::KaimingUniform { gain } => uniform(&mut rng, gain * (3.0 / fan_in).sqrt()),
            DenseInit::KaimingNormal { gain } => {
                crate::embedding::normals(&mut rng, len, gain / fan_in.sqrt())
            }
        }
    };
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    Linear {
        weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [d_out]), device)),
    }
}

/// Dense layers `widths[k] -> widths[k + 1]`, each drawn by [`seeded_linear`] from
/// `salted(seed, first_salt + k)`.
pub(crate) fn seeded_stack(
    widths: &[usize],
    init: DenseInit,
    seed: u64,
    first_salt: u64,
    device: &Device,
) -> Vec<Linear> {
    widths
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            seeded_linear(
                w[0],
                w[1],
                init,
                salted(seed, first_salt + k as u64),
                device,
            )
        })
        .collect()
}

/// A seed for part `salt` of a model seeded with `seed`.
pub(crate) fn salted(seed: u64, salt: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// `Σ w²` over the kernels (not the biases) of `layers`.
///
/// # Shapes
/// - output: `[1]`
pub fn kernel_l2<'a>(layers: impl IntoIterator<Item = &'a Linear>) -> Option<Tensor<1>> {
    layers
        .into_iter()
        .map(|l| l.weight.val().square().sum())
        .reduce(|a, b| a + b)
}

/// `Σ |w|` over the kernels (not the biases) of `layers`.
///
/// # Shapes
/// - output: `[1]`
pub fn kernel_l1<'a>(layers: impl IntoIterator<Item = &'a Linear>) -> Option<Tensor<1>> {
    layers
        .into_iter()
        .map(|l| l.weight.val().abs().sum())
        .reduce(|a, b| a + b)
}
