//! `recsys tune`: a hyper-parameter search over the flags and config keys of `recsys train`.
//! Each trial is a run directory under the study folder, scored on the validation part only;
//! the best configuration is written as a `--config` file, refit on training and validation
//! together, and only that run is scored on the test part.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recsys_train::tune::{
    MedianPruner, Params, Sampler, SamplerKind, Space, Study, StudySettings, TrialRecord,
    TrialState, get_path,
};
use recsys_train::{
    ConfigFile, EpochHook, EpochVerdict, Metric, RunConfig, Task, TrainError, metric_value, setup,
    train_run, train_run_observed,
};
use serde_json::json;
use toml::{Table, Value};

use crate::prep::{Prepared, prepare};
use crate::train_cmd::{TrainArgs, score};

#[derive(Args)]
pub struct TuneArgs {
    /// Every flag of `recsys train` (fixed for all trials); `--out` is the study folder,
    /// `--metric` the validation metric to optimise, `--seed` seeds the split, the models and the
    /// sampler.
    #[command(flatten)]
    pub train: TrainArgs,
    /// A search space file: `key = { range = [low, high] }`, `{ log = [low, high] }` or
    /// `{ choice = [a, b] }`; keys are config keys (`train.optimizer.lr`, `model.l2`) or their
    /// last part (`lr`, `l2`). Integer bounds give integers.
    #[arg(long)]
    pub space: Option<PathBuf>,
    /// A search space entry, KEY=range:LOW:HIGH, KEY=log:LOW:HIGH or KEY=choice:A,B,C
    /// (repeatable; with or without --space).
    #[arg(long = "param", value_name = "KEY=DOMAIN")]
    pub params: Vec<String>,
    /// random, or tpe (tree-structured Parzen estimators after --startup-trials random ones).
    #[arg(long, value_enum, default_value_t = SamplerKind::Tpe)]
    pub sampler: SamplerKind,
    /// Trials in the study in all (a resumed study runs only the missing ones). Default 20
    /// unless --time is given.
    #[arg(long)]
    pub trials: Option<usize>,
    /// Start no trial after this much time, e.g. 900, 90s, 15m, 1h.
    #[arg(long, value_parser = duration)]
    pub time: Option<Duration>,
    /// Random trials before TPE models the results.
    #[arg(long, default_value_t = 10)]
    pub startup_trials: usize,
    /// Train every trial to its end (no median pruning).
    #[arg(long)]
    pub no_prune: bool,
    /// Epochs before a trial can be pruned.
    #[arg(long, default_value_t = 3)]
    pub prune_warmup: usize,
    /// Finished trials before pruning starts.
    #[arg(long, default_value_t = 5)]
    pub prune_startup: usize,
}

/// A mistake in the study's input (space, metric, settings of a resumed study): `main` exits
/// with code 2 and nothing was started.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    BadInput(e.to_string()).into()
}

/// `900`, `90s`, `15m`, `1h`.
fn duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 900, 90s, 15m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?}: the time must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Everything a trial needs, checked before the study starts.
struct Plan {
    space: Space,
    /// The study's `--config` file, or an empty table.
    base_file: Table,
    /// Names the trials' in-memory config files in messages.
    space_name: PathBuf,
    settings: StudySettings,
}

