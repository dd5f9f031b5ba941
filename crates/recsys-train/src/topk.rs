//! Top-K selection for inference: each user's best items from [`LoadedRun::score_all`] (in user
//! batches, so memory stays bounded by `batch × n_items` scores), items most similar to an item
//! by cosine similarity of learned item vectors, and the learned user / item vectors themselves
//! for export.
//!
//! [`recommend`] selects on the device (larger scores first; exact ties in the backend's order,
//! the same on every run of a backend). The host-side [`top_k`] is deterministic: larger scores
//! first, ties broken by the lower item index; NaN scores rank below every number.

use std::cmp::Ordering;

use burn::tensor::Tensor;
use recsys_data::UserHistory;

use crate::budget::{recommend_budget, rows_per_block};
use crate::error::{Result, TrainError};
use crate::loaded::LoadedRun;

/// An item index and its score.
pub type Scored = (u32, f32);

/// Ranking order: higher score first (NaN last), then lower item index.
pub(crate) fn rank_order(a: &Scored, b: &Scored) -> Ordering {
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    key(b.1)
        .total_cmp(&key(a.1))
        .then_with(|| (a.1.is_nan()).cmp(&b.1.is_nan()))
        .then_with(|| a.0.cmp(&b.0))
}

pub use recsys_models::fused::dot;

/// A candidate in [`top_k_streamed`]'s heap, ordered so that the worst ranked is the greatest.
struct Worst(Scored);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        rank_order(&self.0, &other.0)
    }
}

/// The best `k` of a stream of scored items, in [`top_k_row`]'s order: a heap of `k` whose top
/// is the worst kept.
pub(crate) struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<Worst>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Whether `(item, score)` would be kept if offered now.
    #[inline]
    pub(crate) fn admits(&self, item: u32, score: f32) -> bool {
        self.heap.len() < self.k || self.heap.peek().is_some_and(|w| Worst((item, score)) < *w)
    }

    /// Keeps `(item, score)` when it ranks among the best `k` offered so far.
    #[inline]
    pub(crate) fn offer(&mut self, item: u32, score: f32) {
        let candidate = Worst((item, score));
        if self.heap.len() < self.k {
            self.heap.push(candidate);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate < *worst
        {
            *worst = candidate;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The kept items, best first.
    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// The best `k` of items `0..n` scored by `score`, skipping the items in `seen` (sorted), in
/// [`top_k_row`]'s order, without holding every score: one pass with a heap of `k`, which is
/// what a server's small queries over a large catalogue need.
pub fn top_k_streamed(
    n: usize,
    k: usize,
    seen: &[u32],
    score: impl Fn(usize) -> f32,
) -> Vec<Scored> {
    debug_assert!(seen.is_sorted());
    let mut best = TopK::new(k);
    let mut next_seen = seen.iter().peekable();
    for i in 0..n {
        while next_seen.next_if(|&&s| (s as usize) < i).is_some() {}
        if next_seen.peek().is_some_and(|&&s| s as usize == i) {
            continue;
        }
        best.offer(i as u32, score(i));
    }
    best.into_sorted()
}

/// The best `k` items of one row of `n_items` scores, skipping the items in `seen` (sorted or
/// not). `k` larger than what is left is clamped.
pub fn top_k_row(row: &[f32], k: usize, seen: &[u32]) -> Vec<Scored> {
    let sorted_seen = seen.is_sorted();
    let is_seen = |i: u32| {
        if sorted_seen {
            seen.binary_search(&i).is_ok()
        } else {
            seen.contains(&i)
        }
    };
    let mut cands: Vec<Scored> = row
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u32, s))
        .filter(|&(i, _)| seen.is_empty() || !is_seen(i))
        .collect();
    let k = k.min(cands.len());
    if k == 0 {
        return Vec::new();
    }
    if k < cands.len() {
        cands.select_nth_unstable_by(k - 1, rank_order);
        cands.truncate(k);
    }
    cands.sort_unstable_by(rank_order);
    cands
}

/// The best `k` items of each row of `scores` (row-major `[n, n_items]`), skipping for row `r`
/// the items of `exclude[r]` when given (one seen list per row, e.g. [`UserHistory::items`]).
/// `k` larger than `n_items` is clamped.
///
/// # Panics
/// If `scores.len()` is not a multiple of `n_items`, or `exclude` has another number of rows.
pub fn top_k(
    scores: &[f32],
    n_items: usize,
    k: usize,
    exclude: Option<&[&[u32]]>,
) -> Vec<Vec<Scored>> {
    if n_items == 0 {
        assert!(scores.is_empty(), "scores of a catalogue of 0 items");
        return Vec::new();
    }
    assert_eq!(scores.len() % n_items, 0, "scores are not [n, n_items]");
    let n = scores.len() / n_items;
    if let Some(ex) = exclude {
        assert_eq!(ex.len(), n, "one seen list per row");
    }
    scores
        .chunks(n_items)
        .enumerate()
        .map(|(r, row)| top_k_row(row, k, exclude.map_or(&[][..], |ex| ex[r])))
        .collect()
}

/// Each of `users`' (dense indices) best `k` items under `run`, skipping the items of `seen`
/// (e.g. the training history) when given. Users go in blocks of about
/// [`recommend_budget`] scores (4M on a CPU, 16M on a GPU), each scored and reduced to its top
/// `k` on the device ([`LoadedRun::top_k`]); only the lists come back.
pub fn recommend(
    run: &LoadedRun,
    users: &[u32],
    k: usize,
    seen: Option<&UserHistory>,
) -> Vec<Vec<Scored>> {
    let n_items = run.n_items();
    let per = rows_per_block(n_items, recommend_budget(&run.device));
    let mut out = Vec::with_capacity(users.len());
    for chunk in users.chunks(per) {
        // A user outside the history (an out-of-vocabulary row) has seen nothing.
        let lists: Option<Vec<&[u32]>> = seen.map(|h| {
            chunk
                .iter()
                .map(|&u| {
                    if (u as usize) < h.n_users() {
                        h.items(u)
                    } else {
                        &[]
                    }
                })
                .collect()
        });
        out.extend(
            run.top_k(chunk, k, lists.as_deref())
                .into_iter()
                .map(|list| {
                    list.into_iter()
                        .map(|(i, s)| (i, run.shown_score(s)))
                        .collect::<Vec<_>>()
                }),
        );
    }
    out
}

/// A dense row-major matrix of learned vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// `[n, dim]` row-major.
    pub values: Vec<f32>,
    pub n: usize,
    pub dim: usize,
}

