//! One served run: the loaded run ([`LoadedRun`], the one scoring path), what its training part
//! says (seen items, own ratings, popularity, titles), and host vectors for factorised models.

use std::path::{Path, PathBuf};

use recsys_data::{Dataset, UserHistory};
use recsys_train::retrieval::Retrieval;
use recsys_train::topk::{self, Scored, Vectors, dot};
use recsys_train::{BackendKind, Checkpoint, LoadedRun, RatingMetrics, TaskKind, load_run};
use serde_json::{Value, json};

use crate::error::ServeError;

/// How runs are loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub checkpoint: Checkpoint,
    /// The backend and adapter, else each run's own.
    pub backend: Option<(BackendKind, usize)>,
    /// Brute force even when a run has an index.
    pub exact: bool,
}

/// Popularity shrinks each item's mean rating toward the global mean with this many pseudo
/// ratings, so an item with one 5-star rating does not top the list.
const SHRINK: f64 = 25.0;

/// A run ready to answer queries.
pub struct ServedRun {
    pub name: String,
    pub dir: PathBuf,
    pub run: LoadedRun,
    pub dataset: Dataset,
    /// The training part's ratings per user (seen items, sorted by item).
    pub history: UserHistory,
    /// Every item, most popular first, with its popularity score.
    pub popular: Vec<Scored>,
    pub retrieval: Option<Retrieval>,
    /// Cosine item vectors for `similar`, when the model learns item vectors.
    pub item_vectors: Option<Vectors>,
    pub can_fold_in: bool,
    pub mean_user_ratings: f64,
    pub test: Option<RatingMetrics>,
    pub trained_at_unix: Option<u64>,
    pub exact: bool,
}

impl std::fmt::Debug for ServedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedRun")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish()
    }
}

/// A user to recommend for: a row of the model, or a vector fitted to a history.
pub enum Who<'a> {
    Known(u32),
    Folded(&'a [f32]),
}

impl ServedRun {
    /// Loads the run in `dir` and replays its data recipe (the training part and titles).
    pub fn load(name: &str, dir: &Path, options: &LoadOptions) -> Result<Self, ServeError> {
        let run = load_run(dir, options.checkpoint, options.backend)?;
        let data = recsys_train::replay::replay(&run.config.data, None)?;
        recsys_train::check_same_ids(dir, &run.ids, &data.dataset.ids)?;
        let history = UserHistory::new(&data.train);
        let popular = popularity(&history, data.train.n_items);
        let retrieval = Retrieval::with_index_of(&run, dir)?;
        let item_vectors = topk::item_vectors(&run).ok();
        let can_fold_in = (retrieval.is_some() && run.config.model.can_fold_in(&run.model))
            || run.folds_in_rows();
        let mean_user_ratings = data.train.len() as f64 / data.train.n_users.max(1) as f64;
        let test = (run.config.task.kind() == TaskKind::Rating && !data.test.is_empty())
            .then(|| run.evaluate(&data.test));
        let trained_at_unix = recsys_train::RunDir::open(dir)
            .and_then(|r| r.model_path(options.checkpoint))
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        Ok(Self {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            run,
            dataset: data.dataset,
            history,
            popular,
            retrieval,
            item_vectors,
            can_fold_in,
            mean_user_ratings,
            test,
            trained_at_unix,
            exact: options.exact,
        })
    }

    pub fn n_items(&self) -> usize {
        self.run.ids.n_items()
    }

    /// What `/v1/models` says of this run.
    pub fn describe(&self) -> Value {
        let c = &self.run.config;
        // The kind of index top-K goes through (none with `--exact`).
        let index_method = self
            .retrieval
            .as_ref()
            .filter(|r| r.has_index() && !self.exact)
            .and_then(|r| r.index.as_ref())
            .map(|i| i.params.method);
        json!({
            "name": self.name,
            "run_dir": self.dir.display().to_string(),
            "model": c.model.name(),
            "family": c.model.family(),
            "task": c.task.kind(),
            "n_users": self.run.ids.n_users(),
            "n_items": self.n_items(),
            "rating_scale": c.rating_scale,
            "test": self.test,
            "trained_at_unix": self.trained_at_unix,
            "fold_in": self.can_fold_in,
            "cold_start": if self.can_fold_in { "fold_in" } else { "popular" },
            "similar": self.item_vectors.is_some(),
            "index": index_method.is_some(),
            "index_method": index_method,
        })
    }

    /// The best `k` items for `who`, skipping `skip` (sorted), with the scores shown to users
    /// ([`LoadedRun::shown_score`]: ratings clamped to the scale).
    pub fn recommend(&self, who: Who<'_>, k: usize, skip: &[u32]) -> Vec<Scored> {
        let mut list = self.ranked(who, k, skip);
        list.iter_mut()
            .for_each(|s| s.1 = self.run.shown_score(s.1));
        list
    }

