//! A dense layer, `y = x W + b`, as one operation.
//!
//! Burn's [`Linear`] is a matrix product whose output buffer is first zeroed and then copied into
//! an aligned allocation, followed by a broadcast addition of the bias into a third buffer; under
//! autodiff both steps are recorded. Fused, the output buffer starts as the bias repeated on each
//! row and one product accumulates into it. The backward is two products and a column sum
//! (`∂x = g Wᵀ`, `∂W = xᵀ g`, `∂b = Σ_rows g`), each computed only for the inputs that need a
//! gradient. The products are the same `gemm` kernels Burn's CPU backends call; an input that
//! is mostly zeros (AutoRec's rating rows) is multiplied entry by entry instead, in the forward
//! and in `∂W`, which is a twentieth of the work at a rating matrix's density.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

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

/// The non-zero entries of a mostly-zero `m × k` matrix by column: column `c`'s `(row, value)`
/// pairs are `rows[starts[c]..starts[c + 1]]` and `vals[..]`, rows ascending.
#[derive(Debug)]
struct SparseColumns {
    starts: Vec<usize>,
    rows: Vec<u32>,
    vals: Vec<f32>,
}

impl SparseColumns {
    /// `x`'s non-zero entries, or `None` when more than one in [`SPARSE_BELOW`] is non-zero
    /// (then the dense product is faster).
    fn of(x: &Rows, m: usize, k: usize) -> Option<Self> {
        let limit = m * k / SPARSE_BELOW;
        // Dense inputs (most layers') are told apart by 64 rows spread over the batch.
        let step = (m / 64).max(1);
        let sampled = (0..m)
            .step_by(step)
            .map(|r| x.row(r).iter().filter(|&&v| v != 0.0).count());
        let (rows, nonzero) = sampled.fold((0, 0), |(n, z), c| (n + 1, z + c));
        if nonzero > rows * k / SPARSE_BELOW {
            return None;
        }
        // By row first, as `x` lies, then sorted into columns by counting.
        let mut by_row: Vec<(u32, u32, f32)> = Vec::with_capacity(limit.min(1 << 20));
        let mut counts = vec![0usize; k + 1];
        for r in 0..m {
            for (c, &v) in x.row(r).iter().enumerate() {
                if v != 0.0 {
                    by_row.push((r as u32, c as u32, v));
                    counts[c + 1] += 1;
                }
            }
            if by_row.len() > limit {
                return None;
            }
        }
        for c in 0..k {
            counts[c + 1] += counts[c];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut rows = vec![0u32; by_row.len()];
        let mut vals = vec![0f32; by_row.len()];
        for (r, c, v) in by_row {
            let at = &mut next[c as usize];
            rows[*at] = r;
            vals[*at] = v;
            *at += 1;
        }
        Some(SparseColumns { starts, rows, vals })
    }

    /// Column `c`'s `(row, value)` pairs.
    fn column(&self, c: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let span = self.starts[c]..self.starts[c + 1];
        self.rows[span.clone()]
            .iter()
            .zip(&self.vals[span])
            .map(|(&r, &v)| (r as usize, v))
    }

    fn k(&self) -> usize {
        self.starts.len() - 1
    }
}

/// An input with fewer than one entry in this many non-zero (a rating row) is multiplied
/// entry by entry: AutoRec's first layer reads rows about 4% full.
const SPARSE_BELOW: usize = 8;

/// `dst ← dst + v · src`.
#[inline(always)]
fn axpy(dst: &mut [f32], v: f32, src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += v * s;
    }
}

/// `out += x W` for a sparse `x` (`m × k`) and `W` (`k × n`). Each thread takes a block of
/// output columns, so that the block of every output row stays in cache while the rows of `W`
/// stream past once.
fn sparse_product(x: &SparseColumns, w: &Rows, out: &mut [f32], m: usize, n: usize) {
    const BLOCK: usize = 128;
    let blocks: Vec<(usize, Vec<f32>)> = (0..n)
        .step_by(BLOCK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let width = BLOCK.min(n - start);
            let mut local = vec![0f32; m * width];
            simd(|| {
                for c in 0..x.k() {
                    let src = &w.row(c)[start..start + width];
                    for (r, v) in x.column(c) {
                        axpy(&mut local[r * width..][..width], v, src);
                    }
                }
            });
            (start, local)
        })
        .collect();
    for (start, local) in blocks {
        let width = local.len() / m.max(1);
        for (dst, src) in out.chunks_mut(n).zip(local.chunks(width.max(1))) {
            for (d, s) in dst[start..start + width].iter_mut().zip(src) {
                *d += s;
            }
        }
    }
}

