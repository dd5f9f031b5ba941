//! The log-sum-exp of each row of in-batch logits, the normaliser of the two-tower model's
//! softmax, with the batch's other occurrences of a row's positive item left out.
//!
//! Composed from Burn's operations it fills the masked entries of the `[batch, batch]` logits into
//! a copy, takes the row maxima, subtracts them into a second copy, exponentiates into a third
//! (one `expf` call per entry) and sums; the backward walks those copies again. Fused, a row is
//! read twice (maximum, then the sum of exponentials, eight lanes at a time) and the backward
//! writes the softmax times the gradient in one pass. Rows are shared among threads.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Int, Tensor};
use rayon::prelude::*;

use super::{HostView, Rows, dims2, fusable, simd, tensor_like};

/// The rows' log-sum-exp in one operation on the CPU backends.
#[backend_extension(Autodiff, Flex)]
pub trait SoftmaxOps: Backend {
    /// Row `a`'s `ln(Σ_c exp(logits[a, c]))`; with `mask`, the sum leaves out every column `c`
    /// with `items[c] = items[a]` (the diagonal included) and adds `exp(positive[a])` instead.
    ///
    /// # Shapes
    /// - `logits`: `[batch, batch]`, `positive`: `[batch, 1]`, `items`: `[batch]`
    /// - output: `[batch, 1]`
    fn row_lse(
        logits: FloatTensor<Self>,
        positive: FloatTensor<Self>,
        items: IntTensor<Self>,
        mask: bool,
    ) -> FloatTensor<Self>;
}

/// [`SoftmaxOps::row_lse`]: fused on the CPU backends, composed from Burn's operations elsewhere
/// (the reference of the tests).
pub fn row_lse(
    logits: Tensor<2>,
    positive: Tensor<2>,
    items: Tensor<1, Int>,
    mask: bool,
) -> Tensor<2> {
    if !(fusable(&logits) && fusable(&positive)) {
        return composed(logits, positive, items, mask);
    }
    Tensor::from_dispatch(<Dispatch as SoftmaxOps>::row_lse(
        logits.into_dispatch(),
        positive.into_dispatch(),
        items.into_dispatch(),
        mask,
    ))
}

/// [`row_lse`] from Burn's operations, shifted by the detached row maxima.
fn composed(
    logits: Tensor<2>,
    positive: Tensor<2>,
    items: Tensor<1, Int>,
    mask: bool,
) -> Tensor<2> {
    let [b, _] = logits.dims();
    if mask {
        let row = items.clone().reshape([b, 1]).expand([b, b]);
        let col = items.reshape([1, b]).expand([b, b]);
        let rest = logits.mask_fill(row.equal(col), -1e9);
        let max = rest.clone().max_dim(1).max_pair(positive.clone()).detach(); // [b, 1]
        ((rest - max.clone()).exp().sum_dim(1) + (positive - max.clone()).exp()).log() + max
    } else {
        let max = logits.clone().max_dim(1).detach();
        (logits - max.clone()).exp().sum_dim(1).log() + max
    }
}

/// `e^x` for `x ≤ 88.7` (Cephes' `expf`: `2^n · p(r)` with `x = n ln 2 + r`, `|r| ≤ ln2 / 2`, a
/// degree-7 polynomial; within 2 ulp), written without calls or branches so that loops over it
/// compile to vector instructions. Below -87.3 it returns about 1e-38 (not 0).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let p = p * r2 + r + 1.0;
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Row `a`'s entries with their weight in the sum: 1, or 0 for a masked entry.
#[inline(always)]
fn kept(mask: bool, items: &[u32], a: usize) -> impl Fn(u32) -> bool + '_ {
    let own = items[a];
    move |item| !mask || item != own
}

/// The forward on the host: each row's log-sum-exp.
fn lse_host(logits: &Rows, positive: &Rows, items: &[u32], mask: bool, b: usize) -> Vec<f32> {
    (0..b)
        .into_par_iter()
        .map(|a| {
            simd(|| {
                let (row, keep) = (logits.row(a), kept(mask, items, a));
                let pos = positive.row(a)[0];
                let mut max = if mask { pos } else { f32::NEG_INFINITY };
                for (&x, &item) in row.iter().zip(items) {
                    let x = if keep(item) { x } else { f32::NEG_INFINITY };
                    max = if x > max { x } else { max };
                }
                let mut sum = 0f32;
                for (&x, &item) in row.iter().zip(items) {
                    let e = exp(x - max);
                    sum += if keep(item) { e } else { 0.0 };
                }
                let sum = if mask { sum + exp(pos - max) } else { sum };
                sum.ln() + max
            })
        })
        .collect()
}

/// Item indices as `u32`, whose comparisons vectorise.
fn items_u32(items: Vec<usize>) -> Vec<u32> {
    items
        .into_iter()
        .map(|i| u32::try_from(i).expect("item index beyond u32"))
        .collect()
}

