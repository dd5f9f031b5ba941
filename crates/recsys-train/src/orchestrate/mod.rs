//! Runs of a configured model: train into a run directory (with `refit`, a selection run then a
//! refit), and resume a run. Everything family-specific goes through [`Family`].

use std::path::Path;
use std::sync::Arc;

use recsys_data::{IdMap, Interactions, TestNegatives, UserHistory};

use crate::batch::ImplicitPairs;
use crate::config::RunConfig;
use crate::device::device;
use crate::error::{Result, TrainError};
use crate::family::{Family, Fit, ModelConfig, with_family};
use crate::ranking::RankingTask;
use crate::record::TrainSummary;
use crate::run_dir::{Checkpoint, RunDir, check_same_ids};
use crate::task::{ImplicitTask, Protocol, Task};
use crate::trainer::Trainer;

/// Where a refit run keeps the run that chose its epoch count.
pub const SELECTION_DIR: &str = "selection";

/// Trains `config.model` on `train` (validating on `valid`) into the run directory `dir`:
/// writes `config.toml`, `idmap.json`, `metrics.jsonl`, `model-best.bpk`, `model-last.bpk`,
/// `optimizer-last.bpk`, `loss.svg`, `<metric>.svg` (and `train-rows.bin` for models that read
/// their training rows).
///
/// With [`TrainConfig::refit`](crate::TrainConfig::refit), that run goes to `dir/selection`, and
/// `dir` gets a fresh model trained on `train` and `valid` together for the selection run's best
/// number of epochs (the summary reports the selection run's best epoch and validation metrics).
/// The selection run of a model that starts from other runs (NeuMF's pretrained branches, a
/// regressor's MF run) starts from their selection runs when they were refit, so no weight it
/// starts from has seen the validation part.
pub fn train_run(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
) -> Result<TrainSummary> {
    if !config.train.refit {
        return train_into(dir, config, ids, train, valid, quiet, None);
    }
    let Some(valid) = valid.filter(|v| !v.is_empty()) else {
        return Err(TrainError::Config(
            "refit needs a validation part (it picks the number of epochs)".into(),
        ));
    };
    let mut select = config.clone();
    select.train.refit = false;
    for run in select.model.source_runs_mut() {
        let selection = run.join(SELECTION_DIR);
        if selection.is_dir() {
            *run = selection;
        }
    }
    let chosen = train_into(
        &dir.join(SELECTION_DIR),
        &select,
        ids,
        train,
        Some(valid),
        quiet,
        None,
    )?;
    let both = Interactions::concat(&[train, valid]);
    if !quiet {
        eprintln!(
            "refit: {} epochs on the training and validation parts ({} pairs)",
            chosen.best_epoch,
            both.len()
        );
    }
    let refit = train_into(
        dir,
        config,
        ids,
        &both,
        None,
        quiet,
        Some(chosen.best_epoch),
    )?;
    Ok(TrainSummary {
        best_epoch: chosen.best_epoch,
        best_valid: chosen.best_valid,
        best_ranking: chosen.best_ranking,
        history: refit.history,
        stopped_early: chosen.stopped_early,
        adapter: refit.adapter,
    })
}

/// One training run into `dir`, stopping after epoch `stop_after` when given.
pub(crate) fn train_into(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
    stop_after: Option<usize>,
) -> Result<TrainSummary> {
    config.train.validate()?;
    config.model.check_task(&config.task)?;
    let device = device(config.backend, config.device_index)?;
    let normalized = config.normalizer.applied(train);
    let train = &*normalized;
    with_family!(&config.model, F, c => {
        let model = c.build(ids, &device)?;
        let (trainer, valid, implicit) = plan(config, train, valid, quiet)?;
        let run = RunDir::create(dir)?;
        run.write_config(config)?;
        run.write_idmap(ids)?;
        let fit = Fit {
            trainer: trainer.with_stop_after(stop_after),
            train,
            valid,
            implicit,
            device: &device,
            run: &run,
            resume: false,
        };
        c.fit(model, &fit)
    })
}