impl Vectors {
    pub fn from_tensor(t: Tensor<2>) -> Self {
        let [n, dim] = t.dims();
        let values = t
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("float vectors");
        Self { values, n, dim }
    }

    pub fn row(&self, k: usize) -> &[f32] {
        &self.values[k * self.dim..(k + 1) * self.dim]
    }

    /// The matrix as an NPY v1.0 file: little-endian `f32`, shape `[n, dim]`, C order (what
    /// `numpy.load` reads).
    pub fn to_npy(&self) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
            self.n, self.dim
        );
        // magic (6) + version (2) + header length (2) + dict + padding + '\n', a multiple of 64.
        let unpadded = 10 + dict.len() + 1;
        let pad = (64 - unpadded % 64) % 64;
        let header = format!("{dict}{}\n", " ".repeat(pad));
        let mut out = Vec::with_capacity(10 + header.len() + 4 * self.values.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for x in &self.values {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }
}

fn unsupported(run: &LoadedRun, what: &str) -> TrainError {
    // A plain message (not "invalid training configuration").
    TrainError::Data(recsys_data::DataError::Invalid(format!(
        "{what} is not supported for model {}: it learns no user or item id vectors (use an mf, \
         recommender_net, regressor, two-tower, or gmf / mlp / neumf run on ids)",
        run.config.model.name()
    )))
}

/// The learned user and item vectors of `run` ([`Family::vectors`](crate::Family::vectors)):
/// for MF its factors `p_u`, `q_i`, for the two-tower its [`Retriever`](recsys_models::Retriever) vectors, the embedding
/// tables of the other models with id embeddings; an error naming the model for one without
/// (AutoRec, NCF on rating vectors).
pub fn embeddings(run: &LoadedRun) -> Result<(Vectors, Vectors)> {
    let (u, i) = run
        .model
        .vectors(run.ids.users.len())
        .ok_or_else(|| unsupported(run, "user and item vectors"))?;
    Ok((Vectors::from_tensor(u), Vectors::from_tensor(i)))
}

