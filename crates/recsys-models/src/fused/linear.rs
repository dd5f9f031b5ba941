//! A dense layer, `y = x W + b`, as one operation.
//!
//! Burn's [`Linear`] is a matrix product whose output buffer is first zeroed and then copied into
//! an aligned allocation, followed by a broadcast addition of the bias into a third buffer; under
//! autodiff both steps are recorded. Fused, the product goes into a plain buffer and the bias is
//! added in place. The backward is two products and a column sum
//! (`∂x = g Wᵀ`, `∂W = xᵀ g`, `∂b = Σ_rows g`), each computed only for the inputs that need a
//! gradient. The products are the same `gemm` calls Burn's CPU matmul makes and the bias's
//! gradient is Burn's own reduction, so the values are Burn's to the bit (tested).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::tensor::{Shape, Tensor};

use super::{HostView, Rows, dims2, fusable, simd, tensor_like};

/// A dense layer in one operation on the CPU backends.
#[backend_extension(Autodiff, Flex)]
pub trait LinearOps: Backend {
    /// `x W + b`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_in]`, `weight`: `[d_in, d_out]`, `bias`: `[d_out]`
    /// - output: `[batch, d_out]`
    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `layer.forward(x)`: fused on the CPU backends for a layer with a bias, Burn's [`Linear`]
/// elsewhere (and the reference of the tests).
pub fn dense(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let weight = layer.weight.val();
    match &layer.bias {
        Some(bias) if fusable(&x) && fusable(&weight) => {
            Tensor::from_dispatch(<Dispatch as LinearOps>::linear(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => layer.forward(x),
    }
}

/// A matrix operand of [`gemm`]: element `(r, c)` is `data[offset + r * rs + c * cs]`.
struct Operand<'a> {
    data: &'a [f32],
    offset: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Operand<'a> {
    /// `rows` as a matrix.
    fn of<'r: 'a>(rows: &'a Rows<'r>) -> Self {
        Operand {
            data: &rows.data,
            offset: rows.offset,
            rs: rows.stride,
            cs: 1,
        }
    }

    /// This matrix transposed.
    fn t(self) -> Self {
        Operand {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Panics unless every element of a `rows × cols` matrix lies in `data`.
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = self.offset + (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix operand out of its buffer");
        }
    }
}

/// `dst ← dst + lhs · rhs` (`read_dst`) or `dst ← lhs · rhs`, with `lhs` `m × k`, `rhs` `k × n`
/// and `dst` a row-major `m × n` buffer. Products of at least 192³ multiply-adds use every
/// thread, as Burn's CPU matmul does.
fn gemm(m: usize, n: usize, k: usize, dst: &mut [f32], read_dst: bool, lhs: Operand, rhs: Operand) {
    assert_eq!(
        dst.len(),
        m * n,
        "gemm output of {} for {m} × {n}",
        dst.len()
    );
    lhs.check(m, k);
    rhs.check(k, n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !read_dst {
            dst.fill(0.0);
        }
        return;
    }
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `check` bounds every element each operand's strides reach, `dst` holds exactly
    // `m × n` elements at row stride `n`, and `dst` is a distinct, exclusively borrowed buffer.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The entries of a vector.
fn vector<B: HostView>(t: &FloatTensor<B>) -> Vec<f32> {
    let n = t.shape().num_elements();
    let rows = B::rows(t);
    (0..n).map(|j| rows.row(j)[0]).collect()
}

/// `x W + b` on the host: the product into a fresh buffer, then the bias added to each row, the
/// same arithmetic as Burn's `matmul` and broadcast addition.
fn linear_host<B: HostView>(
    x: &FloatTensor<B>,
    weight: &FloatTensor<B>,
    bias: &FloatTensor<B>,
) -> FloatTensor<B> {
    let ([m, k], [k_w, n]) = (dims2::<B>(x), dims2::<B>(weight));
    assert_eq!(k, k_w, "linear: inputs of {k} values into a layer of {k_w}");
    let b = vector::<B>(bias);
    assert_eq!(b.len(), n, "linear: bias of {} for {n} outputs", b.len());
    let mut out = vec![0f32; m * n];
    let (xr, wr) = (B::rows(x), B::rows(weight));
    gemm(m, n, k, &mut out, false, Operand::of(&xr), Operand::of(&wr));
    if n > 0 {
        simd(|| {
            for row in out.chunks_mut(n) {
                for (o, b) in row.iter_mut().zip(&b) {
                    *o += b;
                }
            }
        });
    }
    tensor_like::<B>(x, out, &[m, n])
}

/// `∂x = g Wᵀ`.
fn grad_input<B: HostView>(g: &FloatTensor<B>, weight: &FloatTensor<B>) -> FloatTensor<B> {
    let ([m, n], [k, _]) = (dims2::<B>(g), dims2::<B>(weight));
    let (gr, wr) = (B::rows(g), B::rows(weight));
    let mut out = vec![0f32; m * k];
    gemm(
        m,
        k,
        n,
        &mut out,
        false,
        Operand::of(&gr),
        Operand::of(&wr).t(),
    );
    tensor_like::<B>(g, out, &[m, k])
}

/// `∂W = xᵀ g`.
fn grad_weight<B: HostView>(x: &FloatTensor<B>, g: &FloatTensor<B>) -> FloatTensor<B> {
    let ([m, k], [_, n]) = (dims2::<B>(x), dims2::<B>(g));
    let (xr, gr) = (B::rows(x), B::rows(g));
    let mut out = vec![0f32; k * n];
    gemm(
        k,
        n,
        m,
        &mut out,
        false,
        Operand::of(&xr).t(),
        Operand::of(&gr),
    );
    tensor_like::<B>(g, out, &[k, n])
}

/// `∂b = Σ_rows g`, by Burn's own reduction (the backward of its broadcast addition).
fn grad_bias<B: Backend>(g: FloatTensor<B>) -> FloatTensor<B> {
    let [_, n] = dims2::<B>(&g);
    B::float_reshape(B::float_sum_dim(g, 0), Shape::new([n]))
}

impl LinearOps for Flex {
    fn linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_host::<Self>(&x, &weight, &bias)
    }
}

/// The backward of [`LinearOps::linear`].
#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + HostView> Backward<B, 3> for LinearBackward {
    /// The input and the weight as the forward read them.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, weight) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        let [x_node, weight_node, bias_node] = ops.parents;
        if let Some(node) = x_node {
            grads.register::<B>(node.id, grad_input::<B>(&g, &weight));
        }
        if let Some(node) = weight_node {
            grads.register::<B>(node.id, grad_weight::<B>(&x, &g));
        }
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, grad_bias::<B>(g.clone()));
        }
    }
}

