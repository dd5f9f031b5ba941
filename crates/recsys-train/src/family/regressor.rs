//! The dense regressor ([`Regressor`]) on the frozen embeddings of a trained MF run (the ML-20M
//! notebook). Its `[model]` table names the MF run; training reads that run's best tables.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use recsys_data::IdMap;
use recsys_models::{MfConfig, Regressor, RegressorConfig};
use serde::{Deserialize, Serialize};

use super::{DataShape, Family, Fit, ModelConfig, ModelOverrides, rating_only, take, take_f32};
use crate::error::{Result, TrainError};
use crate::record::TrainSummary;
use crate::run_dir::{Checkpoint, RunDir, check_same_ids};
use crate::task::{Task, TaskKind};

/// The `[model]` table of a regressor: the MF run whose embeddings it reads, and its own settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegressorSetup {
    /// Run directory of a trained `mf` model on the same data (same id map).
    pub mf_run: PathBuf,
    pub regressor: RegressorConfig,
}

/// This family's `[model]` table (the registry names it `regressor::Config`).
pub type Config = RegressorSetup;

impl Family for RegressorSetup {
    type Model = Regressor;
    const MODELS: &'static [&'static str] = &["regressor"];

    fn named(_name: &str, _task: TaskKind, o: &mut ModelOverrides) -> Result<Self> {
        let Some(mf_run) = o.embeddings.take() else {
            return Err(TrainError::Config(
                "--model regressor needs --embeddings <an mf run directory>".into(),
            ));
        };
        let regressor = regressor_config_for_mf_run(&mf_run)?;
        Ok(RegressorSetup { mf_run, regressor })
    }

    fn name(&self) -> &'static str {
        "regressor"
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        rating_only("regressor", task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, _task: &Task) -> Result<()> {
        let r = &mut self.regressor;
        take(&mut o.hidden, &mut r.hidden);
        take(&mut o.dropout, &mut r.dropout);
        take_f32(&mut o.l2, &mut r.l2);
        Ok(())
    }

    fn set_seed(&mut self, seed: u64) {
        self.regressor.seed = seed;
    }

    fn size(&mut self, data: &DataShape) {
        self.regressor.n_users = data.n_users;
        self.regressor.n_items = data.n_items;
        self.regressor.rating_max = data.scale.1;
    }

    fn source_runs_mut(&mut self) -> Vec<&mut PathBuf> {
        vec![&mut self.mf_run]
    }

    fn init(&self, device: &Device) -> Result<Regressor> {
        Ok(self.regressor.init(device)?)
    }

    fn build(&self, ids: &IdMap, device: &Device) -> Result<Regressor> {
        regressor_from_mf_run(&self.mf_run, ids, &self.regressor, device)
    }

    fn fit(&self, model: Regressor, fit: &Fit<'_>) -> Result<TrainSummary> {
        fit.pairs(model)
    }

    fn vectors(model: &Regressor, _n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        Some((model.user_embedding.table(), model.item_embedding.table()))
    }
}

/// A [`RegressorConfig`] sized for the MF run in `mf_dir` (its users, items and embedding width),
/// other settings at their defaults.
pub fn regressor_config_for_mf_run(mf_dir: &Path) -> Result<RegressorConfig> {
    let mf = read_mf_config(mf_dir)?;
    Ok(RegressorConfig::new(
        mf.n_users,
        mf.n_items,
        mf.embedding_dim,
    ))
}

fn read_mf_config(mf_dir: &Path) -> Result<MfConfig> {
    match super::read_model(mf_dir)? {
        ModelConfig::Mf(c) => Ok(c),
        other => Err(TrainError::Config(format!(
            "{}: a regressor needs an `mf` run, this is a `{}` run",
            mf_dir.display(),
            other.family()
        ))),
    }
}

/// A [`Regressor`] on `device` reading the (frozen) user and item embeddings of the best weights of
/// the MF run in `mf_dir`. The run's id map must equal `ids` (the data's), and its sizes `config`'s.
pub fn regressor_from_mf_run(
    mf_dir: &Path,
    ids: &IdMap,
    config: &RegressorConfig,
    device: &Device,
) -> Result<Regressor> {
    let mf_config = read_mf_config(mf_dir)?;
    let run = RunDir::open(mf_dir)?;
    check_same_ids(mf_dir, &run.read_idmap()?, ids)?;
    let plain = device.clone().without_autodiff();
    let mf = run.load_model(mf_config.init(&plain)?, Checkpoint::Best)?;
    let to_device = |t: Tensor<2>| Tensor::<2>::from_data(t.into_data(), device);
    Ok(config.init(device)?.with_embeddings(
        to_device(mf.user_embedding.table()),
        to_device(mf.item_embedding.table()),
    )?)
}