impl TuneArgs {
    /// The search space, the base configuration and the metric, all checked: every error here
    /// is a [`BadInput`].
    fn plan(&self) -> Result<Plan> {
        let t = &self.train;
        if t.resume.is_some() {
            return Err(bad(
                "--resume does not apply to recsys tune (rerun the same \
                            command to resume a study)",
            ));
        }
        if self.trials == Some(0) {
            return Err(bad("--trials must be at least 1"));
        }
        let mut space = match &self.space {
            Some(path) => Space::read(path).map_err(bad)?,
            None => Space::default(),
        };
        for p in &self.params {
            space.add_arg(p).map_err(bad)?;
        }
        if space.params.is_empty() {
            return Err(bad(
                "no search space: give --space FILE or --param KEY=range:LOW:HIGH",
            ));
        }
        let file = t
            .config
            .as_deref()
            .map(ConfigFile::read)
            .transpose()
            .map_err(bad)?;
        let base_file = file.as_ref().map(|f| f.table().clone()).unwrap_or_default();
        let config = setup::draft(t.model(), file.as_ref(), self.trial_overrides()).map_err(bad)?;
        check_metric(&config)?;
        let table = setup::to_table(&config).map_err(bad)?;
        space.resolve(&table).map_err(bad)?;
        let space_name = self
            .space
            .clone()
            .unwrap_or_else(|| PathBuf::from("the search space"));
        let plan = Plan {
            settings: StudySettings {
                model: t.model().to_string(),
                metric: config.train.metric,
                sampler: self.sampler,
                seed: config.train.seed,
                startup_trials: self.startup_trials,
                pruner: (!self.no_prune).then_some(MedianPruner {
                    startup_trials: self.prune_startup,
                    warmup_epochs: self.prune_warmup,
                }),
                space: space.to_toml(),
                base: table,
            },
            space,
            base_file,
            space_name,
        };
        // Every bound and choice must make a valid configuration that the flags do not
        // override.
        for p in &plan.space.params {
            for v in p.domain.extremes() {
                let mut params: Params = plan
                    .space
                    .params
                    .iter()
                    .map(|q| (q.key.clone(), q.domain.extremes()[0].clone()))
                    .collect();
                params.insert(p.key.clone(), v.clone());
                let config = self.trial_config(&plan, &params).map_err(bad)?;
                config.train.validate().map_err(bad)?;
                let got = setup::to_table(&config).map_err(bad)?;
                let set = get_path(&got, &p.path);
                if !set.is_some_and(|g| same_value(g, &v)) {
                    return Err(bad(format!(
                        "search space key {} ({}) is fixed to {} by a command-line flag; \
                         leave the flag out to search it",
                        p.key,
                        p.path.join("."),
                        set.map_or("nothing".to_string(), |g| g.to_string())
                    )));
                }
            }
        }
        Ok(plan)
    }

    /// The flags as overrides, without `--refit`: trials score their selection on validation.
    fn trial_overrides(&self) -> recsys_train::Overrides {
        let mut o = self.train.overrides();
        o.refit = Some(false);
        o
    }

    /// A trial's configuration (before sizing): `params` over the study's config file, then the
    /// flags.
    fn trial_config(&self, plan: &Plan, params: &Params) -> recsys_train::Result<RunConfig> {
        let table = plan.space.config_table(&plan.base_file, params);
        let file = ConfigFile::from_table(&plan.space_name, table);
        setup::draft(self.train.model(), Some(&file), self.trial_overrides())
    }
}

/// The study's metric must be one the task reports during validation.
fn check_metric(config: &RunConfig) -> Result<()> {
    let metric = config.train.metric;
    match &config.task {
        Task::Rating if metric.is_ranking() => Err(bad(format!(
            "--metric {metric}: a rating task reports rmse, mae, mse, mape and r2 on its \
             validation part"
        ))),
        Task::Implicit(_) if !metric.is_ranking() => Err(bad(format!(
            "--metric {metric}: an implicit task validates by ranking (e.g. hr@10, ndcg@10)"
        ))),
        Task::Implicit(t) => match metric {
            Metric::Rank(_, k) if !t.ks.contains(&k) => Err(bad(format!(
                "--metric {metric}: the task reports its ranking at K = {:?} only",
                t.ks
            ))),
            _ => Ok(()),
        },
        Task::Rating => Ok(()),
    }
}

/// Whether a configuration value equals the value a trial set (numbers within f32 rounding).
fn same_value(got: &Value, set: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (num(got), num(set)) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-30),
        _ => got == set,
    }
}

