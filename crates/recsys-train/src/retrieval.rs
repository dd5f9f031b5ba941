//! Top-K on the host for factorised models: the run's [`Retriever`](recsys_models::Retriever)
//! vectors read once from the device, ranked by inner product (exactly, or through the run's
//! approximate index, [`crate::ann`]), with scores mapped through the family's [`Link`], so they equal
//! [`LoadedRun::score`]. What a server answers many small queries from, and what folded-in users
//! (vectors the model never had) are ranked with.

use std::path::Path;

use burn::tensor::{Int, Tensor};

use crate::ann::RunIndex;
use crate::error::Result;
use crate::family::{FoldIn, Link};
use crate::loaded::LoadedRun;
use crate::topk::{Scored, Vectors, dot, top_k_streamed};

/// A factorised run's vectors on the host, and its index when it has one.
#[derive(Debug)]
pub struct Retrieval {
    /// `[n_users, d]`: every user of the id map (and the out-of-vocabulary row, when kept).
    pub users: Vectors,
    /// `[n_items, d]`.
    pub items: Vectors,
    pub link: Link,
    /// The run's saved index ([`RunIndex::load`]), when present.
    pub index: Option<RunIndex>,
}

impl Retrieval {
    /// The vectors of `run`, `None` when its model does not factorise.
    pub fn new(run: &LoadedRun) -> Option<Self> {
        let retriever = run.retriever()?;
        let n_users = run.ids.users.len() + usize::from(run.oov_user().is_some());
        let items = Vectors::from_tensor(retriever.item_vectors());
        let users: Tensor<1, Int> = Tensor::arange(0..n_users as i64, &run.device);
        let users = Vectors::from_tensor(retriever.user_vectors(users));
        Some(Self {
            users,
            items,
            link: run.config.model.link(),
            index: None,
        })
    }

    /// [`Retrieval::new`] with the index of `run_dir` when it has one.
    pub fn with_index_of(run: &LoadedRun, run_dir: &Path) -> Result<Option<Self>> {
        let Some(mut r) = Self::new(run) else {
            return Ok(None);
        };
        r.index = RunIndex::load(run_dir, r.items.n)?;
        Ok(Some(r))
    }

    /// Whether top-K goes through an approximate index.
    pub fn has_index(&self) -> bool {
        self.index
            .as_ref()
            .is_some_and(|i| i.inner_product.is_some())
    }

    pub fn user(&self, user: u32) -> &[f32] {
        self.users.row(user as usize)
    }

    /// The model's score of `item` for a user of vector `user`.
    pub fn score(&self, user: &[f32], item: u32) -> f32 {
        self.link.apply(dot(user, self.items.row(item as usize)))
    }

    /// [`Retrieval::top_k`] through the run's index, `None` when it has none or the index runs
    /// out of candidates after skipping `seen` (sorted).
    pub fn indexed_top_k(&self, user: &[f32], k: usize, seen: &[u32]) -> Option<Vec<Scored>> {
        let index = self.index.as_ref()?.inner_product.as_ref()?;
        index.search(
            user,
            k,
            |i| seen.binary_search(&i).is_ok(),
            |i| self.score(user, i),
        )
    }

    /// The best `k` items for a user of vector `user`, skipping `seen` (sorted), best first;
    /// through the index unless `exact` (or the index runs out of candidates after skipping).
    pub fn top_k(&self, user: &[f32], k: usize, seen: &[u32], exact: bool) -> Vec<Scored> {
        if !exact && let Some(found) = self.indexed_top_k(user, k, seen) {
            return found;
        }
        let mut out = top_k_streamed(self.items.n, k, seen, |i| dot(user, self.items.row(i)));
        out.iter_mut().for_each(|s| s.1 = self.link.apply(s.1));
        out
    }

    /// A new user's vector fitted to `history` (`(item, rating)`), `None` when the family cannot
    /// fold users in ([`crate::Family::fold_in`]).
    pub fn fold_in(
        &self,
        run: &LoadedRun,
        history: &[(u32, f32)],
        mean_user_ratings: f64,
    ) -> Option<Vec<f32>> {
        run.config.model.fold_in(
            &run.model,
            &FoldIn {
                history,
                mean_user_ratings,
                item_vectors: &self.items.values,
            },
        )
    }
}