/// `x W + b` on the host, and `x`'s non-zero entries when it is mostly zeros (rating rows): then
/// each non-zero adds its multiple of a row of `W`.
fn linear_host<B: HostView>(
    x: &FloatTensor<B>,
    weight: &FloatTensor<B>,
    bias: &FloatTensor<B>,
) -> (FloatTensor<B>, Option<Arc<SparseColumns>>) {
    let ([m, k], [k_w, n]) = (dims2::<B>(x), dims2::<B>(weight));
    assert_eq!(k, k_w, "linear: inputs of {k} values into a layer of {k_w}");
    let b = vector::<B>(bias);
    assert_eq!(b.len(), n, "linear: bias of {} for {n} outputs", b.len());
    let mut out = Vec::with_capacity(m * n);
    for _ in 0..m {
        out.extend_from_slice(&b);
    }
    let (xr, wr) = (B::rows(x), B::rows(weight));
    let sparse = SparseColumns::of(&xr, m, k).map(Arc::new);
    match &sparse {
        Some(sparse) => sparse_product(sparse, &wr, &mut out, m, n),
        None => gemm(m, n, k, &mut out, true, Operand::of(&xr), Operand::of(&wr)),
    }
    (tensor_like::<B>(x, out, &[m, n]), sparse)
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
fn grad_weight<B: HostView>(
    x: &FloatTensor<B>,
    sparse: Option<&SparseColumns>,
    g: &FloatTensor<B>,
) -> FloatTensor<B> {
    let ([m, k], [_, n]) = (dims2::<B>(x), dims2::<B>(g));
    let gr = B::rows(g);
    let mut out = vec![0f32; k * n];
    match sparse {
        // Row `c` of `∂W` is `Σ_r x[r, c] g[r]` over the column's non-zero entries.
        Some(sparse) if n > 0 => {
            out.par_chunks_mut(n).enumerate().for_each(|(c, dst)| {
                simd(|| {
                    for (r, v) in sparse.column(c) {
                        axpy(dst, v, gr.row(r));
                    }
                })
            });
        }
        _ => {
            let xr = B::rows(x);
            gemm(
                k,
                n,
                m,
                &mut out,
                false,
                Operand::of(&xr).t(),
                Operand::of(&gr),
            )
        }
    }
    tensor_like::<B>(g, out, &[k, n])
}

/// `∂b = Σ_rows g`.
fn grad_bias<B: HostView>(g: &FloatTensor<B>) -> FloatTensor<B> {
    let [m, n] = dims2::<B>(g);
    let gr = B::rows(g);
    let mut out = vec![0f32; n];
    for r in 0..m {
        for (o, v) in out.iter_mut().zip(gr.row(r)) {
            *o += v;
        }
    }
    tensor_like::<B>(g, out, &[n])
}

impl LinearOps for Flex {
    fn linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_host::<Self>(&x, &weight, &bias).0
    }
}

/// The backward of [`LinearOps::linear`].
#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + HostView> Backward<B, 3> for LinearBackward {
    /// The input and the weight as the forward read them, and the input's non-zero entries
    /// when it is mostly zeros.
    type State = (FloatTensor<B>, FloatTensor<B>, Option<Arc<SparseColumns>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, weight, sparse) = ops.state;
        let g = grads.consume::<B>(&ops.node);
        let [x_node, weight_node, bias_node] = ops.parents;
        if let Some(node) = x_node {
            grads.register::<B>(node.id, grad_input::<B>(&g, &weight));
        }
        if let Some(node) = weight_node {
            grads.register::<B>(node.id, grad_weight::<B>(&x, sparse.as_deref(), &g));
        }
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, grad_bias::<B>(&g));
        }
    }
}

impl<B: Backend + HostView, C: CheckpointStrategy> LinearOps for Autodiff<B, C> {
    fn linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (out, sparse) = linear_host::<B>(x.primitive(), weight.primitive(), bias.primitive());
        match LinearBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((x.into_primitive(), weight.into_primitive(), sparse), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_util::{close, values};
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, TensorData};

    /// Output and the gradients of input, weight and bias against Burn's `Linear`, on every CPU
    /// backend: sizes on both sides of the threads' threshold, an input that is a strided view
    /// (a column block of a wider matrix), an input without a gradient, and inputs about 4%
    /// non-zero (rating rows, multiplied entry by entry) with and without a gradient.
    #[test]
    fn dense_is_burns_linear() {
        {
            let plain = Device::flex();
            let device = plain.clone().autodiff();
            let filled = |shape: [usize; 2], seed: usize, sparse: bool| {
                let v: Vec<f32> = (0..shape[0] * shape[1])
                    .map(|k| {
                        if sparse && (k * 31 + seed) % 23 != 0 {
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
                close(&fused.0, &reference.0, 1e-5);
                assert_eq!(fused.1.is_some(), reference.1.is_some());
                if let (Some(a), Some(b)) = (&fused.1, &reference.1) {
                    close(a, b, 1e-5);
                }
                close(&fused.2, &reference.2, 1e-5);
                close(&fused.3, &reference.3, 1e-5);
            }
            // Without autodiff (inference), the forward alone.
            let layer = LinearConfig::new(2, 3).init(&plain);
            let x = Tensor::<2>::from_data([[1.0f32, -2.0], [0.5, 4.0]], &plain);
            close(
                &values(dense(&layer, x.clone())),
                &values(layer.forward(x)),
                1e-5,
            );
        }
    }
}