pub fn tune(args: TuneArgs) -> Result<()> {
    let started = Instant::now();
    let plan = args.plan()?;
    let t = &args.train;
    let out = t.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("tune-{}-{stamp}", t.model()))
    });
    let prep = prepare(&t.source, &t.split, plan.settings.seed)?;
    if prep.valid.is_empty() {
        return Err(bad(
            "recsys tune scores trials on a validation part: give --valid a non-zero size",
        ));
    }
    let mut study = match Study::open(&out, plan.settings.clone()) {
        Ok(s) => s,
        Err(e @ TrainError::Format { .. }) => return Err(bad(e)),
        Err(e) => return Err(e.into()),
    };
    let budget = match (args.trials, args.time) {
        (Some(n), _) => Some(n),
        (None, None) => Some(20),
        (None, Some(_)) => None,
    };
    let sampler = Sampler {
        kind: args.sampler,
        seed: plan.settings.seed,
        startup_trials: args.startup_trials,
    };
    let metric = plan.settings.metric;
    let quiet = t.quiet();
    let bar = progress(quiet, budget, study.next_trial());
    let resumed = study.next_trial();
    if resumed > 0 && !quiet {
        eprintln!(
            "resuming {}: {resumed} trials already finished",
            out.display()
        );
    }
    let mut ran = 0;
    while budget.is_none_or(|n| study.next_trial() < n)
        && args.time.is_none_or(|limit| started.elapsed() < limit)
    {
        let record = run_trial(&args, &plan, &study, &sampler, &prep)?;
        ran += 1;
        study.record(record)?;
        let r = study.records.last().expect("just recorded");
        let best = study
            .best()
            .map(|b| {
                format!(
                    "best {metric} {:.4} (trial {})",
                    b.value.unwrap_or(f64::NAN),
                    b.trial
                )
            })
            .unwrap_or_else(|| "no complete trial yet".into());
        match &bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(best);
            }
            None if !quiet => eprintln!(
                "trial {}: {} {metric} {}  ({:.1}s)  {best}",
                r.trial,
                state_name(r.state),
                r.value.map_or("-".into(), |v| format!("{v:.4}")),
                r.seconds
            ),
            None => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let Some(best) = study.best().cloned() else {
        bail!(
            "no trial of {} completed (see the errors in {})",
            out.display(),
            out.join(Study::LOG).display()
        );
    };
    let best_toml = out.join("best.toml");
    write_best(&args, &plan, &best, &study, &best_toml)?;

    // The refit of the best configuration, and its test score: the only use of the test part.
    let file = ConfigFile::read(&best_toml)?;
    let mut config = setup::draft(t.model(), Some(&file), t.overrides())?;
    config.train.refit = true;
    let ds = &prep.dataset;
    prep.size(&mut config)?;
    let best_dir = out.join("best");
    if best_dir.exists() {
        std::fs::remove_dir_all(&best_dir)
            .with_context(|| format!("removing {}", best_dir.display()))?;
    }
    if !quiet {
        eprintln!("refit of trial {} into {}", best.trial, best_dir.display());
    }
    train_run(
        &best_dir,
        &config,
        &ds.ids,
        &prep.train,
        Some(&prep.valid),
        quiet,
    )?;
    let (_, part, metrics) = score(&best_dir, &prep)?;
    let count = |s| study.records.iter().filter(|r| r.state == s).count();
    if t.json {
        println!(
            "{}",
            json!({
                "study": out.display().to_string(),
                "trials": study.records.len(),
                "new_trials": ran,
                "complete": count(TrialState::Complete),
                "pruned": count(TrialState::Pruned),
                "failed": count(TrialState::Failed),
                "metric": metric.to_string(),
                "best_trial": best.trial,
                "best_value": best.value,
                "best_params": best.params,
                "best_config": best_toml.display().to_string(),
                "refit_run": best_dir.display().to_string(),
                "part": part.name(),
                "metrics": metrics.json(),
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    } else {
        println!(
            "{} trials ({ran} new): {} complete, {} pruned, {} failed, in {:.0}s",
            study.records.len(),
            count(TrialState::Complete),
            count(TrialState::Pruned),
            count(TrialState::Failed),
            started.elapsed().as_secs_f64()
        );
        println!(
            "best trial {}: validation {metric} {:.4} at epoch {}",
            best.trial,
            best.value.unwrap_or(f64::NAN),
            best.best_epoch.unwrap_or(0)
        );
        for (k, v) in &best.params {
            println!("  {k} = {v}");
        }
        println!("best configuration: {}", best_toml.display());
        println!(
            "refit on the training and validation parts ({}):",
            best_dir.display()
        );
        metrics.print(part.name());
    }
    Ok(())
}

fn state_name(s: TrialState) -> &'static str {
    match s {
        TrialState::Complete => "complete",
        TrialState::Pruned => "pruned",
        TrialState::Failed => "failed",
    }
}

/// Trains the study's next trial into its run directory (a directory left by an interrupted
/// trial is removed first) and returns its record.
fn run_trial(
    args: &TuneArgs,
    plan: &Plan,
    study: &Study,
    sampler: &Sampler,
    prep: &Prepared,
) -> Result<TrialRecord> {
    let started = Instant::now();
    let trial = study.next_trial();
    let params = sampler.sample(&plan.space, trial, &study.history());
    let mut config = args.trial_config(plan, &params)?;
    let ds = &prep.dataset;
    prep.size(&mut config)?;
    let dir = study.trial_dir(trial);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let settings = study.settings.clone();
    let metric = settings.metric;
    let pruned = Arc::new(AtomicBool::new(false));
    let hook = study.settings.pruner.map(|pruner| {
        let finished = study.curves();
        let pruned = pruned.clone();
        let settings = settings.clone();
        EpochHook::new(move |history| {
            let curve: Vec<f64> = history
                .iter()
                .map(|r| {
                    metric_value(metric, r.valid.as_ref(), r.ranking.as_ref())
                        .map_or(f64::INFINITY, |v| settings.oriented(v))
                })
                .collect();
            if pruner.should_prune(&curve, &finished) {
                pruned.store(true, Ordering::Relaxed);
                EpochVerdict::Stop
            } else {
                EpochVerdict::Continue
            }
        })
    });
    let result = train_run_observed(
        &dir,
        &config,
        &ds.ids,
        &prep.train,
        Some(&prep.valid),
        true,
        hook,
    );
    let seconds = started.elapsed().as_secs_f64();
    Ok(match result {
        Ok(summary) => TrialRecord {
            trial,
            state: if pruned.load(Ordering::Relaxed) {
                TrialState::Pruned
            } else {
                TrialState::Complete
            },
            value: metric_value(
                metric,
                summary.best_valid.as_ref(),
                summary.best_ranking.as_ref(),
            ),
            best_epoch: Some(summary.best_epoch),
            curve: summary
                .history
                .iter()
                .filter_map(|r| metric_value(metric, r.valid.as_ref(), r.ranking.as_ref()))
                .collect(),
            params,
            seconds,
            error: None,
        },
        // A configuration that cannot train is a result of the search, not the end of it.
        Err(
            e @ (TrainError::NonFiniteLoss { .. } | TrainError::Model(_) | TrainError::Config(_)),
        ) => TrialRecord {
            trial,
            state: TrialState::Failed,
            params,
            value: None,
            best_epoch: None,
            curve: Vec::new(),
            seconds,
            error: Some(e.to_string()),
        },
        Err(e) => return Err(e.into()),
    })
}

/// `best.toml`: the best trial's whole configuration (less the data, given on the command line),
/// refit on, under a header with the command that found it.
fn write_best(
    args: &TuneArgs,
    plan: &Plan,
    best: &TrialRecord,
    study: &Study,
    path: &Path,
) -> Result<()> {
    let mut config = args.trial_config(plan, &best.params)?;
    config.train.refit = true;
    let mut table = setup::to_table(&config)?;
    table.remove("data");
    let command: Vec<String> = std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect();
    let header = format!(
        "# The best of {} trials: validation {} {:.4} (trial {}).\n# Found by: recsys {}\n\
         # Use: recsys train --model {} --config best.toml with the same data and split flags\n\
         # (refit on: trained again on the training and validation parts).\n",
        study.records.len(),
        plan.settings.metric,
        best.value.unwrap_or(f64::NAN),
        best.trial,
        command
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        plan.settings.model,
    );
    let text = header + &toml::to_string(&table)?;
    recsys_data::io::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// The study's progress bar (on a terminal only): trials done of the budget, best so far.
fn progress(quiet: bool, budget: Option<usize>, done: usize) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match budget {
        Some(n) => ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if budget.is_some() {
        "trial {pos}/{len} [{bar:30}] {msg} ({elapsed}<{eta})"
    } else {
        "trial {pos} {spinner} {msg} ({elapsed})"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_position(done as u64);
    bar.enable_steady_tick(Duration::from_millis(500));
    Some(bar)
}