impl<B: Backend + HostView, C: CheckpointStrategy> LinearOps for Autodiff<B, C> {
    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let out = linear_host::<B>(x.primitive(), weight.primitive(), bias.primitive());
        match LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((x.into_primitive(), weight.into_primitive()), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_util::values;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, TensorData};

    /// Output and the gradients of input, weight and bias equal to Burn's `Linear`'s, bit for bit:
    /// sizes on both sides of the threads' threshold, an input that is a strided view (a column
    /// block of a wider matrix), an input without a gradient, and inputs about 4% non-zero.
    #[test]
    fn dense_is_burns_linear() {
        {
            let plain = Device::flex();
            let device = plain.clone().autodiff();
            let filled = |shape: [usize; 2], seed: usize, sparse: bool| {
                let v: Vec<f32> = (0..shape[0] * shape[1])
                    .map(|k| {
                        if sparse && !(k * 31 + seed).is_multiple_of(23) {
                            0.0
                        } else {
                            ((k * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0
                        }
                    })
                    .collect();
                Tensor::<2>::from_data(TensorData::new(v, shape), &device)
            };
            for (batch, d_in, d_out, tracked_input, sparse) in [
                (5, 3, 4, true, false),
                (37, 70, 33, true, false),
                (300, 256, 200, true, false),
                (64, 120, 50, false, false),
                (64, 300, 40, false, true),
                (50, 200, 30, true, true),
            ] {
                let layer = LinearConfig::new(d_in, d_out).init(&device);
                // The input is columns 2.. of a wider matrix: a view with a row stride.
                let wide = filled([batch, d_in + 2], 1, sparse);
                let wide = if tracked_input {
                    wide.require_grad()
                } else {
                    wide
                };
                let g = filled([batch, d_out], 2, false);
                // Each run slices the input afresh: a backward consumes its graph.
                let run = |forward: &dyn Fn(Tensor<2>) -> Tensor<2>| {
                    let y = forward(wide.clone().slice([0..batch, 2..d_in + 2]));
                    let grads = (y.clone() * g.clone()).sum().backward();
                    let input = tracked_input.then(|| values(wide.grad(&grads).unwrap()));
                    (
                        values(y),
                        input,
                        values(layer.weight.val().grad(&grads).unwrap()),
                        values(layer.bias.as_ref().unwrap().val().grad(&grads).unwrap()),
                    )
                };
                let fused = run(&|x| dense(&layer, x));
                let reference = run(&|x| layer.forward(x));
                assert_eq!(fused, reference, "{batch} x {d_in} -> {d_out}");
            }
            // Without autodiff (inference), the forward alone.
            let layer = LinearConfig::new(2, 3).init(&plain);
            let x = Tensor::<2>::from_data([[1.0f32, -2.0], [0.5, 4.0]], &plain);
            assert_eq!(values(dense(&layer, x.clone())), values(layer.forward(x)));
        }
    }
}
