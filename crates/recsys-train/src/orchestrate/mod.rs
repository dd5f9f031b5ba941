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
pub use crate::run_dir::SELECTION_DIR;
use crate::run_dir::{Checkpoint, DirState, MANIFEST_FILE, Manifest, RunDir, check_same_ids};
use crate::setup::{Overrides, resume_config};
use crate::task::{ImplicitTask, Protocol, Task};
use crate::trainer::{EpochHook, Trainer};

/// Trains `config.model` on `train` (validating on `valid`) into the run directory `dir`:
/// writes `config.toml`, `idmap.json`, a checkpoint per epoch published by `manifest.json`
/// (weights, optimiser state, `metrics.jsonl`, the best epoch), `loss.svg`, `<metric>.svg` (and
/// `train-rows.bin` for models that read their training rows).
///
/// `dir` must be missing, empty, or a run: the files of a run there are removed first (once
/// the settings are checked), so nothing of it mixes with the new one; a folder holding other
/// files is refused.
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
    train_run_observed(dir, config, ids, train, valid, quiet, None)
}

/// [`train_run`] with `hook` called after every epoch of the run that validates (see
/// [`Trainer::on_epoch`](crate::Trainer::on_epoch)): `recsys tune` reads the validation curve
/// through it and stops a trial that falls behind.
pub fn train_run_observed(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
    hook: Option<EpochHook>,
) -> Result<TrainSummary> {
    let no_valid = valid.is_none_or(|v| v.is_empty());
    if !config.train.refit || (no_valid && config.train.refit_by_default) {
        let mut plain = config.clone();
        plain.train.refit = false;
        return train_into(dir, &plain, ids, train, valid, quiet, None, true, hook);
    }
    let Some(valid) = valid.filter(|v| !v.is_empty()) else {
        return Err(TrainError::Config(
            "refit needs a validation part (it picks the number of epochs)".into(),
        ));
    };
    config.train.validate()?;
    config.model.check_task(&config.task)?;
    let was_missing = matches!(RunDir::probe(dir)?, DirState::Missing);
    RunDir::create_fresh(dir)?;
    let mut select = config.clone();
    select.train.refit = false;
    for run in select.model.source_runs_mut() {
        let selection = run.join(SELECTION_DIR);
        if selection.is_dir() {
            *run = selection;
        }
    }
    let selection = dir.join(SELECTION_DIR);
    let chosen = train_into(
        &selection,
        &select,
        ids,
        train,
        Some(valid),
        quiet,
        None,
        true,
        hook,
    )
    .inspect_err(|_| {
        // A selection run that committed no epoch (a configuration the data refuses) leaves
        // no folder behind that it created; one that committed epochs is kept.
        if was_missing && !selection.join(MANIFEST_FILE).exists() {
            let _ = std::fs::remove_dir_all(dir);
        }
    })?;
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
        false,
        None,
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

/// One training run into `dir`, stopping after epoch `stop_after` when given, calling `hook`
/// after every epoch; with `fresh`, the files of a run already in `dir` are removed first
/// ([`RunDir::create_fresh`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_into(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
    stop_after: Option<usize>,
    fresh: bool,
    hook: Option<EpochHook>,
) -> Result<TrainSummary> {
    config.train.validate()?;
    config.model.check_task(&config.task)?;
    let device = device(config.backend, config.device_index)?;
    let normalized = config.normalizer.applied(train);
    let train = &*normalized;
    with_family!(&config.model, F, c => {
        let model = c.build(ids, &device)?;
        let (trainer, valid, implicit) = plan(config, train, valid, quiet)?;
        let run = if fresh {
            RunDir::create_fresh(dir)?
        } else {
            RunDir::create(dir)?
        };
        run.write_config(config)?;
        run.write_idmap(ids)?;
        let fit = Fit {
            trainer: trainer.with_stop_after(stop_after).with_epoch_hook(hook),
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

/// How to continue a run (what `recsys train --resume` may say).
#[derive(Debug, Clone, Default)]
pub struct ResumeOptions {
    /// The model the caller expects (a `--model` name): it must be the run's.
    pub model: Option<String>,
    /// Epochs to train on top of those committed. `None`: the epochs the run still had planned
    /// (an interrupted run is finished as planned), or, when it trained them all or stopped
    /// early, as many again as it planned.
    pub more_epochs: Option<usize>,
    /// Settings given for the resumed session: the backend and device, loss read-back, profile
    /// and patience are honoured; any other must equal the run's (see
    /// [`resume_config`](crate::setup::resume_config)).
    pub overrides: Overrides,
    pub quiet: bool,
}

/// Continues the run in `dir` from its committed state (the last weights and optimiser state
/// its manifest names; first removing what an interrupted write left) on the same data (`ids`
/// must equal the run's id map), appending to `metrics.jsonl` and updating `config.toml`'s
/// epoch count and device. A run that committed no epoch starts again from its configuration.
pub fn resume_run(
    dir: &Path,
    options: &ResumeOptions,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
) -> Result<TrainSummary> {
    let run = RunDir::open(dir)?;
    let stored: RunConfig = run.read_config()?;
    if let Some(name) = options.model.as_deref()
        && ModelConfig::canonical(name) != Some(stored.model.name())
    {
        return Err(TrainError::Config(format!(
            "{}: cannot resume a `{}` run as `{name}`",
            dir.display(),
            stored.model.name()
        )));
    }
    if stored.train.refit {
        return Err(TrainError::Config(format!(
            "{}: a refit run cannot be resumed (its epoch count was chosen by its selection \
             run); train again with more epochs",
            dir.display()
        )));
    }
    let mut config = resume_config(&stored, options.overrides.clone())?;
    let committed = run.recover()?;
    match committed {
        Some(_) => check_same_ids(dir, &run.read_idmap()?, ids)?,
        // Training stopped before its first checkpoint, perhaps before the id map was written.
        None => run.write_idmap(ids)?,
    }
    let done = committed.as_ref().map_or(0, |m| m.epoch);
    config.train.epochs = match options.more_epochs {
        Some(n) => done + n,
        None if done < stored.train.epochs && !stopped_early(&stored, committed.as_ref()) => {
            stored.train.epochs
        }
        None => done + stored.train.epochs,
    };
    config.train.validate()?;
    config.model.check_task(&config.task)?;
    let device = device(config.backend, config.device_index)?;
    let quiet = options.quiet;
    let normalized = config.normalizer.applied(train);
    let train = &*normalized;
    with_family!(&config.model, F, c => {
        let (trainer, valid, implicit) = plan(&config, train, valid, quiet)?;
        let model = match &committed {
            Some(_) => run.load_model(c.init(&device)?, Checkpoint::Last)?,
            None => c.build(ids, &device)?,
        };
        run.write_config(&config)?;
        let fit = Fit {
            trainer,
            train,
            valid,
            implicit,
            device: &device,
            run: &run,
            resume: committed.is_some(),
        };
        c.fit(model, &fit)
    })
}

/// Whether the run of `config` with the committed state `committed` stopped because its
/// patience ran out (rather than being interrupted).
fn stopped_early(config: &RunConfig, committed: Option<&Manifest>) -> bool {
    match (config.train.patience, committed) {
        (Some(patience), Some(m)) => m
            .best
            .as_ref()
            .is_some_and(|b| m.epoch - b.epoch >= patience),
        _ => false,
    }
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
