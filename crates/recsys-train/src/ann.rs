//! Approximate nearest neighbours over item vectors: an HNSW graph (Malkov & Yashunin, "Efficient
//! and robust approximate nearest neighbor search using Hierarchical Navigable Small World
//! graphs", TPAMI 2020) built by the `instant-distance` crate, for maximum inner product search
//! (what factorised models rank by) and for cosine similarity (what `similar` ranks by).
//!
//! The graph is built and searched with the negative inner product itself as its dissimilarity
//! (ip-NSW: Morozov & Babenko, "Non-metric similarity graphs for maximum inner product search",
//! NeurIPS 2018). HNSW's greedy search and neighbour selection only compare dissimilarities, so
//! they need no metric; on item vectors of varied norms this finds far more of the true top 10
//! for the same work than the usual reduction to Euclidean distance with one extra dimension
//! (`cargo xtask bench --suite ann` measures it). Cosine similarity is the same search over unit
//! vectors.
//!
//! An index is saved in a run directory as `index.bin` ([`INDEX_FILE`]).

use std::path::Path;

use instant_distance::{Builder, HnswMap, Search};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::topk::{Scored, Vectors, dot};

/// The index file of a run directory.
pub const INDEX_FILE: &str = "index.bin";

/// Format version of [`INDEX_FILE`] (2: graphs of inner products; 1 held Euclidean graphs).
const VERSION: u32 = 2;

/// A point of the graph: a vector; the larger the inner product of two points, the nearer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Point(Box<[f32]>);

impl instant_distance::Point for Point {
    fn distance(&self, other: &Self) -> f32 {
        -dot(&self.0, &other.0)
    }
}

/// How an HNSW graph is built and searched.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct HnswParams {
    /// Candidates kept while inserting (larger: a better graph, a slower build).
    pub ef_construction: usize,
    /// Candidates kept while searching (larger: higher recall, slower queries).
    pub ef_search: usize,
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            ef_construction: 100,
            ef_search: 100,
            seed: 42,
        }
    }
}

/// What a graph's distances rank by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    InnerProduct,
    Cosine,
}

/// An HNSW graph over the items of one matrix of vectors.
#[derive(Serialize, Deserialize)]
pub struct Hnsw {
    measure: Measure,
    dim: usize,
    map: HnswMap<Point, u32>,
}

impl std::fmt::Debug for Hnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hnsw")
            .field("measure", &self.measure)
            .field("dim", &self.dim)
            .field("n", &self.map.values.len())
            .finish()
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// A vector as a point of a graph for `measure`: itself, or its unit vector for cosine.
fn as_point(v: &[f32], measure: Measure) -> Box<[f32]> {
    match measure {
        Measure::InnerProduct => v.into(),
        Measure::Cosine => {
            let n = norm(v);
            v.iter()
                .map(|x| if n > 0.0 { x / n } else { 0.0 })
                .collect()
        }
    }
}

impl Hnsw {
    /// Builds the graph of `items` for `measure` (on all cores).
    pub fn build(items: &Vectors, measure: Measure, params: HnswParams) -> Self {
        let points: Vec<Point> = (0..items.n)
            .map(|k| Point(as_point(items.row(k), measure)))
            .collect();
        let values: Vec<u32> = (0..items.n as u32).collect();
        let map = Builder::default()
            .ef_construction(params.ef_construction)
            .ef_search(params.ef_search)
            .seed(params.seed)
            .build(points, values);
        Self {
            measure,
            dim: items.dim,
            map,
        }
    }

    pub fn measure(&self) -> Measure {
        self.measure
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.map.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes searches keep `ef_search` candidates. The graph does not depend on it, but
    /// `instant-distance` fixes it when building; it is the first field of the graph's
    /// serialized form (a postcard varint), which is rewritten and read back.
    pub fn set_ef_search(&mut self, ef_search: usize) -> Result<()> {
        let bad = |e: postcard::Error| TrainError::Config(format!("setting ef_search: {e}"));
        let bytes = postcard::to_stdvec(&self.map).map_err(bad)?;
        let (_, rest) = postcard::take_from_bytes::<usize>(&bytes).map_err(bad)?;
        let mut patched = postcard::to_stdvec(&ef_search.max(1)).map_err(bad)?;
        patched.extend_from_slice(rest);
        self.map = postcard::from_bytes(&patched).map_err(bad)?;
        Ok(())
    }

    /// Items near `query` in the graph's order (best first), as `(item, graph distance)`, at most
    /// `ef_search` of them.
    fn candidates<'a>(
        &'a self,
        query: &[f32],
        search: &'a mut Search,
    ) -> impl Iterator<Item = u32> + 'a {
        assert_eq!(
            query.len(),
            self.dim,
            "query of another width than the index"
        );
        let q = Point(as_point(query, self.measure));
        // The query point is only read during the search, which the iterator has finished.
        let found: Vec<u32> = self
            .map
            .search(&q, search)
            .map(|item| *item.value)
            .collect();
        found.into_iter()
    }

    /// The best `k` items for `query` not in `skip`, with `score(item)` (e.g. the exact inner
    /// product, or the cosine) as their score, best first; `None` when the graph's candidates
    /// run out before `k` (the caller then searches exactly).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        skip: impl Fn(u32) -> bool,
        score: impl Fn(u32) -> f32,
    ) -> Option<Vec<Scored>> {
        let mut search = Search::default();
        let mut out: Vec<Scored> = self
            .candidates(query, &mut search)
            .filter(|&i| !skip(i))
            .take(k)
            .map(|i| (i, score(i)))
            .collect();
        if out.len() < k.min(self.len()) {
            return None;
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(out)
    }
}

