//! Operations on pairs of looked-up rows, `P[u_b]` and `Q[i_b]`:
//! - [`pair_dot`], `P[u_b] · Q[i_b]`: matrix factorisation's score;
//! - [`pair_product`], `P[u_b] ⊙ Q[i_b]`: GMF's vector;
//! - [`pair_concat`], `[P[u_b] ; Q[i_b]]`: the MLP's input.
//!
//! Composed from Burn's operations, each copies the looked-up rows (two `[batch, dim]` tensors)
//! and combines them into a third; the backward expands or splits the gradient, multiplies it by
//! the other side's rows and adds the result into zeroed tables. Fused, the forward reads each
//! row where it lies and the backward adds into row `u_b` of `P`'s gradient directly (`g_b ·
//! Q[i_b]`, `g_b ⊙ Q[i_b]` or the first half of `g_b`), and the same on `Q`'s side: no
//! `[batch, dim]` intermediate beyond the output.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Int, Tensor};
use rayon::prelude::*;

use super::{HostView, dims2, dot, fusable, simd, tensor_like};

/// Operations that Burn composes from several passes, done in one on the CPU backends.
///
/// # Shapes
/// - `p`: `[n_users, dim_p]`, `q`: `[n_items, dim_q]`
/// - `users`, `items`: `[batch]`
#[backend_extension(Autodiff, Flex)]
pub trait PairOps: Backend {
    /// `out[b] = Σ_k p[users[b], k] · q[items[b], k]`, shape `[batch]` (`dim_p = dim_q`).
    fn pair_dot(
        p: FloatTensor<Self>,
        q: FloatTensor<Self>,
        users: IntTensor<Self>,
        items: IntTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `out[b, k] = p[users[b], k] · q[items[b], k]`, shape `[batch, dim]` (`dim_p = dim_q`).
    fn pair_product(
        p: FloatTensor<Self>,
        q: FloatTensor<Self>,
        users: IntTensor<Self>,
        items: IntTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `out[b] = [p[users[b]] ; q[items[b]]]`, shape `[batch, dim_p + dim_q]`.
    fn pair_concat(
        p: FloatTensor<Self>,
        q: FloatTensor<Self>,
        users: IntTensor<Self>,
        items: IntTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// Row lookup on devices without the fused path: `(table, indices) -> rows`.
pub trait Lookup: Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<2> {}
impl<F: Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<2>> Lookup for F {}

/// `(lookup(p, users) * lookup(q, items)).sum_dim(1)`, shape `[batch, 1]`, fused on the CPU
/// backends (see the module's documentation). `lookup` looks rows up on other devices.
pub fn pair_dot(
    p: Tensor<2>,
    q: Tensor<2>,
    users: Tensor<1, Int>,
    items: Tensor<1, Int>,
    lookup: impl Lookup,
) -> Tensor<2> {
    pair(Pair::Dot, p, q, users, items, lookup)
}

/// `lookup(p, users) * lookup(q, items)`, fused on the CPU backends.
pub fn pair_product(
    p: Tensor<2>,
    q: Tensor<2>,
    users: Tensor<1, Int>,
    items: Tensor<1, Int>,
    lookup: impl Lookup,
) -> Tensor<2> {
    pair(Pair::Product, p, q, users, items, lookup)
}

/// `Tensor::cat([lookup(p, users), lookup(q, items)], 1)`, fused on the CPU backends.
pub fn pair_concat(
    p: Tensor<2>,
    q: Tensor<2>,
    users: Tensor<1, Int>,
    items: Tensor<1, Int>,
    lookup: impl Lookup,
) -> Tensor<2> {
    pair(Pair::Concat, p, q, users, items, lookup)
}

/// `pair` of the looked-up rows (a dot product as `[batch, 1]`): fused where [`fusable`], else
/// [`composed`].
fn pair(
    pair: Pair,
    p: Tensor<2>,
    q: Tensor<2>,
    users: Tensor<1, Int>,
    items: Tensor<1, Int>,
    lookup: impl Lookup,
) -> Tensor<2> {
    if fusable(&p) && fusable(&q) {
        fused(pair, p, q, users, items)
    } else {
        composed(pair, p, q, users, items, lookup)
    }
}

/// `pair` through the backend extension.
fn fused(
    pair: Pair,
    p: Tensor<2>,
    q: Tensor<2>,
    users: Tensor<1, Int>,
    items: Tensor<1, Int>,
) -> Tensor<2> {
    let [batch] = users.dims();
    let (p, q) = (p.into_dispatch(), q.into_dispatch());
    let (users, items) = (users.into_dispatch(), items.into_dispatch());
    match pair {
        Pair::Dot => {
            Tensor::<1>::from_dispatch(<Dispatch as PairOps>::pair_dot(p, q, users, items))
                .reshape([batch, 1])
        }
        Pair::Product => {
            Tensor::from_dispatch(<Dispatch as PairOps>::pair_product(p, q, users, items))
        }
        Pair::Concat => {
            Tensor::from_dispatch(<Dispatch as PairOps>::pair_concat(p, q, users, items))
        }
    }
}

/// `pair` composed from Burn's operations: the reference of [`fused`].
fn composed(
    pair: Pair,
    p: Tensor<2>,
    q: Tensor<2>,
    users: Tensor<1, Int>,
    items: Tensor<1, Int>,
    lookup: impl Lookup,
) -> Tensor<2> {
    let (a, b) = (lookup(p, users), lookup(q, items));
    match pair {
        Pair::Dot => (a * b).sum_dim(1),
        Pair::Product => a * b,
        Pair::Concat => Tensor::cat(vec![a, b], 1),
    }
}

/// Which combination of a pair of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    Dot,
    Product,
    Concat,
}

/// The forward of `pair` on the host.
fn pair_host<B: HostView>(
    pair: Pair,
    p: &FloatTensor<B>,
    q: &FloatTensor<B>,
    users: &IntTensor<B>,
    items: &IntTensor<B>,
) -> FloatTensor<B> {
    let ([_, dp], [_, dq]) = (dims2::<B>(p), dims2::<B>(q));
    assert!(
        pair == Pair::Concat || dp == dq,
        "{pair:?}: rows of {dp} and {dq} values"
    );
    let (pv, qv) = (B::rows(p), B::rows(q));
    let (u, i) = (B::indices(users), B::indices(items));
    assert_eq!(
        u.len(),
        i.len(),
        "{pair:?}: {} users, {} items",
        u.len(),
        i.len()
    );
    let batch = u.len();
    let rows = u.iter().zip(&i).map(|(&u, &i)| (pv.row(u), qv.row(i)));
    simd(|| match pair {
        Pair::Dot => {
            let out: Vec<f32> = rows.map(|(a, b)| dot(a, b)).collect();
            tensor_like::<B>(p, out, &[batch])
        }
        Pair::Product => {
            let mut out = Vec::with_capacity(batch * dp);
            for (a, b) in rows {
                out.extend(a.iter().zip(b).map(|(x, y)| x * y));
            }
            tensor_like::<B>(p, out, &[batch, dp])
        }
        Pair::Concat => {
            let mut out = Vec::with_capacity(batch * (dp + dq));
            for (a, b) in rows {
                out.extend_from_slice(a);
                out.extend_from_slice(b);
            }
            tensor_like::<B>(p, out, &[batch, dp + dq])
        }
    })
}

/// The gradient of one side's table under `pair`: `table` is its shape, `rows` its indices,
/// `other` and `other_rows` the other side's table and indices, `grad` the output's gradient and
/// `first` whether this side is `p` (the first half of a concatenation).
#[allow(clippy::too_many_arguments)]
fn pair_grad<B: HostView>(
    pair: Pair,
    table: [usize; 2],
    rows: &[usize],
    other: &FloatTensor<B>,
    other_rows: &[usize],
    grad: &FloatTensor<B>,
    first: bool,
) -> FloatTensor<B> {
    let [n, dim] = table;
    let g = B::rows(grad);
    let other = B::rows(other);
    let mut out = vec![0f32; n * dim];
    // Each thread owns a range of the table's rows and adds, in batch order, the entries that
    // land there: the same sums as one pass, without two threads writing one row.
    let per = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let offset = if first {
        0
    } else {
        g.width.saturating_sub(dim)
    };
    out.par_chunks_mut(per * dim.max(1))
        .enumerate()
        .for_each(|(t, chunk)| {
            simd(|| {
                let lo = t * per;
                let hi = lo + chunk.len() / dim.max(1);
                for (b, (&r, &o)) in rows.iter().zip(other_rows).enumerate() {
                    if r < lo || r >= hi {
                        continue;
                    }
                    let dst = &mut chunk[(r - lo) * dim..][..dim];
                    let gb = g.row(b);
                    match pair {
                        Pair::Dot => {
                            let gb = gb[0];
                            for (d, s) in dst.iter_mut().zip(other.row(o)) {
                                *d += gb * s;
                            }
                        }
                        Pair::Product => {
                            for ((d, s), gb) in dst.iter_mut().zip(other.row(o)).zip(gb) {
                                *d += gb * s;
                            }
                        }
                        Pair::Concat => {
                            for (d, s) in dst.iter_mut().zip(&gb[offset..][..dim]) {
                                *d += s;
                            }
                        }
                    }
                }
            })
        });
    tensor_like::<B>(grad, out, &table)
}

impl PairOps for Flex {
    fn pair_dot(p: FlexTensor, q: FlexTensor, users: FlexTensor, items: FlexTensor) -> FlexTensor {
        pair_host::<Self>(Pair::Dot, &p, &q, &users, &items)
    }

    fn pair_product(
        p: FlexTensor,
        q: FlexTensor,
        users: FlexTensor,
        items: FlexTensor,
    ) -> FlexTensor {
        pair_host::<Self>(Pair::Product, &p, &q, &users, &items)
    }

    fn pair_concat(
        p: FlexTensor,
        q: FlexTensor,
        users: FlexTensor,
        items: FlexTensor,
    ) -> FlexTensor {
        pair_host::<Self>(Pair::Concat, &p, &q, &users, &items)
    }
}

/// The backward of a [`Pair`] operation.
#[derive(Debug)]
struct PairBackward(Pair);

impl<B: Backend + HostView> Backward<B, 2> for PairBackward {
    /// Both tables as the forward read them, and both index vectors.
    type State = (FloatTensor<B>, FloatTensor<B>, IntTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (p, q, users, items) = ops.state;
        let (u, i) = (B::indices(&users), B::indices(&items));
        let pair = self.0;
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |g| pair_grad::<B>(pair, dims2::<B>(&p), &u, &q, &i, &g, true),
            |g| pair_grad::<B>(pair, dims2::<B>(&q), &i, &p, &u, &g, false),
        );
    }
}

/// `pair` under autodiff: the host forward, recorded with [`PairBackward`].
fn pair_tracked<B: Backend + HostView, C: CheckpointStrategy>(
    pair: Pair,
    p: FloatTensor<Autodiff<B, C>>,
    q: FloatTensor<Autodiff<B, C>>,
    users: IntTensor<B>,
    items: IntTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let out = pair_host::<B>(pair, p.primitive(), q.primitive(), &users, &items);
    match PairBackward(pair)
        .prepare::<C>([p.node(), q.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            prep.finish((p.into_primitive(), q.into_primitive(), users, items), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

impl<B: Backend + HostView, C: CheckpointStrategy> PairOps for Autodiff<B, C> {
    fn pair_dot(
        p: FloatTensor<Self>,
        q: FloatTensor<Self>,
        users: IntTensor<Self>,
        items: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        pair_tracked::<B, C>(Pair::Dot, p, q, users, items)
    }

    fn pair_product(
        p: FloatTensor<Self>,
        q: FloatTensor<Self>,
        users: IntTensor<Self>,
        items: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        pair_tracked::<B, C>(Pair::Product, p, q, users, items)
    }

    fn pair_concat(
        p: FloatTensor<Self>,
        q: FloatTensor<Self>,
        users: IntTensor<Self>,
        items: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        pair_tracked::<B, C>(Pair::Concat, p, q, users, items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_util::{close, values};
    use burn::tensor::{Device, TensorData};

    /// Values and both gradients of each fused operation against its composition, on every
    /// CPU backend, with repeated rows in the batch and widths that are not multiples of 8.
    #[test]
    fn pair_operations_are_their_compositions() {
        {
            let plain = Device::flex();
            let device = plain.clone().autodiff();
            let table = |n: usize, dim: usize, seed: u64| {
                let v: Vec<f32> = (0..n * dim)
                    .map(|k| {
                        (((k as u64 + 1) * 2_654_435_761 * (seed + 3)) % 1000) as f32 / 500.0 - 1.0
                    })
                    .collect();
                Tensor::<2>::from_data(TensorData::new(v, [n, dim]), &device).require_grad()
            };
            let users = Tensor::<1, Int>::from_data([0, 3, 3, 6, 1, 0, 2], &device);
            let items = Tensor::<1, Int>::from_data([4, 4, 0, 1, 2, 3, 4], &device);
            for (dp, dq) in [(1, 1), (8, 8), (13, 13), (64, 64), (5, 12)] {
                let (p, q) = (table(7, dp, 1), table(5, dq, 2));
                let kinds = if dp == dq {
                    vec![Pair::Dot, Pair::Product, Pair::Concat]
                } else {
                    vec![Pair::Concat]
                };
                for kind in kinds {
                    let run = |z: Tensor<2>| {
                        // Every output entry weighted differently, so each one's gradient counts;
                        // a constant column block after the output makes its gradient a strided
                        // view (the backward of a concatenation), as in NeuMF.
                        let [b, w] = z.dims();
                        let wide = Tensor::cat(vec![z.clone(), Tensor::ones([b, 3], &device)], 1);
                        let g: Vec<f32> = (0..b * (w + 3))
                            .map(|k| ((k * 7) % 11) as f32 / 4.0 - 1.0)
                            .collect();
                        let g = Tensor::<2>::from_data(TensorData::new(g, [b, w + 3]), &device);
                        let grads = (wide * g).sum().backward();
                        (
                            values(z),
                            values(p.grad(&grads).unwrap()),
                            values(q.grad(&grads).unwrap()),
                        )
                    };
                    let (u, i) = (users.clone(), items.clone());
                    let fast = run(fused(kind, p.clone(), q.clone(), u.clone(), i.clone()));
                    let reference = run(composed(kind, p.clone(), q.clone(), u, i, |t, idx| {
                        t.select(0, idx)
                    }));
                    if kind == Pair::Dot {
                        // Eight running sums: a different order of additions than `sum_dim`.
                        for (a, b) in [
                            (&fast.0, &reference.0),
                            (&fast.1, &reference.1),
                            (&fast.2, &reference.2),
                        ] {
                            close(a, b, 1e-5);
                        }
                    } else {
                        // The same products and sums in the same order: Burn's values exactly.
                        assert_eq!(fast, reference, "{kind:?} {dp} {dq}");
                    }
                }
            }
            // Without autodiff (inference), the forwards alone.
            let never = |_: Tensor<2>, _: Tensor<1, Int>| -> Tensor<2> {
                unreachable!("the CPU backends take the fused path")
            };
            let p = Tensor::<2>::from_data([[1.0f32, 2.0], [3.0, 4.0]], &plain);
            let idx = Tensor::<1, Int>::from_data([1, 0], &plain);
            let z = pair_dot(p.clone(), p.clone(), idx.clone(), idx.clone(), never);
            assert_eq!(z.dims(), [2, 1]);
            assert_eq!(values(z), vec![25.0, 5.0]);
            let z = pair_product(p.clone(), p.clone(), idx.clone(), idx.clone(), never);
            assert_eq!(values(z), vec![9.0, 16.0, 1.0, 4.0]);
            let z = pair_concat(p.clone(), p, idx.clone(), idx, never);
            assert_eq!(values(z), vec![3.0, 4.0, 3.0, 4.0, 1.0, 2.0, 1.0, 2.0]);
        }
    }
}
