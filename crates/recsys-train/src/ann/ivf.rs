//! An inverted file over item vectors: the items split into lists by k-means (Lloyd's
//! algorithm on a sample), each list's vectors stored together; a query scores every list's
//! centroid, scans the best few lists and scores each of their items exactly (Jégou, Douze &
//! Schmid, "Product quantization for nearest neighbor search", TPAMI 2011, section IV; ScaNN's
//! and Faiss's IVF indexes partition the same way).
//!
//! For inner products a list's centroid alone ranks it badly: an item far from its centroid in
//! the query's direction scores more than the centroid does. A list is ranked by
//! `⟨q, c⟩ + α ‖q‖ r`, where `r` is the distance from the centroid to the list's farthest item:
//! `α = 1` is a strict bound on every item of the list (and scans lists whose items mostly sit
//! near the centre), `α = 0` the centroid alone; [`RADIUS_WEIGHT`] is between.
//!
//! Scanning reads whole lists in order, so the memory traffic is sequential; a brute-force pass
//! reads every item the same way, and the index reads the fraction of them that its lists hold.

use std::borrow::Cow;

use gemm::Parallelism;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use recsys_models::fused::simd;
use serde::{Deserialize, Serialize};

use super::{Measure, as_point, norm};
use crate::topk::{Scored, TopK, Vectors, dot, rank_order, top_k_row};

/// The weight of a list's radius in its rank (`α` in the module's description), measured with
/// `cargo xtask bench --suite ann` (the share of the exact top 10 found, the same lists scanned):
///
/// | α | 1,000,000 synthetic, 64 of 4,000 lists | MF on ml-latest-small, 45 of 394 lists |
/// |---|---|---|
/// | 0 | 0.9010 | 0.9544 |
/// | 0.1 | | 0.9710 |
/// | 0.15 | 0.9455 | 0.9690 |
/// | 0.2 | 0.9505 | 0.9620 |
/// | 0.3 | 0.9565 | 0.9403 |
/// | 0.5 | 0.9440 | 0.8970 |
///
/// Learned vectors want less of the radius than the synthetic ones; 0.2 is near the best of both.
pub const RADIUS_WEIGHT: f32 = 0.2;

/// Sample points per list that k-means is fitted to.
const SAMPLE_PER_LIST: usize = 64;

/// How an inverted file is built and searched.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct IvfParams {
    /// Lists (0: [`IvfParams::lists_for`] the catalogue).
    pub lists: usize,
    /// Lists scanned per query (0: [`IvfParams::probes_for`] the lists; larger: higher
    /// recall, slower queries).
    pub probes: usize,
    /// Rounds of k-means.
    pub iterations: usize,
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        Self {
            lists: 0,
            probes: 0,
            iterations: 10,
            seed: 42,
        }
    }
}

impl IvfParams {
    /// The default number of lists for `n` items: about `4 √n`, so that a list holds about
    /// `√n / 4` items.
    pub fn lists_for(n: usize) -> usize {
        ((4.0 * (n as f64).sqrt()).round() as usize).clamp(1, n.max(1))
    }

    /// The default number of lists scanned among `lists`: `2.5 √lists`, at least 8 (a
    /// larger catalogue's lists are finer, so a smaller share of them holds its top 10).
    pub fn probes_for(lists: usize) -> usize {
        ((2.5 * (lists as f64).sqrt()).ceil() as usize)
            .max(8)
            .min(lists)
    }
}

/// An inverted file over the items of one matrix of vectors.
#[derive(Serialize, Deserialize)]
pub struct Ivf {
    measure: Measure,
    dim: usize,
    /// `[lists, dim]`.
    centroids: Vec<f32>,
    /// Per list, the distance from its centroid to its farthest item.
    radii: Vec<f32>,
    /// List `l` holds positions `offsets[l]..offsets[l + 1]` of `ids` and `vectors`.
    offsets: Vec<u32>,
    /// The items in list order (by item within a list).
    ids: Vec<u32>,
    /// `[n, dim]`, the items' vectors in list order (unit vectors for cosine).
    vectors: Vec<f32>,
    probes: usize,
}

impl std::fmt::Debug for Ivf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ivf")
            .field("measure", &self.measure)
            .field("dim", &self.dim)
            .field("n", &self.ids.len())
            .field("lists", &self.lists())
            .field("probes", &self.probes)
            .finish()
    }
}