/// The indexes of a run: inner product over its retrieval vectors (recommendations) and cosine
/// over its item vectors (similar items), each when the model has them.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunIndex {
    version: u32,
    pub n_items: usize,
    pub params: HnswParams,
    pub inner_product: Option<Hnsw>,
    pub cosine: Option<Hnsw>,
}

impl RunIndex {
    pub fn new(
        n_items: usize,
        params: HnswParams,
        inner_product: Option<Hnsw>,
        cosine: Option<Hnsw>,
    ) -> Self {
        Self {
            version: VERSION,
            n_items,
            params,
            inner_product,
            cosine,
        }
    }

    /// Writes the index into `run_dir` (atomically).
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let path = run_dir.join(INDEX_FILE);
        let bytes = postcard::to_stdvec(self).map_err(|e| TrainError::format(&path, e))?;
        Ok(recsys_data::io::write_atomic(&path, &bytes)?)
    }

    /// The index of `run_dir`, `None` when it has none; an error when it is unreadable or was
    /// built for another catalogue size.
    pub fn load(run_dir: &Path, n_items: usize) -> Result<Option<Self>> {
        let path = run_dir.join(INDEX_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrainError::io(&path, e)),
        };
        let index: RunIndex = postcard::from_bytes(&bytes).map_err(|e| {
            TrainError::format(
                &path,
                format!("not an index of this version ({e}); rebuild it with `recsys index`"),
            )
        })?;
        if index.version != VERSION {
            return Err(TrainError::format(
                &path,
                format!(
                    "index version {} (expected {VERSION}); rebuild it with `recsys index`",
                    index.version
                ),
            ));
        }
        if index.n_items != n_items {
            return Err(TrainError::format(
                &path,
                format!(
                    "built for {} items, the run has {n_items}; rebuild it with `recsys index`",
                    index.n_items
                ),
            ));
        }
        Ok(Some(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topk::top_k_row;

    fn random_vectors(n: usize, dim: usize, seed: u64) -> Vectors {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let values = (0..n * dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Vectors { values, n, dim }
    }

    fn exact(items: &Vectors, q: &[f32], k: usize, skip: &[u32]) -> Vec<u32> {
        let scores: Vec<f32> = (0..items.n).map(|i| dot(items.row(i), q)).collect();
        top_k_row(&scores, k, skip).iter().map(|s| s.0).collect()
    }

    #[test]
    fn inner_product_search_finds_the_exact_top_k() {
        let items = random_vectors(2000, 8, 1);
        let index = Hnsw::build(&items, Measure::InnerProduct, HnswParams::default());
        let queries = random_vectors(50, 8, 2);
        let mut hits = 0;
        for u in 0..queries.n {
            let q = queries.row(u);
            let skip = [0u32, 5, 7];
            let got = index
                .search(
                    q,
                    10,
                    |i| skip.contains(&i),
                    |i| dot(items.row(i as usize), q),
                )
                .unwrap();
            assert!(got.iter().all(|(i, _)| !skip.contains(i)));
            assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
            let want = exact(&items, q, 10, &skip);
            hits += got.iter().filter(|(i, _)| want.contains(i)).count();
        }
        let recall = hits as f64 / (10 * queries.n) as f64;
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn ef_search_can_be_changed_after_building() {
        let items = random_vectors(500, 4, 4);
        let narrow = HnswParams {
            ef_search: 10,
            ..HnswParams::default()
        };
        let mut index = Hnsw::build(&items, Measure::InnerProduct, narrow);
        let q = items.row(1);
        // Skipping 15 candidates leaves nothing of 10, and 5 of 40, for a top 5.
        let skipped: Vec<u32> = index
            .candidates(q, &mut Search::default())
            .take(15)
            .collect();
        assert_eq!(skipped.len(), 10);
        let top5 = |index: &Hnsw| {
            index.search(
                q,
                5,
                |i| skipped.contains(&i),
                |i| dot(items.row(i as usize), q),
            )
        };
        assert!(top5(&index).is_none());
        index.set_ef_search(40).unwrap();
        assert_eq!(index.candidates(q, &mut Search::default()).count(), 40);
        assert_eq!(top5(&index).unwrap().len(), 5);
    }

    #[test]
    fn saved_index_reads_back_and_checks_its_catalogue() {
        let items = random_vectors(300, 4, 3);
        let dir = tempfile::tempdir().unwrap();
        let ip = Hnsw::build(&items, Measure::InnerProduct, HnswParams::default());
        RunIndex::new(300, HnswParams::default(), Some(ip), None)
            .save(dir.path())
            .unwrap();
        let back = RunIndex::load(dir.path(), 300).unwrap().unwrap();
        let q = items.row(0);
        let a = back
            .inner_product
            .as_ref()
            .unwrap()
            .search(q, 5, |_| false, |i| dot(items.row(i as usize), q))
            .unwrap();
        assert_eq!(a.len(), 5);
        assert!(back.cosine.is_none());
        let err = RunIndex::load(dir.path(), 301).unwrap_err().to_string();
        assert!(err.contains("built for 300 items"), "{err}");
        assert!(
            RunIndex::load(tempfile::tempdir().unwrap().path(), 1)
                .unwrap()
                .is_none()
        );
    }
}
