//! An HNSW graph (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
//! using Hierarchical Navigable Small World graphs", TPAMI 2020) built by the `instant-distance`
//! crate.
//!
//! The graph is built and searched with the negative inner product itself as its dissimilarity
//! (ip-NSW: Morozov & Babenko, "Non-metric similarity graphs for maximum inner product search",
//! NeurIPS 2018). HNSW's greedy search and neighbour selection only compare dissimilarities, so
//! they need no metric; on item vectors of varied norms this finds far more of the true top 10
//! for the same work than the usual reduction to Euclidean distance with one extra dimension.
//! Cosine similarity is the same search over unit vectors.

use instant_distance::{Builder, HnswMap, Search};
use serde::{Deserialize, Serialize};

use super::{Measure, as_point};
use crate::error::{Result, TrainError};
use crate::topk::{Scored, Vectors, dot};

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

    /// [`super::ItemIndex::search`]: `None` when the graph's `ef_search` candidates run out
    /// before `k` are left after skipping.
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

#[cfg(test)]
mod tests {
    use super::super::test_util::random_vectors;
    use super::*;

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
}