impl Ivf {
    /// Builds the inverted file of `items` for `measure` (k-means on all cores).
    pub fn build(items: &Vectors, measure: Measure, params: IvfParams) -> Self {
        let (n, dim) = (items.n, items.dim);
        let points: Cow<'_, [f32]> = match measure {
            Measure::InnerProduct => Cow::Borrowed(&items.values),
            Measure::Cosine => (0..n)
                .flat_map(|k| as_point(items.row(k), measure))
                .collect(),
        };
        let lists = if n == 0 {
            0
        } else if params.lists == 0 {
            IvfParams::lists_for(n)
        } else {
            params.lists.min(n)
        };
        let centroids = kmeans(&points, dim, lists, params.iterations, params.seed);
        let assign = nearest(&points, &centroids, dim);
        let mut offsets = vec![0u32; lists + 1];
        for &a in &assign {
            offsets[a as usize + 1] += 1;
        }
        for l in 0..lists {
            offsets[l + 1] += offsets[l];
        }
        let mut next: Vec<u32> = offsets[..lists].to_vec();
        let mut ids = vec![0u32; n];
        let mut vectors = vec![0f32; n * dim];
        let mut radii = vec![0f32; lists];
        for (item, &a) in assign.iter().enumerate() {
            let (l, at) = (a as usize, next[a as usize] as usize);
            next[l] += 1;
            ids[at] = item as u32;
            let v = &points[item * dim..(item + 1) * dim];
            vectors[at * dim..(at + 1) * dim].copy_from_slice(v);
            let c = &centroids[l * dim..(l + 1) * dim];
            let r = v
                .iter()
                .zip(c)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                .sqrt();
            radii[l] = radii[l].max(r);
        }
        let probes = if params.probes == 0 {
            IvfParams::probes_for(lists)
        } else {
            params.probes.min(lists)
        };
        Self {
            measure,
            dim,
            centroids,
            radii,
            offsets,
            ids,
            vectors,
            probes,
        }
    }

    pub fn measure(&self) -> Measure {
        self.measure
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn lists(&self) -> usize {
        self.radii.len()
    }

    pub fn probes(&self) -> usize {
        self.probes
    }

    /// Makes searches scan `probes` lists (at least one, at most all).
    pub fn set_probes(&mut self, probes: usize) {
        self.probes = probes.clamp(1, self.lists().max(1));
    }

    /// The `probes` lists ranked best for `q` (a point of the index), best first.
    fn probed(&self, q: &[f32]) -> Vec<Scored> {
        let qn = norm(q);
        let ranks: Vec<f32> = simd(|| {
            self.centroids
                .chunks_exact(self.dim.max(1))
                .zip(&self.radii)
                .map(|(c, r)| dot(q, c) + RADIUS_WEIGHT * qn * r)
                .collect()
        });
        top_k_row(&ranks, self.probes, &[])
    }

    /// [`super::ItemIndex::search`]: `None` when the scanned lists hold fewer than `k` items
    /// left after skipping.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        skip: impl Fn(u32) -> bool,
        score: impl Fn(u32) -> f32,
    ) -> Option<Vec<Scored>> {
        assert_eq!(
            query.len(),
            self.dim,
            "query of another width than the index"
        );
        let q = as_point(query, self.measure);
        let mut best = TopK::new(k);
        simd(|| {
            for (l, _) in self.probed(&q) {
                let (a, b) = (
                    self.offsets[l as usize] as usize,
                    self.offsets[l as usize + 1] as usize,
                );
                let rows = self.vectors[a * self.dim..b * self.dim].chunks_exact(self.dim.max(1));
                for (&item, v) in self.ids[a..b].iter().zip(rows) {
                    let s = dot(&q, v);
                    if best.admits(item, s) && !skip(item) {
                        best.offer(item, s);
                    }
                }
            }
        });
        if best.len() < k.min(self.len()) {
            return None;
        }
        let mut out: Vec<Scored> = best
            .into_sorted()
            .into_iter()
            .map(|(i, _)| (i, score(i)))
            .collect();
        out.sort_by(rank_order);
        Some(out)
    }
}

/// `k` centroids of `points` (`[n, dim]`) by Lloyd's algorithm on a seeded sample of
/// [`SAMPLE_PER_LIST`] points per centroid, started from sample points; a centroid left with
/// no points restarts from a random sample point.
fn kmeans(points: &[f32], dim: usize, k: usize, iterations: usize, seed: u64) -> Vec<f32> {
    let n = points.len().checked_div(dim).unwrap_or(0);
    if k == 0 || n == 0 {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let m = n.min(k.saturating_mul(SAMPLE_PER_LIST)).max(k);
    let sample: Vec<f32> = order[..m]
        .iter()
        .flat_map(|&i| &points[i * dim..(i + 1) * dim])
        .copied()
        .collect();
    let mut centroids = sample[..k * dim].to_vec();
    for _ in 0..iterations {
        let assign = nearest(&sample, &centroids, dim);
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (p, &a) in sample.chunks_exact(dim).zip(&assign) {
            let a = a as usize;
            counts[a] += 1;
            for (s, &x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(p) {
                *s += f64::from(x);
            }
        }
        for c in 0..k {
            let centroid = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                let r = rand::Rng::random_range(&mut rng, 0..m);
                centroid.copy_from_slice(&sample[r * dim..(r + 1) * dim]);
            } else {
                for (x, s) in centroid.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *x = (s / counts[c] as f64) as f32;
                }
            }
        }
    }
    centroids
}