fn row_lse_host<B: HostView>(
    logits: &FloatTensor<B>,
    positive: &FloatTensor<B>,
    items: &IntTensor<B>,
    mask: bool,
) -> (FloatTensor<B>, Vec<f32>) {
    let [b, n] = dims2::<B>(logits);
    let items = items_u32(B::indices(items));
    assert!(
        items.len() == b && n == b,
        "row_lse: logits of {b} × {n} for {} items",
        items.len()
    );
    let lse = lse_host(&B::rows(logits), &B::rows(positive), &items, mask, b);
    (tensor_like::<B>(logits, lse.clone(), &[b, 1]), lse)
}

impl SoftmaxOps for Flex {
    fn row_lse(
        logits: FlexTensor,
        positive: FlexTensor,
        items: FlexTensor,
        mask: bool,
    ) -> FlexTensor {
        row_lse_host::<Self>(&logits, &positive, &items, mask).0
    }
}

/// The backward of [`SoftmaxOps::row_lse`]: `∂logits[a, c] = g_a softmax[a, c]` over the kept
/// entries, `∂positive[a] = g_a softmax(positive)[a]` with the mask.
#[derive(Debug)]
struct RowLseBackward {
    mask: bool,
}

impl<B: Backend + HostView> Backward<B, 2> for RowLseBackward {
    /// The logits, the positives, the items and the forward's log-sum-exp per row.
    type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (logits, positive, items, lse) = ops.state;
        let mask = self.mask;
        let items = items_u32(B::indices(&items));
        let [b, n] = dims2::<B>(&logits);
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |g| {
                let (g, rows) = (B::rows(&g), B::rows(&logits));
                let mut out = vec![0f32; b * n];
                out.par_chunks_mut(n.max(1))
                    .enumerate()
                    .for_each(|(a, dst)| {
                        simd(|| {
                            let (ga, l, keep) = (g.row(a)[0], lse[a], kept(mask, &items, a));
                            for ((d, &x), &item) in dst.iter_mut().zip(rows.row(a)).zip(&items) {
                                let e = ga * exp(x - l);
                                *d = if keep(item) { e } else { 0.0 };
                            }
                        })
                    });
                tensor_like::<B>(&logits, out, &[b, n])
            },
            |g| {
                let (g, pos) = (B::rows(&g), B::rows(&positive));
                let out: Vec<f32> = (0..b)
                    .map(|a| {
                        if mask {
                            g.row(a)[0] * exp(pos.row(a)[0] - lse[a])
                        } else {
                            0.0
                        }
                    })
                    .collect();
                tensor_like::<B>(&positive, out, &[b, 1])
            },
        );
    }
}

impl<B: Backend + HostView, C: CheckpointStrategy> SoftmaxOps for Autodiff<B, C> {
    fn row_lse(
        logits: FloatTensor<Self>,
        positive: FloatTensor<Self>,
        items: IntTensor<Self>,
        mask: bool,
    ) -> FloatTensor<Self> {
        let (out, lse) = row_lse_host::<B>(logits.primitive(), positive.primitive(), &items, mask);
        let backward = RowLseBackward { mask };
        match backward
            .prepare::<C>([logits.node(), positive.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (
                    logits.into_primitive(),
                    positive.into_primitive(),
                    items,
                    lse,
                ),
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_util::{close, values};
    use burn::tensor::{Device, TensorData};

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 2.5 * f32::EPSILON * want,
                "exp({x}) = {got}, not {want}"
            );
            x += 0.013;
        }
        assert!(exp(-1e9) < 1e-37);
    }

    /// The log-sum-exp and the gradients of the logits and positives against the composition,
    /// on every CPU backend, with and without the mask, with repeated items in the batch.
    #[test]
    fn row_lse_is_the_composition() {
        {
            let device = Device::flex().autodiff();
            let b = 9;
            let filled = |shape: [usize; 2], seed: usize| {
                let v: Vec<f32> = (0..shape[0] * shape[1])
                    .map(|k| ((k * 7919 + seed * 104_729) % 2003) as f32 / 200.0 - 5.0)
                    .collect();
                Tensor::<2>::from_data(TensorData::new(v, shape), &device).require_grad()
            };
            let logits = filled([b, b], 1);
            let positive = filled([b, 1], 2);
            let items = Tensor::<1, Int>::from_data([3, 1, 3, 0, 5, 1, 3, 2, 7], &device);
            let g = Tensor::<2>::from_data(
                TensorData::new((0..b).map(|k| k as f32 / 3.0 - 1.0).collect(), [b, 1]),
                &device,
            );
            for mask in [false, true] {
                let run = |f: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<2>| {
                    let lse = f(logits.clone(), positive.clone());
                    let grads = (lse.clone() * g.clone()).sum().backward();
                    let pos = positive.grad(&grads).map(values);
                    (values(lse), values(logits.grad(&grads).unwrap()), pos)
                };
                let fused = run(&|l, p| row_lse(l, p, items.clone(), mask));
                let reference = run(&|l, p| composed(l, p, items.clone(), mask));
                close(&fused.0, &reference.0, 1e-5);
                close(&fused.1, &reference.1, 1e-5);
                let zeros = vec![0.0; b];
                let (fp, rp) = (
                    fused.2.unwrap_or_else(|| zeros.clone()),
                    reference.2.unwrap_or(zeros),
                );
                close(&fp, &rp, 1e-5);
            }
        }
    }
}
