//! Approximate nearest neighbours over item vectors, for maximum inner product search (what
//! factorised models rank by) and for cosine similarity (what `similar` ranks by). Two kinds of
//! index, chosen by [`Method`]:
//! - [`ivf`]: an inverted file, the partitioning that ScaNN and Faiss's IVF indexes search
//!   (items split into lists by k-means; a query scans the lists whose centroids score best,
//!   every scanned item scored exactly). The default: on a 2-core machine it finds 0.95 of the
//!   exact top 10 at far more queries per second than the graph (`cargo xtask bench --suite ann`).
//! - [`hnsw`]: an HNSW graph built by the `instant-distance` crate.
//!
//! Cosine similarity is the same search over unit vectors. An index is saved in a run
//! directory as `index.bin` ([`INDEX_FILE`]).

pub mod hnsw;
pub mod ivf;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use self::hnsw::{Hnsw, HnswParams};
pub use self::ivf::{Ivf, IvfParams};
use crate::error::{Result, TrainError};
use crate::loaded::LoadedRun;
use crate::retrieval::Retrieval;
use crate::topk::{Scored, Vectors};

/// The index file of a run directory.
pub const INDEX_FILE: &str = "index.bin";

/// Format version of [`INDEX_FILE`] (3: an inverted file or a graph; 2 held only graphs of
/// inner products; 1 Euclidean graphs).
const VERSION: u32 = 3;

/// What an index ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    InnerProduct,
    Cosine,
}

/// Which kind of index to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// An inverted file of k-means lists ([`Ivf`]).
    #[default]
    Ivf,
    /// An HNSW graph ([`Hnsw`]).
    Hnsw,
}

/// How an index is built and searched: the method, and each method's settings.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct IndexParams {
    pub method: Method,
    pub ivf: IvfParams,
    pub hnsw: HnswParams,
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// A vector as a point of an index for `measure`: itself, or its unit vector for cosine.
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

/// An index over the items of one matrix of vectors.
#[derive(Debug, Serialize, Deserialize)]
pub enum ItemIndex {
    Ivf(Ivf),
    Hnsw(Hnsw),
}

impl ItemIndex {
    /// Builds the index of `items` for `measure` with `params.method` (on all cores).
    pub fn build(items: &Vectors, measure: Measure, params: &IndexParams) -> Self {
        match params.method {
            Method::Ivf => Self::Ivf(Ivf::build(items, measure, params.ivf)),
            Method::Hnsw => Self::Hnsw(Hnsw::build(items, measure, params.hnsw)),
        }
    }

    pub fn method(&self) -> Method {
        match self {
            Self::Ivf(_) => Method::Ivf,
            Self::Hnsw(_) => Method::Hnsw,
        }
    }