/// The learned item vectors of `run` (see [`embeddings`]).
///
/// For MF these are the factors `q_i`, i.e. [`Retriever::item_vectors`](recsys_models::Retriever::item_vectors) without its constant and
/// bias columns (which would make every item look alike under cosine).
pub fn item_vectors(run: &LoadedRun) -> Result<Vectors> {
    let (_, items) = run
        .model
        .vectors(run.ids.users.len())
        .ok_or_else(|| unsupported(run, "similar items"))?;
    Ok(Vectors::from_tensor(items))
}

/// Cosine similarity of item `query` to every item of `items` (0 for a zero vector).
pub fn cosine_to(items: &Vectors, query: usize) -> Vec<f32> {
    let norm = |v: &[f32]| {
        v.iter()
            .map(|x| (*x as f64) * (*x as f64))
            .sum::<f64>()
            .sqrt()
    };
    let q = items.row(query);
    let qn = norm(q);
    (0..items.n)
        .map(|k| {
            let v = items.row(k);
            let d = norm(v) * qn;
            if d == 0.0 {
                0.0
            } else {
                let dot: f64 = v.iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum();
                (dot / d) as f32
            }
        })
        .collect()
}

/// Cosine similarity of items `a` and `b` (0 when either is a zero vector).
pub fn cosine_to_pair(items: &Vectors, a: u32, b: u32) -> f32 {
    let (x, y) = (items.row(a as usize), items.row(b as usize));
    let norm = |v: &[f32]| v.iter().map(|t| (*t as f64).powi(2)).sum::<f64>().sqrt();
    let d = norm(x) * norm(y);
    if d == 0.0 {
        return 0.0;
    }
    let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
    (dot / d) as f32
}

