//! The entry points the CLI calls: train a configured model into a run directory, load a run
//! back, evaluate and predict with it.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use recsys_data::{IdMap, Interactions};
use recsys_models::{Mf, MfConfig, RatingModel, Scorer};
use serde::{Deserialize, Serialize};

use crate::batch::index_tensor;
use crate::device::{BackendKind, device};
use crate::error::Result;
use crate::metrics::RatingMetrics;
use crate::run_dir::{Checkpoint, RunDir};
use crate::trainer::{EpochRecord, TrainConfig, Trainer, evaluate, predict};

/// A model family and its configuration (the `[model]` table, tagged by `family`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelConfig {
    Mf(MfConfig),
}

impl ModelConfig {
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Mf(_) => "mf",
        }
    }

    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Result<AnyModel> {
        Ok(match self {
            ModelConfig::Mf(c) => AnyModel::Mf(c.init(device)?),
        })
    }
}

/// A built model of any family.
#[derive(Debug, Clone)]
pub enum AnyModel {
    Mf(Mf),
}

/// The resolved configuration of a run, written to `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub backend: BackendKind,
    pub device_index: usize,
    /// `[min, max]` of the rating scale; predictions are clamped to it for metrics.
    pub rating_scale: [f32; 2],
    /// Free-form notes from the caller (data source, split, ...).
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// What [`train_run`] reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub best_epoch: usize,
    pub best_valid: Option<RatingMetrics>,
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// Where it ran (adapter or CPU backend name).
    pub adapter: String,
}

/// Trains `config.model` on `train` (validating on `valid`) into the run directory `dir`:
/// writes `config.toml`, `idmap.json`, `metrics.jsonl`, `model-best.bpk`, `model-last.bpk`.
pub fn train_run(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
) -> Result<TrainSummary> {
    config.train.validate()?;
    let device = device(config.backend, config.device_index)?;
    let run = RunDir::create(dir)?;
    run.write_config(config)?;
    run.write_idmap(ids)?;
    let trainer = Trainer::new(config.train.clone())
        .with_rating_scale((config.rating_scale[0], config.rating_scale[1]))
        .quiet(quiet);
    let adapter = crate::device::adapter_name(&device);
    let (best_epoch, best_valid, history, stopped_early) = match config.model.init(&device)? {
        AnyModel::Mf(m) => {
            let o = trainer.fit(m, train, valid, &device, Some(&run))?;
            (o.best_epoch, o.best_valid, o.history, o.stopped_early)
        }
    };
    Ok(TrainSummary {
        best_epoch,
        best_valid,
        history,
        stopped_early,
        adapter,
    })
}

/// A trained run loaded for inference (weights on a plain, non-autodiff device).
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub config: RunConfig,
    pub ids: IdMap,
    pub model: AnyModel,
    pub device: Device,
}

/// Loads the run in `dir` with weights `which`, on the run's own backend or `backend` if given.
pub fn load_run(
    dir: &Path,
    which: Checkpoint,
    backend: Option<(BackendKind, usize)>,
) -> Result<LoadedRun> {
    let run = RunDir::open(dir)?;
    let config: RunConfig = run.read_config()?;
    let ids = run.read_idmap()?;
    let (kind, index) = backend.unwrap_or((config.backend, config.device_index));
    let device = device(kind, index)?.without_autodiff();
    let model = match config.model.init(&device)? {
        AnyModel::Mf(m) => AnyModel::Mf(run.load_model(m, which)?),
    };
    Ok(LoadedRun {
        config,
        ids,
        model,
        device,
    })
}

impl LoadedRun {
    fn eval_batch_size(&self) -> usize {
        self.config.train.eval_batch_size
    }

    pub fn rating_scale(&self) -> (f32, f32) {
        (self.config.rating_scale[0], self.config.rating_scale[1])
    }

    /// Predicted ratings of `(users[k], items[k])` (dense indices), unclamped.
    pub fn predict(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        match &self.model {
            AnyModel::Mf(m) => predict(m, users, items, self.eval_batch_size(), &self.device),
        }
    }