/// Continues the run in `dir` for `extra_epochs` more epochs from its last weights and optimiser
/// state, on the same data (`ids` must equal the run's id map), appending to `metrics.jsonl` and
/// updating `config.toml`'s epoch count. With `model`, the run must be of that model's family.
pub fn resume_run(
    dir: &Path,
    model: Option<&str>,
    extra_epochs: usize,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
) -> Result<TrainSummary> {
    let run = RunDir::open(dir)?;
    let mut config: RunConfig = run.read_config()?;
    if let Some(name) = model
        && ModelConfig::family_of(name) != Some(config.model.family())
    {
        return Err(TrainError::Config(format!(
            "{}: cannot resume a `{}` run as `{name}`",
            dir.display(),
            config.model.name()
        )));
    }
    if config.train.refit {
        return Err(TrainError::Config(format!(
            "{}: a refit run cannot be resumed (its epoch count was chosen by its selection \
             run); train again with more epochs",
            dir.display()
        )));
    }
    check_same_ids(dir, &run.read_idmap()?, ids)?;
    let done = run.read_metrics()?.len();
    config.train.epochs = done + extra_epochs;
    config.train.validate()?;
    config.model.check_task(&config.task)?;
    let device = device(config.backend, config.device_index)?;
    let normalized = config.normalizer.applied(train);
    let train = &*normalized;
    with_family!(&config.model, F, c => {
        let model = run.load_model(c.init(&device)?, Checkpoint::Last)?;
        let (trainer, valid, implicit) = plan(&config, train, valid, quiet)?;
        run.write_config(&config)?;
        let fit = Fit {
            trainer,
            train,
            valid,
            implicit,
            device: &device,
            run: &run,
            resume: true,
        };
        c.fit(model, &fit)
    })
}

/// The trainer of `config` (with its rating or ranking validation), the rating validation part
/// (none for implicit runs, which validate by ranking) and the implicit positives and negatives;
/// every error of the task's settings surfaces here, before a run directory is written.
fn plan<'a>(
    config: &RunConfig,
    train: &Interactions,
    valid: Option<&'a Interactions>,
    quiet: bool,
) -> Result<(Trainer, Option<&'a Interactions>, Option<ImplicitPairs>)> {
    let (ranking, implicit) = match &config.task {
        Task::Rating => (None, None),
        Task::Implicit(t) => {
            let loss = t.implicit_loss()?;
            let ranking = match valid.filter(|v| !v.is_empty()) {
                Some(v) => {
                    let known = Interactions::concat(&[train, v]);
                    Some(Arc::new(validation_ranking(
                        t,
                        v,
                        train,
                        &known,
                        config.train.seed,
                    )?))
                }
                None => None,
            };
            (
                ranking,
                Some(ImplicitPairs::new(train, loss, config.train.seed)?),
            )
        }
    };
    let trainer = Trainer::new(config.train.clone())
        .with_rating_scale((config.rating_scale[0], config.rating_scale[1]))
        .with_normalizer(config.normalizer)
        .with_ranking(ranking)
        .quiet(quiet);
    let valid = if implicit.is_some() { None } else { valid };
    Ok((trainer, valid, implicit))
}

/// The ranking of `part` by a model trained on `train`: sampled among `task.eval_negatives`
/// negatives per pair (drawn with `seed`, never an item of the user in `known`), full, or
/// factorized.
pub fn validation_ranking(
    task: &ImplicitTask,
    part: &Interactions,
    train: &Interactions,
    known: &Interactions,
    seed: u64,
) -> Result<RankingTask> {
    match task.protocol {
        Protocol::Sampled => {
            let seen = UserHistory::new(known);
            let cases = TestNegatives::sample(part, &seen, task.eval_negatives, seed)?;
            RankingTask::sampled(cases, &task.ks)
        }
        Protocol::Full => RankingTask::full(part, train, &task.ks),
        Protocol::Factorized => RankingTask::factorized(part, &task.ks),
    }
}

#[cfg(test)]
mod tests;
