//! Fused operations for the CPU backends, each tested against Burn's plain composition.
//!
//! Where a model's step is a chain of Burn operations, each allocating its output and each
//! recorded for the backward with its own intermediates, a fused operation does the chain in one
//! pass on the host and has its own backward:
//! - [`pair`]: [`pair_dot`], [`pair_product`] and [`pair_concat`] combine looked-up rows `P[u_b]`
//!   and `Q[i_b]` (MF's score, GMF's vector, the MLP's input) without copying the rows first;
//! - [`linear`]: [`dense`], a dense layer `x W + b` as one matrix product into a plain buffer
//!   and the bias added in place, its backward in two products and a reduction;
//! - [`softmax`]: [`row_lse`], the two-tower softmax's normaliser over a batch's logits, with
//!   repeated items masked, in two passes over a row and one for its backward.
//!
//! The operations are Burn backend extensions implemented for Flex, the CPU backend made fast,
//! with their own backward under autodiff. Other devices (NdArray, the GPU runtimes) take the
//! composition, which is also the reference the tests hold the fused values and gradients to
//! (within 1e-5).

pub mod linear;
pub mod pair;
pub mod softmax;

use std::borrow::Cow;

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, DispatchDevice, Flex, TensorMetadata};
use burn::tensor::{DType, Tensor, TensorData};

pub use self::linear::dense;
pub use self::pair::{Lookup, pair_concat, pair_dot, pair_product};
pub use self::softmax::row_lse;

/// `f()`, compiled for AVX2 and FMA when the processor has them, so that the loops inlined into
/// it use eight lanes; as compiled for the baseline otherwise. Burn's CPU kernels choose their
/// instructions at run time the same way.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the processor has the features `avx2` is compiled for.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Whether `t` takes the fused path: an f32 tensor on Flex.
pub(crate) fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    let device = t.device().without_autodiff();
    matches!(device.as_dispatch(), DispatchDevice::Flex(_)) && t.dtype() == DType::F32
}

/// The inner product, in eight running sums that the compiler keeps in one vector register
/// (a plain sum is one chain of dependent additions, which it may not reorder).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The rows of a matrix (a vector is one row per entry) on the host: row `r` is
/// `data[offset + r * stride..][..width]`.
pub struct Rows<'a> {
    data: Cow<'a, [f32]>,
    offset: usize,
    stride: usize,
    width: usize,
}

impl Rows<'_> {
    fn owned(data: Vec<f32>, width: usize) -> Self {
        Rows {
            data: Cow::Owned(data),
            offset: 0,
            stride: width,
            width,
        }
    }

    pub(crate) fn row(&self, r: usize) -> &[f32] {
        &self.data[self.offset + r * self.stride..][..self.width]
    }
}

/// Host views of a CPU backend's tensors: borrowed where the layout allows, copied otherwise.
pub trait HostView: Backend {
    /// The rows of an f32 matrix or vector.
    fn rows(t: &FloatTensor<Self>) -> Rows<'_>;
    /// The values of an index tensor.
    fn indices(t: &IntTensor<Self>) -> Vec<usize>;
}

impl HostView for Flex {
    fn rows(t: &FlexTensor) -> Rows<'_> {
        let layout = t.layout();
        let dims = layout.shape().to_vec();
        let width = if dims.len() == 2 { dims[1] } else { 1 };
        if t.dtype() == DType::F32 && layout.has_positive_strides() {
            let strides = layout.strides();
            let stride = match dims.len() {
                1 => Some(strides[0] as usize),
                2 if strides[1] == 1 || dims[1] == 1 => Some(strides[0] as usize),
                _ => None,
            };
            if let Some(stride) = stride {
                return Rows {
                    data: Cow::Borrowed(t.storage::<f32>()),
                    offset: layout.start_offset(),
                    stride,
                    width,
                };
            }
        }
        Rows::owned(float_values(t.clone().into_data()), width)
    }

    fn indices(t: &FlexTensor) -> Vec<usize> {
        if let Some(s) = t.as_slice::<i32>() {
            return s.iter().map(|&v| index(v as i64)).collect();
        }
        if let Some(s) = t.as_slice::<i64>() {
            return s.iter().map(|&v| index(v)).collect();
        }
        int_values(t.clone().into_data())
    }
}

fn float_values(data: TensorData) -> Vec<f32> {
    data.iter::<f32>().collect()
}

fn int_values(data: TensorData) -> Vec<usize> {
    data.iter::<i64>().map(index).collect()
}

fn index(v: i64) -> usize {
    usize::try_from(v).unwrap_or_else(|_| panic!("negative row index {v}"))
}

/// `[rows, cols]` of a matrix primitive.
pub(crate) fn dims2<B: Backend>(t: &FloatTensor<B>) -> [usize; 2] {
    let shape = t.shape();
    [shape[0], shape[1]]
}

/// A `[len]` or `[rows, cols]` f32 primitive on `like`'s device.
pub(crate) fn tensor_like<B: Backend>(
    like: &FloatTensor<B>,
    values: Vec<f32>,
    shape: &[usize],
) -> FloatTensor<B> {
    let device = like.device();
    B::float_from_data(TensorData::new(values, shape.to_vec()), &device)
}

#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::Tensor;

    pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    /// Each `a[i]` within `tol · (1 + |b[i]|)` of `b[i]`.
    pub fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}
