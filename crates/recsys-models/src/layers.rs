//! Small building blocks shared by the neural model families: activations as data, and the L1 / L2
//! sums of the kernels of [`Linear`] layers.

use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::activation::{relu, sigmoid};
use serde::{Deserialize, Serialize};

/// An element-wise activation, chosen in a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Identity,
    Sigmoid,
    Relu,
    /// Leaky ReLU; its negative slope is a setting of the model that uses it (Keras' default
    /// 0.3 in [`Activation::apply`]).
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
