//! A trained run loaded for inference: its configuration, id map and weights on a plain
//! (non-autodiff) device, and what evaluation, prediction and top-K ask of it.

use std::path::Path;

use burn::tensor::Device;
use recsys_data::{IdMap, Interactions};
use recsys_models::{RatingModel, Retriever, Scorer};

use crate::batch::{epoch_order, index_tensor};
use crate::budget::{SCORE_ALL, rows_per_block};
use crate::config::RunConfig;
use crate::device::{BackendKind, device};
use crate::error::{Result, TrainError};
use crate::eval::{denormalize, evaluate, predict};
use crate::family::{AnyModel, Family, with_family, with_model};
use crate::metrics::RatingMetrics;
use crate::ranking::{RankingMetrics, RankingTask, device_top_k, evaluate_ranking};
use crate::run_dir::{Checkpoint, RunDir};

/// A trained run loaded for inference (weights on a plain, non-autodiff device).
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub config: RunConfig,
    pub ids: IdMap,
    pub model: AnyModel,
    pub device: Device,
}

/// Loads the run in `dir` with weights `which`, on the run's own backend or `backend` if given.
/// Models that read their training rows at prediction time get them back from the run.
pub fn load_run(
    dir: &Path,
    which: Checkpoint,
    backend: Option<(BackendKind, usize)>,
) -> Result<LoadedRun> {
    let run = RunDir::open(dir)?;
    let config: RunConfig = run.read_config()?;
    let ids = run.read_idmap()?;
    crate::memory::check_memory(&config, false)
        .map_err(|e| crate::error::TrainError::format(run.config_path(), e))?;
    let (kind, index) = backend.unwrap_or((config.backend, config.device_index));
    let device = device(kind, index)?.without_autodiff();
    let model = with_family!(&config.model, F, c => {
        let model = run.load_model(c.init(&device)?, which)?;
        AnyModel::from(c.attach(model, &run)?)
    });
    check_ids_fit(&run, &ids, with_model!(&model, F, m => m.n_items()))?;
    Ok(LoadedRun {
        config,
        ids,
        model,
        device,
    })
}

/// `Err` naming `idmap.json` when it lists another number of items than the weights hold (the
/// two files are of different runs): every command maps item indices through both.
fn check_ids_fit(run: &RunDir, ids: &IdMap, weights_items: usize) -> Result<()> {
    let listed = ids.n_items();
    if listed != weights_items {
        return Err(crate::error::TrainError::format(
            run.idmap_path(),
            format!(
                "lists {listed} items but the run's weights hold {weights_items}: the id map and \
                 the weights are not of the same run"
            ),
        ));
    }
    Ok(())
}

impl LoadedRun {
    fn eval_batch_size(&self) -> usize {
        self.config.train.eval_batch_size
    }

    pub fn rating_scale(&self) -> (f32, f32) {
        (self.config.rating_scale[0], self.config.rating_scale[1])
    }

    /// Predicted ratings of `(users[k], items[k])` (dense indices) on the rating scale (mapped
    /// back through the run's normalisation), unclamped.
    pub fn predict(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        let mut pred = with_model!(&self.model, F, m => predict(m, users, items, self.eval_batch_size(), &self.device));
        denormalize(&self.config.normalizer, &mut pred);
        pred
    }

    /// Rating metrics on `data`, predictions clamped to the rating scale.
    pub fn evaluate(&self, data: &Interactions) -> RatingMetrics {
        with_model!(&self.model, F, m => evaluate(
            m,
            data,
            self.eval_batch_size(),
            Some(self.rating_scale()),
            &self.config.normalizer,
            &self.device,
        ))
    }

    /// A score as shown to users: for a rating run the predicted rating (mapped back through the
    /// run's normalisation and clamped to the rating scale, as predictions are); for an
    /// implicit-feedback run the ranking score itself.
    pub fn shown_score(&self, score: f32) -> f32 {
        if self.config.task.implicit().is_some() {
            return score;
        }
        let (lo, hi) = self.rating_scale();
        self.config.normalizer.inverse(score).clamp(lo, hi)
    }

    /// The hidden-ratings check (the AutoRec paper's and notebook's): hides `n_hide` ratings of
    /// `part` (chosen with `seed`), lets the model read what it reads at prediction time from
    /// `context` and the rest of `part` (models that predict from ratings, see
    /// [`Family::reading`]; a model of weights alone reads nothing), and scores its predictions
    /// of the hidden ratings, clamped to the rating scale. `context` and `part` hold ratings on
    /// the rating scale, in the run's id space.
    pub fn hidden_ratings(
        &self,
        context: &[&Interactions],
        part: &Interactions,
        n_hide: usize,
        seed: u64,
    ) -> Result<RatingMetrics> {
        if part.is_empty() {
            return Err(TrainError::Config(
                "the hidden-ratings check needs ratings to hide: the part is empty".into(),
            ));
        }
        if n_hide == 0 {
            return Err(TrainError::Config("--hide must be at least 1".into()));
        }
        let (hidden, kept) = hidden_split(part, n_hide, seed);
        let mut read: Vec<&Interactions> = context.to_vec();
        read.push(&kept);
        let read = Interactions::concat(&read);
        let reads = self.config.normalizer.applied(&read);
        let model = self.model.reading(&reads);
        let mut pred = with_model!(&model, F, m => predict(
            m,
            &hidden.users,
            &hidden.items,
            self.eval_batch_size(),
            &self.device,
        ));
        denormalize(&self.config.normalizer, &mut pred);
        Ok(RatingMetrics::compute(
            &pred,
            &hidden.ratings,
            Some(self.rating_scale()),
        ))
    }