/// The nearest centroid (Euclidean; the first of equals) of each of `points`: the largest
/// `⟨x, c⟩ - ‖c‖² / 2`, the products of a block of points with every centroid as one matrix
/// product.
fn nearest(points: &[f32], centroids: &[f32], dim: usize) -> Vec<u32> {
    const BLOCK: usize = 256;
    let n = points.len().checked_div(dim).unwrap_or(0);
    let k = centroids.len().checked_div(dim).unwrap_or(0);
    let mut out = vec![0u32; n];
    if k <= 1 {
        return out;
    }
    let half: Vec<f32> = centroids
        .chunks_exact(dim)
        .map(|c| dot(c, c) * 0.5)
        .collect();
    out.par_chunks_mut(BLOCK)
        .zip(points.par_chunks(BLOCK * dim))
        .for_each(|(out, block)| {
            let m = out.len();
            let mut scores = vec![0f32; m * k];
            // SAFETY: `block` is `[m, dim]` at row stride `dim`, `centroids` read as its
            // transpose `[dim, k]` (column stride `dim`, row stride 1) is `[k, dim]` in
            // bounds, and `scores` is an exclusively borrowed `[m, k]` at row stride `k`.
            unsafe {
                gemm::gemm(
                    m,
                    k,
                    dim,
                    scores.as_mut_ptr(),
                    1,
                    k as isize,
                    false,
                    block.as_ptr(),
                    1,
                    dim as isize,
                    centroids.as_ptr(),
                    dim as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            for (o, row) in out.iter_mut().zip(scores.chunks_exact(k)) {
                let mut best = (f32::NEG_INFINITY, 0);
                for (c, (s, h)) in row.iter().zip(&half).enumerate() {
                    if s - h > best.0 {
                        best = (s - h, c);
                    }
                }
                *o = best.1 as u32;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::random_vectors;
    use super::*;

    #[test]
    fn scanning_every_list_is_exact() {
        let items = random_vectors(700, 6, 5);
        for measure in [Measure::InnerProduct, Measure::Cosine] {
            let mut index = Ivf::build(&items, measure, IvfParams::default());
            index.set_probes(usize::MAX);
            assert_eq!(index.probes(), index.lists());
            // Every item is in exactly one list.
            let mut ids = index.ids.clone();
            ids.sort_unstable();
            assert!(ids.iter().copied().eq(0..700));
            let unit = |v: &[f32]| -> Vec<f32> { v.iter().map(|x| x / norm(v)).collect() };
            for u in [0, 17, 300] {
                let q = items.row(u);
                let score = |i: u32| match measure {
                    Measure::InnerProduct => dot(items.row(i as usize), q),
                    Measure::Cosine => dot(&unit(items.row(i as usize)), &unit(q)),
                };
                let got = index.search(q, 12, |i| i == u as u32, score).unwrap();
                let scores: Vec<f32> = (0..700).map(score).collect();
                let want = top_k_row(&scores, 12, &[u as u32]);
                let ids = |v: &[Scored]| v.iter().map(|s| s.0).collect::<Vec<_>>();
                assert_eq!(ids(&got), ids(&want), "{measure:?}, query {u}");
            }
        }
    }

    #[test]
    fn too_few_candidates_left_is_none() {
        let items = random_vectors(400, 4, 6);
        let params = IvfParams {
            lists: 20,
            probes: 1,
            ..IvfParams::default()
        };
        let index = Ivf::build(&items, Measure::InnerProduct, params);
        let q = items.row(3);
        // One list of about 20 items cannot give 100 candidates.
        assert!(index.search(q, 100, |_| false, |_| 0.0).is_none());
        assert!(index.search(q, 5, |_| true, |_| 0.0).is_none());
        assert_eq!(index.search(q, 5, |_| false, |_| 0.0).unwrap().len(), 5);
    }

    #[test]
    fn build_is_deterministic_and_handles_tiny_catalogues() {
        let items = random_vectors(900, 5, 7);
        let a = Ivf::build(&items, Measure::InnerProduct, IvfParams::default());
        let b = Ivf::build(&items, Measure::InnerProduct, IvfParams::default());
        assert_eq!(a.ids, b.ids);
        assert_eq!(a.offsets, b.offsets);
        assert_eq!(a.centroids, b.centroids);
        for n in [0, 1, 3] {
            let items = random_vectors(n, 4, 8);
            let index = Ivf::build(&items, Measure::Cosine, IvfParams::default());
            assert_eq!(index.len(), n);
            let got = index.search(&[1.0, 0.0, 0.0, 0.0], 2, |_| false, |_| 0.0);
            assert_eq!(got.unwrap().len(), n.min(2));
        }
    }
}