    fn ranked(&self, who: Who<'_>, k: usize, skip: &[u32]) -> Vec<Scored> {
        match (who, &self.retrieval) {
            (Who::Known(u), Some(r)) => r.top_k(r.user(u), k, skip, self.exact),
            (Who::Folded(v), Some(r)) => r.top_k(v, k, skip, self.exact),
            (Who::Known(u), None) => {
                let seen: [&[u32]; 1] = [skip];
                self.run.top_k(&[u], k, Some(&seen)).remove(0)
            }
            (Who::Folded(_), None) => unreachable!("only factorised runs fold users in"),
        }
    }

    /// The most popular `k` items not in `skip` (sorted).
    pub fn popular(&self, k: usize, skip: &[u32]) -> Vec<Scored> {
        self.popular
            .iter()
            .filter(|(i, _)| skip.binary_search(i).is_err())
            .take(k)
            .copied()
            .collect()
    }

    /// A user's vector fitted to `history`, when the family folds users in.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Option<Vec<f32>> {
        self.retrieval
            .as_ref()?
            .fold_in(&self.run, history, self.mean_user_ratings)
    }

    /// The best `k` items for a new user given by `history`, skipping `skip`: through a vector
    /// fitted to it (factorised families), or with it as the model's input row (U-AutoRec);
    /// `None` when the family can do neither.
    pub fn recommend_new(
        &self,
        history: &[(u32, f32)],
        k: usize,
        skip: &[u32],
    ) -> Option<Vec<Scored>> {
        match self.fold_in(history) {
            Some(v) => Some(self.recommend(Who::Folded(&v), k, skip)),
            None => {
                let mut list = self.run.top_k_for_history(history, k, skip)?;
                list.iter_mut()
                    .for_each(|s| s.1 = self.run.shown_score(s.1));
                Some(list)
            }
        }
    }

    /// The `k` items most similar to `item` (cosine of item vectors), through the index when
    /// the run has one.
    pub fn similar(&self, item: u32, k: usize) -> Option<Vec<Scored>> {
        let items = self.item_vectors.as_ref()?;
        let graph = self
            .retrieval
            .as_ref()
            .and_then(|r| r.index.as_ref())
            .and_then(|i| i.cosine.as_ref());
        if !self.exact
            && let Some(g) = graph
        {
            let q = items.row(item as usize);
            let qn = norm(q);
            let cos = |i: u32| {
                let v = items.row(i as usize);
                let d = norm(v) * qn;
                if d == 0.0 { 0.0 } else { dot(q, v) / d }
            };
            if let Some(found) = g.search(q, k, |i| i == item, cos) {
                return Some(found);
            }
        }
        Some(topk::similar_items(items, item, k))
    }

    /// The user's own training ratings, highest first (then by item).
    pub fn top_rated(&self, user: u32, n: usize) -> Vec<(u32, f32)> {
        if user as usize >= self.history.n_users() {
            return Vec::new();
        }
        let mut rated: Vec<(u32, f32)> = self
            .history
            .items(user)
            .iter()
            .copied()
            .zip(self.history.ratings(user).iter().copied())
            .collect();
        rated.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rated.truncate(n);
        rated
    }

    /// The training items of `user` (sorted), none for a user outside the history.
    pub fn seen(&self, user: u32) -> &[u32] {
        if (user as usize) < self.history.n_users() {
            self.history.items(user)
        } else {
            &[]
        }
    }
}

/// Items by mean training rating shrunk toward the global mean (`SHRINK` pseudo ratings); for
/// implicit feedback, whose ratings are all 1, by count.
fn popularity(history: &UserHistory, n_items: usize) -> Vec<Scored> {
    let mut sum = vec![0f64; n_items];
    let mut count = vec![0f64; n_items];
    for u in 0..history.n_users() as u32 {
        for (&i, &r) in history.items(u).iter().zip(history.ratings(u)) {
            sum[i as usize] += r as f64;
            count[i as usize] += 1.0;
        }
    }
    let total: f64 = count.iter().sum();
    let mean = sum.iter().sum::<f64>() / total.max(1.0);
    let all_equal = (0..n_items).all(|i| count[i] == 0.0 || sum[i] == count[i] * mean);
    let mut out: Vec<Scored> = (0..n_items)
        .map(|i| {
            let s = if all_equal {
                count[i]
            } else {
                (sum[i] + SHRINK * mean) / (count[i] + SHRINK)
            };
            (i as u32, s as f32)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}