    /// Scores of the pairs `(users[k], items[k])` ([`Scorer::score`](recsys_models::Scorer)),
    /// in batches of the run's evaluation batch size.
    pub fn score(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        assert_eq!(users.len(), items.len(), "users and items differ in length");
        let per = self.eval_batch_size().max(1);
        let mut out = Vec::with_capacity(users.len());
        for (u, i) in users.chunks(per).zip(items.chunks(per)) {
            with_model!(&self.model, F, m => out.extend(
                m.score(index_tensor(u, &self.device), index_tensor(i, &self.device))
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .expect("float scores"),
            ));
        }
        out
    }

    /// Scores of every item for each user: row-major `[users.len(), n_items]`.
    pub fn score_all(&self, users: &[u32]) -> Vec<f32> {
        with_model!(&self.model, F, m => score_all(m, users, &self.device))
    }

    pub fn n_items(&self) -> usize {
        with_model!(&self.model, F, m => m.n_items())
    }

    /// Each of `users`' best `k` items, selected on the device, skipping `exclude[r]` for row
    /// `r` when given (see [`device_top_k`]).
    pub fn top_k(
        &self,
        users: &[u32],
        k: usize,
        exclude: Option<&[&[u32]]>,
    ) -> Vec<Vec<(u32, f32)>> {
        with_model!(&self.model, F, m => device_top_k(m, users, k, exclude, &self.device))
    }

    /// Whether [`LoadedRun::top_k_for_history`] answers: a run on ratings of a family that reads
    /// a user's ratings as its input row ([`Family::folds_in_rows`]). An implicit-feedback run's
    /// rows hold positives, which a history of ratings is not.
    pub fn folds_in_rows(&self) -> bool {
        self.config.model.folds_in_rows() && self.config.task.kind() == crate::TaskKind::Rating
    }

    /// The best `k` items, skipping `exclude`, for a user the model was not trained on, given by
    /// `history` (dense items and ratings on the run's scale), when the run folds users in from
    /// their rows ([`LoadedRun::folds_in_rows`]): the history, normalised as the training ratings
    /// were, is the user's row the model reads; no retraining. `None` for other runs.
    pub fn top_k_for_history(
        &self,
        history: &[(u32, f32)],
        k: usize,
        exclude: &[u32],
    ) -> Option<Vec<(u32, f32)>> {
        if !self.folds_in_rows() {
            return None;
        }
        let (n_users, n_items) = (self.ids.n_users().max(1), self.ids.n_items());
        let known: Vec<&(u32, f32)> = history
            .iter()
            .filter(|(i, _)| (*i as usize) < n_items)
            .collect();
        // The history as the ratings of user 0; the other rows stay empty and are not scored.
        let row = Interactions::new(
            vec![0; known.len()],
            known.iter().map(|h| h.0).collect(),
            known.iter().map(|h| h.1).collect(),
            None,
            n_users,
            n_items,
        )
        .ok()?;
        let model = self
            .model
            .reading_user_rows(&self.config.normalizer.applied(&row));
        let skip: [&[u32]; 1] = [exclude];
        let mut top =
            with_model!(&model, F, m => device_top_k(m, &[0], k, Some(&skip), &self.device));
        top.pop()
    }

    /// The dense index of the out-of-vocabulary user row (one past the last user), when the model
    /// keeps one (a two-tower trained with `oov`).
    pub fn oov_user(&self) -> Option<u32> {
        with_family!(&self.config.model, F, c => c.oov_user())
    }

    /// The model as a [`Retriever`], when its scores factorise into user and item vectors.
    pub fn retriever(&self) -> Option<&dyn Retriever> {
        self.model.retriever()
    }

    /// Ranking metrics under `task`.
    pub fn rank(&self, task: &RankingTask) -> RankingMetrics {
        with_model!(&self.model, F, m => evaluate_ranking(m, task, &self.device))
    }
}

/// `n_hide` ratings of `part` chosen with `seed` (all of them when it has fewer), and the rest:
/// the parts of [`LoadedRun::hidden_ratings`].
pub fn hidden_split(part: &Interactions, n_hide: usize, seed: u64) -> (Interactions, Interactions) {
    let order = epoch_order(part.len(), seed, 0);
    let (hidden, kept) = order.split_at(n_hide.min(part.len()));
    (part.select(hidden), part.select(kept))
}

fn score_all<M: RatingModel>(model: &M, users: &[u32], device: &Device) -> Vec<f32> {
    if users.is_empty() {
        return Vec::new();
    }
    let per = rows_per_block(model.n_items(), SCORE_ALL);
    let mut out = Vec::with_capacity(users.len() * model.n_items());
    for chunk in users.chunks(per) {
        out.extend(
            model
                .score_all(index_tensor(chunk, device))
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float scores"),
        );
    }
    out
}