    pub fn measure(&self) -> Measure {
        match self {
            Self::Ivf(i) => i.measure(),
            Self::Hnsw(h) => h.measure(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Ivf(i) => i.len(),
            Self::Hnsw(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best `k` items for `query` not in `skip`, with `score(item)` (e.g. the exact inner
    /// product mapped through the model's link, or the cosine) as their score, best first;
    /// `None` when the index's candidates run out before `k` (the caller then searches exactly).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        skip: impl Fn(u32) -> bool,
        score: impl Fn(u32) -> f32,
    ) -> Option<Vec<Scored>> {
        match self {
            Self::Ivf(i) => i.search(query, k, skip, score),
            Self::Hnsw(h) => h.search(query, k, skip, score),
        }
    }
}

/// The indexes of a run: inner product over its retrieval vectors (recommendations) and cosine
/// over its item vectors (similar items), each when the model has them.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunIndex {
    version: u32,
    pub n_items: usize,
    pub params: IndexParams,
    pub inner_product: Option<ItemIndex>,
    pub cosine: Option<ItemIndex>,
}

impl RunIndex {
    pub fn new(
        n_items: usize,
        params: IndexParams,
        inner_product: Option<ItemIndex>,
        cosine: Option<ItemIndex>,
    ) -> Self {
        Self {
            version: VERSION,
            n_items,
            params,
            inner_product,
            cosine,
        }
    }

    /// The indexes of `run` with `params`: inner product over its retrieval vectors, cosine over
    /// its item vectors, each when the model has them; an error when it has neither.
    pub fn build(run: &LoadedRun, params: IndexParams) -> Result<Self> {
        let inner_product =
            Retrieval::new(run).map(|r| ItemIndex::build(&r.items, Measure::InnerProduct, &params));
        let cosine = crate::topk::item_vectors(run)
            .ok()
            .map(|v| ItemIndex::build(&v, Measure::Cosine, &params));
        if inner_product.is_none() && cosine.is_none() {
            return Err(TrainError::Config(format!(
                "model {} learns no item vectors to index",
                run.config.model.name()
            )));
        }
        Ok(Self::new(run.n_items(), params, inner_product, cosine))
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
        let rebuild = "rebuild it with `recsys index`";
        // The version is the first field (a varint), read alone so that an index of another
        // version is named as such rather than as unreadable.
        match postcard::take_from_bytes::<u32>(&bytes) {
            Ok((VERSION, _)) => {}
            Ok((v, _)) => {
                return Err(TrainError::format(
                    &path,
                    format!("index version {v} (expected {VERSION}); {rebuild}"),
                ));
            }
            Err(e) => return Err(TrainError::format(&path, format!("not an index ({e})"))),
        }
        let index: RunIndex = postcard::from_bytes(&bytes).map_err(|e| {
            TrainError::format(
                &path,
                format!("not an index of this version ({e}); {rebuild}"),
            )
        })?;
        if index.n_items != n_items {
            return Err(TrainError::format(
                &path,
                format!(
                    "built for {} items, the run has {n_items}; {rebuild}",
                    index.n_items
                ),
            ));
        }
        Ok(Some(index))
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::topk::{Vectors, dot, top_k_row};

    pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vectors {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let values = (0..n * dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Vectors { values, n, dim }
    }

    pub fn exact(items: &Vectors, q: &[f32], k: usize, skip: &[u32]) -> Vec<u32> {
        let scores: Vec<f32> = (0..items.n).map(|i| dot(items.row(i), q)).collect();
        top_k_row(&scores, k, skip).iter().map(|s| s.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{exact, random_vectors};
    use super::*;
    use crate::topk::dot;

    #[test]
    fn inner_product_search_finds_the_exact_top_k() {
        let items = random_vectors(2000, 8, 1);
        let queries = random_vectors(50, 8, 2);
        for method in [Method::Ivf, Method::Hnsw] {
            let params = IndexParams {
                method,
                ..IndexParams::default()
            };
            let index = ItemIndex::build(&items, Measure::InnerProduct, &params);
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
            assert!(recall >= 0.95, "{method:?}: recall@10 {recall}");
        }
    }

    #[test]
    fn saved_index_reads_back_and_checks_its_catalogue() {
        let items = random_vectors(300, 4, 3);
        let dir = tempfile::tempdir().unwrap();
        for method in [Method::Ivf, Method::Hnsw] {
            let params = IndexParams {
                method,
                ..IndexParams::default()
            };
            let ip = ItemIndex::build(&items, Measure::InnerProduct, &params);
            RunIndex::new(300, params, Some(ip), None)
                .save(dir.path())
                .unwrap();
            let back = RunIndex::load(dir.path(), 300).unwrap().unwrap();
            assert_eq!(back.params.method, method);
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
        }
        assert!(
            RunIndex::load(tempfile::tempdir().unwrap().path(), 1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn index_of_another_version_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = postcard::to_stdvec(&2u32).unwrap();
        bytes.extend_from_slice(&[0; 16]);
        std::fs::write(dir.path().join(INDEX_FILE), &bytes).unwrap();
        let err = RunIndex::load(dir.path(), 1).unwrap_err().to_string();
        assert!(err.contains("index version 2 (expected 3)"), "{err}");
        std::fs::write(dir.path().join(INDEX_FILE), b"").unwrap();
        let err = RunIndex::load(dir.path(), 1).unwrap_err().to_string();
        assert!(err.contains("not an index"), "{err}");
    }
}