    /// Rating metrics on `data`, predictions clamped to the rating scale.
    pub fn evaluate(&self, data: &Interactions) -> RatingMetrics {
        match &self.model {
            AnyModel::Mf(m) => evaluate(
                m,
                data,
                self.eval_batch_size(),
                Some(self.rating_scale()),
                &self.device,
            ),
        }
    }

    /// Scores of every item for each user: row-major `[users.len(), n_items]`.
    pub fn score_all(&self, users: &[u32]) -> Vec<f32> {
        match &self.model {
            AnyModel::Mf(m) => score_all(m, users, &self.device),
        }
    }

    pub fn n_items(&self) -> usize {
        match &self.model {
            AnyModel::Mf(m) => m.n_items(),
        }
    }
}

fn score_all<M: RatingModel>(model: &M, users: &[u32], device: &Device) -> Vec<f32> {
    if users.is_empty() {
        return Vec::new();
    }
    // Keep each block near 16M scores.
    let per = (16_000_000 / model.n_items().max(1)).max(1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::tests::{mf_config, synthetic, train_config};
    use burn::module::Module;
    use recsys_data::Vocab;
    use recsys_models::MfOutput;

    fn ids(n_users: usize, n_items: usize) -> IdMap {
        IdMap {
            users: Vocab::from_raw((0..n_users).map(|k| format!("u{k}")).collect()).unwrap(),
            items: Vocab::from_raw((0..n_items).map(|k| format!("i{k}")).collect()).unwrap(),
        }
    }

    #[test]
    fn save_then_load_gives_identical_predictions() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let device = device(BackendKind::Flex, 0).unwrap();
        let run = RunDir::create(tmp.path().join("run")).unwrap();
        let config = mf_config(&train, MfOutput::Logit);
        let model = config.init(&device).unwrap();
        let o = Trainer::new(train_config(3))
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, Some(&run))
            .unwrap();
        let plain = device.clone().without_autodiff();
        let want = predict(&o.model.valid(), &valid.users, &valid.items, 64, &plain);
        let loaded = run
            .load_model(config.init(&plain).unwrap(), Checkpoint::Best)
            .unwrap();
        let got = predict(&loaded, &valid.users, &valid.items, 64, &plain);
        assert_eq!(want, got);
        let read = run.read_metrics().unwrap();
        assert_eq!(read.len(), o.history.len());
        for (a, b) in read.iter().zip(&o.history) {
            assert_eq!(a.epoch, b.epoch);
            assert!((a.train_loss - b.train_loss).abs() < 1e-12);
        }
    }

    #[test]
    fn train_run_then_load_run() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mf-run");
        let config = RunConfig {
            model: ModelConfig::Mf(mf_config(&train, MfOutput::Linear)),
            train: train_config(4),
            backend: BackendKind::Flex,
            device_index: 0,
            rating_scale: [1.0, 5.0],
            data: [("source".to_string(), "synthetic".to_string())].into(),
        };
        let summary = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
        for f in [
            "config.toml",
            "idmap.json",
            "metrics.jsonl",
            "model-best.bpk",
            "model-last.bpk",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let loaded = load_run(&dir, Checkpoint::Best, None).unwrap();
        assert_eq!(loaded.ids.user("u3").unwrap(), 3);
        assert_eq!(loaded.evaluate(&valid), summary.best_valid.unwrap());
        let last = load_run(&dir, Checkpoint::Last, Some((BackendKind::Ndarray, 0))).unwrap();
        let m = last.evaluate(&valid);
        let want = summary.history.last().unwrap().valid.unwrap();
        assert!(
            (m.rmse - want.rmse).abs() < 1e-4,
            "{} vs {}",
            m.rmse,
            want.rmse
        );
        let scores = loaded.score_all(&[0, 5]);
        assert_eq!(scores.len(), 2 * loaded.n_items());
        let pairs = loaded.predict(&[5], &[7]);
        assert!((scores[20 + 7] - pairs[0]).abs() < 1e-5);
        let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(text.contains("family = \"mf\""), "{text}");
    }
}