/// Every pair of items `(a, b)`, `a < b`, whose cosine similarity is at least `threshold`, most
/// similar first (then by `a`, `b`). Rows are compared in blocks, so memory stays at one block of
/// similarities (never the `n × n` matrix); zero vectors are similar to nothing.
pub fn similar_pairs(items: &Vectors, threshold: f32) -> Vec<(u32, u32, f32)> {
    let (n, d) = (items.n, items.dim);
    // Unit rows (zero rows stay zero).
    let mut unit = items.values.clone();
    for row in unit.chunks_mut(d.max(1)) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    let block = 256usize;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let starts: Vec<usize> = (0..n).step_by(block).collect();
    let mut pairs: Vec<(u32, u32, f32)> = std::thread::scope(|scope| {
        let unit = &unit;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let starts = &starts;
                scope.spawn(move || {
                    let mut found = Vec::new();
                    for &start in starts.iter().skip(t).step_by(threads) {
                        for a in start..(start + block).min(n) {
                            let ra = &unit[a * d..(a + 1) * d];
                            for b in a + 1..n {
                                let rb = &unit[b * d..(b + 1) * d];
                                let sim: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
                                if sim >= threshold {
                                    found.push((a as u32, b as u32, sim));
                                }
                            }
                        }
                    }
                    found
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a similarity thread"))
            .collect()
    });
    pairs.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    pairs
}

/// The `k` items most similar to `item` by cosine similarity of item vectors, itself excluded.
pub fn similar_items(items: &Vectors, item: u32, k: usize) -> Vec<Scored> {
    top_k_row(&cosine_to(items, item as usize), k, &[item])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed selection gives `top_k_row`'s lists: ties by lower index, NaN last, seen
    /// items skipped, `k` past what is left clamped.
    #[test]
    fn streamed_top_k_equals_the_row_selection() {
        let mut state = 3u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for case in 0..200 {
            let n = 1 + next(60) as usize;
            let row: Vec<f32> = (0..n)
                .map(|_| match next(10) {
                    0 => f32::NAN,
                    v => (v % 4) as f32 * 0.5,
                })
                .collect();
            let mut seen: Vec<u32> = (0..next(8)).map(|_| next(n as u64 + 3) as u32).collect();
            seen.sort_unstable();
            seen.dedup();
            let k = next(n as u64 + 5) as usize;
            let want = top_k_row(&row, k, &seen);
            let got = top_k_streamed(n, k, &seen, |i| row[i]);
            let bits = |v: &[Scored]| v.iter().map(|s| (s.0, s.1.to_bits())).collect::<Vec<_>>();
            assert_eq!(
                bits(&got),
                bits(&want),
                "case {case}: k {k}, seen {seen:?}, {row:?}"
            );
        }
    }

    #[test]
    fn similar_pairs_above_a_threshold() {
        // Items 0 and 2 point the same way, 1 is orthogonal, 3 is zero, 4 is close to 0.
        let v = Vectors {
            values: vec![1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.9, 0.1],
            n: 5,
            dim: 2,
        };
        let pairs = similar_pairs(&v, 0.9);
        let ids: Vec<(u32, u32)> = pairs.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(ids, vec![(0, 2), (0, 4), (2, 4)]);
        assert!((pairs[0].2 - 1.0).abs() < 1e-6);
        // Every pair agrees with cosine_to.
        for (a, b, s) in &pairs {
            assert!((cosine_to(&v, *a as usize)[*b as usize] - s).abs() < 1e-6);
        }
        assert!(similar_pairs(&v, 1.5).is_empty());
    }

    #[test]
    fn npy_header_is_padded_to_64() {
        let v = Vectors {
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            n: 3,
            dim: 2,
        };
        let b = v.to_npy();
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (3, 2)") && header.ends_with('\n'));
        assert_eq!(b.len(), 10 + hlen + 24);
        assert_eq!(&b[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
    }

    #[test]
    fn ranks_by_score_then_lower_index() {
        let scores = [0.5, 0.9, 0.5, 0.9, 0.1, 0.5];
        let got = top_k(&scores, 6, 4, None);
        assert_eq!(got, vec![vec![(1, 0.9), (3, 0.9), (0, 0.5), (2, 0.5)]]);
        // The same result whatever k cuts through the tie.
        assert_eq!(
            top_k(&scores, 6, 3, None)[0],
            vec![(1, 0.9), (3, 0.9), (0, 0.5)]
        );
        // All equal: index order.
        let flat = [1.0f32; 5];
        assert_eq!(
            top_k(&flat, 5, 3, None)[0],
            vec![(0, 1.0), (1, 1.0), (2, 1.0)]
        );
    }

    #[test]
    fn per_row_with_exclusion() {
        // Two users, three items.
        let scores = [3.0, 2.0, 1.0, 1.0, 2.0, 3.0];
        let seen: [&[u32]; 2] = [&[0], &[1, 2]];
        let got = top_k(&scores, 3, 2, Some(&seen));
        assert_eq!(got, vec![vec![(1, 2.0), (2, 1.0)], vec![(0, 1.0)]]);
        let none: [&[u32]; 2] = [&[], &[]];
        assert_eq!(
            top_k(&scores, 3, 1, Some(&none)),
            vec![vec![(0, 3.0)], vec![(2, 3.0)]]
        );
        // Unsorted seen lists work too.
        assert_eq!(top_k_row(&[1.0, 2.0, 3.0], 3, &[2, 0]), vec![(1, 2.0)]);
    }

    #[test]
    fn k_is_clamped_and_nan_ranks_last() {
        let scores = [0.1, f32::NAN, 0.3];
        let got = top_k(&scores, 3, 10, None);
        assert_eq!(got[0].len(), 3);
        assert_eq!((got[0][0], got[0][1]), ((2, 0.3), (0, 0.1)));
        assert_eq!(got[0][2].0, 1);
        assert!(top_k(&scores, 3, 0, None)[0].is_empty());
        assert!(top_k(&[], 3, 5, None).is_empty());
        let all_seen: [&[u32]; 1] = [&[0, 1, 2]];
        assert!(top_k(&scores, 3, 2, Some(&all_seen))[0].is_empty());
    }

    #[test]
    fn cosine_neighbours_exclude_the_query() {
        let items = Vectors {
            values: vec![1.0, 0.0, 2.0, 0.1, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0],
            n: 5,
            dim: 2,
        };
        let sims = cosine_to(&items, 0);
        assert!((sims[0] - 1.0).abs() < 1e-6 && (sims[3] + 1.0).abs() < 1e-6);
        assert_eq!(sims[4], 0.0);
        let got = similar_items(&items, 0, 10);
        let order: Vec<u32> = got.iter().map(|p| p.0).collect();
        assert_eq!(order, vec![1, 2, 4, 3]);
    }
}
