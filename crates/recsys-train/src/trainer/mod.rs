//! The training loop: one loop for every [`RatingModel`].
//!
//! Per epoch: seeded shuffle, mini-batch steps with Burn's optimiser and learning-rate schedule,
//! the mean training loss, the validation metrics, early stopping on [`TrainConfig::metric`] with
//! [`TrainConfig::patience`], and (with a [`RunDir`]) one checkpoint per epoch: the weights, the
//! optimiser state, the line of `metrics.jsonl` and the best epoch, committed together.

mod epoch;
#[cfg(test)]
pub(crate) mod tests;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recsys_data::Interactions;
use recsys_models::RatingModel;
use serde::{Deserialize, Serialize};

use self::epoch::{OrderAhead, Steps};
use crate::batch::BatchSource;
use crate::error::{Result, TrainError};
pub use crate::eval::{evaluate, predict};
use crate::metrics::{Metric, RatingMetrics};
use crate::optim::OptimizerConfig;
use crate::ranking::{RankingMetrics, RankingTask};
pub use crate::record::{EpochRecord, PhaseSeconds, metric_value};
use crate::run_dir::{Checkpoint, RunDir};

/// Settings of a training run (the `[train]` table of `config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the shuffling and Burn's device RNG.
    pub seed: u64,
    /// Stop after this many epochs without improvement of `metric` on the validation set;
    /// `None` trains all epochs.
    pub patience: Option<usize>,
    /// The validation metric that selects the best epoch.
    pub metric: Metric,
    /// Smallest change of `metric` that counts as an improvement.
    pub min_delta: f64,
    /// Batch size of evaluation and prediction.
    pub eval_batch_size: usize,
    /// Steps between two read-backs of the training loss (1: after every step; 0: automatic,
    /// [`AUTO_READBACK_GPU`] on a GPU and 1 elsewhere). Reading back waits for the device;
    /// fewer read-backs let a GPU queue work ahead, at the cost of noticing a non-finite loss
    /// up to this many steps late (the step is still named exactly).
    pub loss_readback_steps: usize,
    /// Time each phase of a step (batch, forward, backward, optimizer, loss read-back), waiting
    /// for the device after each: `metrics.jsonl` gets a `profile` per epoch. The waits keep a
    /// GPU from queueing work ahead, so a profiled epoch is slower than a plain one.
    pub profile: bool,
    /// After training with validation, train a fresh model (same seed) on the training and
    /// validation parts together for the best epoch's number of epochs, on the same learning-rate
    /// schedule stopped there: the validation part picks the epoch count, then adds its data.
    /// The run keeps the refit model; the selection run is kept in `<run>/selection`.
    pub refit: bool,
    pub optimizer: OptimizerConfig,
    /// Set by [`draft`](crate::setup::draft) when neither a config file nor a flag gave the
    /// batch size or the learning rate of a family that scales them: [`size`](crate::setup::size)
    /// then grows both with the training part (see [`TrainConfig::scale_to`]). Not stored: the
    /// run's `config.toml` holds the values used.
    #[serde(skip)]
    pub scale_batch: bool,
    /// `refit` is the family's default rather than asked for: a run without a validation part
    /// then trains without it (an asked-for refit needs one). Not stored.
    #[serde(skip)]
    pub refit_by_default: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 256,
            seed: 42,
            patience: Some(3),
            metric: Metric::Rmse,
            min_delta: 0.0,
            eval_batch_size: 8192,
            loss_readback_steps: 0,
            profile: false,
            refit: false,
            optimizer: OptimizerConfig::default(),
            scale_batch: false,
            refit_by_default: false,
        }
    }
}

/// Training examples at which a family's default batch size and learning rate hold unscaled:
/// about ML-100K's training part, where they were chosen.
pub const BATCH_REFERENCE_EXAMPLES: f64 = 100_000.0;

impl TrainConfig {
    /// The batch size and learning rate for `n_train` training examples: larger training parts
    /// take batches larger by a power of two (the nearest to `n_train` /
    /// [`BATCH_REFERENCE_EXAMPLES`], at most 32), and the learning rate grows by that factor's
    /// square root. An epoch then takes about as many steps as at the reference size, so ML-1M
    /// (8x) and ML-20M (32x) train in minutes on a CPU rather than hours.
    pub fn scale_to(&mut self, n_train: usize) {
        let ratio = (n_train as f64 / BATCH_REFERENCE_EXAMPLES).max(1.0);
        let factor = ratio.log2().round().exp2().min(32.0);
        self.batch_size = (self.batch_size as f64 * factor) as usize;
        self.optimizer.lr *= factor.sqrt();
    }

    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err(TrainError::Config(
                "epochs, batch_size and eval_batch_size must be at least 1".into(),
            ));
        }
        if self.patience == Some(0) {
            return Err(TrainError::Config(
                "patience must be at least 1 (or absent)".into(),
            ));
        }
        self.optimizer.validate()
    }
}

/// Steps between loss read-backs on a GPU when [`TrainConfig::loss_readback_steps`] is 0: measured
/// on an H200 (MF at ML-20M shape), reading back every 64 steps instead of every step made an
/// epoch 26% shorter. On CPU backends and llvmpipe every step costs nothing extra.
pub const AUTO_READBACK_GPU: usize = 64;

/// What [`Trainer::fit`] returns.
#[derive(Debug, Clone)]
pub struct TrainOutcome<M> {
    /// The best model on the validation set, or the last one without validation data.
    pub model: M,
    /// 1-based epoch of `model`.
    pub best_epoch: usize,
    pub best_valid: Option<RatingMetrics>,
    pub best_ranking: Option<RankingMetrics>,
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
}

/// The best weights so far: model, epoch, and its validation metrics.
type Best<M> = (M, usize, Option<RatingMetrics>, Option<RankingMetrics>);

/// Where a training loop starts: fresh, or from a saved run.
struct Start<M> {
    optim: ModuleOptimizer,
    history: Vec<EpochRecord>,
    best: Option<Best<M>>,
}

/// Runs the training loop.
#[derive(Debug, Clone)]
pub struct Trainer {
    pub config: TrainConfig,
    /// Predictions are clamped to this rating scale before metrics.
    pub rating_scale: Option<(f32, f32)>,
    /// The normalisation of the training ratings: validation predictions are mapped back through
    /// it (the validation part keeps its ratings on the rating scale).
    pub normalizer: recsys_data::Normalizer,
    /// No progress output at all.
    pub quiet: bool,
    /// Validation by ranking (implicit feedback), after every epoch.
    pub ranking: Option<Arc<RankingTask>>,
    /// Stop after this epoch, with the learning-rate schedule still laid out over
    /// [`TrainConfig::epochs`] (how a refit replays the selection run's first epochs).
    pub stop_after: Option<usize>,
    /// Called after every epoch with the history so far; [`EpochVerdict::Stop`] ends the run
    /// there, as early stopping does (how `recsys tune` prunes a trial).
    pub on_epoch: Option<EpochHook>,
}

/// What an [`EpochHook`] tells the training loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochVerdict {
    Continue,
    Stop,
}

/// What an [`EpochHook`] calls.
pub type EpochFn = dyn Fn(&[EpochRecord]) -> EpochVerdict + Send + Sync;

/// A callback the training loop calls after each epoch with the history so far (the last record
/// is the epoch just trained).
#[derive(Clone)]
pub struct EpochHook(pub Arc<EpochFn>);

impl EpochHook {
    pub fn new(f: impl Fn(&[EpochRecord]) -> EpochVerdict + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for EpochHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochHook")
    }
}

impl Trainer {
    pub fn new(config: TrainConfig) -> Self {
        Self {
            config,
            rating_scale: None,
            normalizer: recsys_data::Normalizer::None,
            quiet: false,
            ranking: None,
            stop_after: None,
            on_epoch: None,
        }
    }

    /// Calls `hook` after every epoch (see [`Trainer::on_epoch`]).
    pub fn with_epoch_hook(mut self, hook: Option<EpochHook>) -> Self {
        self.on_epoch = hook;
        self
    }

    /// Stops after epoch `epoch` (see [`Trainer::stop_after`]).
    pub fn with_stop_after(mut self, epoch: Option<usize>) -> Self {
        self.stop_after = epoch;
        self
    }

    pub fn with_rating_scale(mut self, scale: (f32, f32)) -> Self {
        self.rating_scale = Some(scale);
        self
    }

    /// Validation predictions are mapped back through `normalizer` before metrics.
    pub fn with_normalizer(mut self, normalizer: recsys_data::Normalizer) -> Self {
        self.normalizer = normalizer;
        self
    }

    /// Validates by ranking `task` after every epoch (a ranking [`TrainConfig::metric`] then
    /// selects the best epoch).
    pub fn with_ranking(mut self, task: Option<Arc<RankingTask>>) -> Self {
        self.ranking = task;
        self
    }

    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Trains `model` (built on `device`, an autodiff device) on the batches of `train` (rated
    /// pairs, implicit pairs, or the rows of a [`UserHistory`](recsys_data::UserHistory) for
    /// AutoRec), validating on `valid` after every epoch (always on rated pairs, through
    /// [`RatingModel::predict`]). With `run_dir`, writes `metrics.jsonl`, the curves, the weights
    /// and the optimiser state there.
    pub fn fit<M, S>(
        &self,
        model: M,
        train: &S,
        valid: Option<&Interactions>,
        device: &Device,
        run_dir: Option<&RunDir>,
    ) -> Result<TrainOutcome<M>>
    where
        M: RatingModel,
        S: BatchSource<Batch = M::Batch>,
    {
        let start = Start {
            optim: self.config.optimizer.init()?,
            history: Vec::new(),
            best: None,
        };
        if let Some(dir) = run_dir {
            dir.reset_training()?;
        }
        self.run(model, train, valid, device, run_dir, start)
    }

    /// Continues the run in `run_dir` for `self.config.epochs` epochs in total: `model` must hold
    /// the run's last committed weights; the optimiser state, the history (`metrics.jsonl`) and
    /// the best weights are read back as the run's manifest names them, and new epochs are
    /// appended. The learning-rate schedule is replayed up to the last step.
    pub fn resume<M, S>(
        &self,
        model: M,
        train: &S,
        valid: Option<&Interactions>,
        device: &Device,
        run_dir: &RunDir,
    ) -> Result<TrainOutcome<M>>
    where
        M: RatingModel,
        S: BatchSource<Batch = M::Batch>,
    {
        let manifest = run_dir.committed()?;
        let history = run_dir.read_metrics()?;
        let done = history.last().map_or(0, |r| r.epoch);
        if done != history.len() || (!manifest.legacy && done != manifest.epoch) {
            return Err(TrainError::format(
                run_dir.metrics_path(),
                format!(
                    "{} records but the last is epoch {done} (the manifest commits epoch {})",
                    history.len(),
                    manifest.epoch
                ),
            ));
        }
        let optim = run_dir.load_optimizer(self.config.optimizer.init()?)?;
        let best = match &manifest.best {
            Some(b) if valid.is_some() || self.ranking.is_some() => {
                let Some(r) = history.iter().find(|r| r.epoch == b.epoch) else {
                    return Err(TrainError::format(
                        run_dir.manifest_path(),
                        format!("the best epoch {} has no line in metrics.jsonl", b.epoch),
                    ));
                };
                let weights = run_dir.load_model(model.clone(), Checkpoint::Best)?;
                Some((weights, r.epoch, r.valid, r.ranking.clone()))
            }
            _ => None,
        };
        self.run(
            model,
            train,
            valid,
            device,
            Some(run_dir),
            Start {
                optim,
                history,
                best,
            },
        )
    }

    fn run<M, S>(
        &self,
        mut model: M,
        train: &S,
        valid: Option<&Interactions>,
        device: &Device,
        run_dir: Option<&RunDir>,
        start: Start<M>,
    ) -> Result<TrainOutcome<M>>
    where
        M: RatingModel,
        S: BatchSource<Batch = M::Batch>,
    {
        let cfg = &self.config;
        cfg.validate()?;
        if train.is_empty() {
            return Err(TrainError::EmptyTrainingSet);
        }
        let valid = valid.filter(|v| !v.is_empty());
        let validates = valid.is_some() || self.ranking.is_some();
        self.check_metric(validates)?;
        let Start {
            optim,
            mut history,
            best,
        } = start;
        let done = history.len();
        if done >= cfg.epochs {
            return Err(TrainError::Config(format!(
                "the run has already trained {done} epochs; ask for more than that"
            )));
        }
        device.seed(cfg.seed.wrapping_add(done as u64));
        let eval_device = device.clone().without_autodiff();
        let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
        let mut sched = cfg.optimizer.scheduler(cfg.epochs, steps_per_epoch)?;
        for _ in 0..done * steps_per_epoch {
            sched.step();
        }
        let show_bar = !self.quiet && std::io::stderr().is_terminal();
        let mut selection = Selection::new(best, cfg.metric, done);
        let mut steps = Steps {
            train,
            device,
            optim,
            sched,
            orders: OrderAhead::new(train.len(), cfg.seed),
            readback_steps: match cfg.loss_readback_steps {
                0 if crate::device::is_gpu(device) => AUTO_READBACK_GPU,
                0 => 1,
                n => n,
            },
        };
        let mut stopped_early = false;

        let last = self.stop_after.map_or(cfg.epochs, |e| e.min(cfg.epochs));
        for epoch in done + 1..=last {
            let start = Instant::now();
            let bar = progress_bar(show_bar, steps_per_epoch, epoch, last);
            let sums;
            (model, sums) = steps.epoch(cfg, model, epoch, last, bar.as_ref())?;
            let train_seconds = start.elapsed().as_secs_f64();
            if let Some(bar) = &bar {
                bar.set_message(format!(
                    "loss {:.4}, validating",
                    sums.loss / sums.seen as f64
                ));
            }

            let (valid_metrics, ranking) = self.validate(&model, valid, &eval_device);
            let is_best = selection.offer(cfg, &model, epoch, valid_metrics, ranking.clone());
            let record = EpochRecord {
                epoch,
                train_loss: sums.loss / sums.seen as f64,
                train_penalty: sums.penalty / sums.seen as f64,
                valid: valid_metrics,
                ranking,
                lr: sums.lr,
                seconds: start.elapsed().as_secs_f64(),
                samples_per_s: sums.seen as f64 / train_seconds.max(1e-9),
                best: is_best && validates,
                profile: sums.profile,
            };
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !self.quiet {
                eprintln!("{}", epoch_line(&record, last, cfg.metric));
            }
            history.push(record);
            if let Some(dir) = run_dir {
                self.checkpoint(dir, &model, &steps.optim, &history, is_best && validates)?;
            }

            if self.patience_ran_out(&selection, validates, epoch, last) {
                stopped_early = true;
                break;
            }
            if let Some(hook) = &self.on_epoch
                && epoch < last
                && (hook.0)(&history) == EpochVerdict::Stop
            {
                stopped_early = true;
                break;
            }
        }

        let (model, best_epoch, best_valid, best_ranking) =
            selection.best.expect("at least one epoch ran");
        Ok(TrainOutcome {
            model,
            best_epoch,
            best_valid,
            best_ranking,
            history,
            stopped_early,
        })
    }

    /// A ranking [`TrainConfig::metric`] needs ranking validation, a rating one rating validation
    /// (when the run validates at all).
    fn check_metric(&self, validates: bool) -> Result<()> {
        let metric = self.config.metric;
        if metric.is_ranking() != self.ranking.is_some() && validates {
            return Err(TrainError::Config(format!(
                "the validation metric {} needs {} validation",
                metric,
                if metric.is_ranking() {
                    "a ranking (implicit-feedback)"
                } else {
                    "a rating"
                }
            )));
        }
        Ok(())
    }

    /// Records `model`, fitted in closed form on `train` (no gradient steps), as a run of one
    /// epoch: validates it as [`Trainer::fit`] does after an epoch, writes `metrics.jsonl` (the
    /// training loss is the fit's mean squared error on `train`, 0 for implicit feedback), the
    /// curves and the weights (best and last) to `run_dir`. Such a run has no optimiser state to
    /// resume from.
    pub fn closed_form<M: RatingModel>(
        &self,
        model: M,
        train: &Interactions,
        valid: Option<&Interactions>,
        device: &Device,
        run_dir: &RunDir,
    ) -> Result<TrainOutcome<M>> {
        let start = Instant::now();
        let valid = valid.filter(|v| !v.is_empty());
        let validates = valid.is_some() || self.ranking.is_some();
        self.check_metric(validates)?;
        let eval_device = device.clone().without_autodiff();
        let (valid_metrics, ranking) = self.validate(&model, valid, &eval_device);
        let train_loss = if self.ranking.is_some() {
            0.0
        } else {
            let pred = crate::eval::predict(
                &model.valid(),
                &train.users,
                &train.items,
                self.config.eval_batch_size,
                &eval_device,
            );
            RatingMetrics::compute(&pred, &train.ratings, None).mse
        };
        let seconds = start.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch: 1,
            train_loss,
            train_penalty: 0.0,
            valid: valid_metrics,
            ranking: ranking.clone(),
            lr: 0.0,
            seconds,
            samples_per_s: train.len() as f64 / seconds.max(1e-9),
            best: validates,
            profile: None,
        };
        if !self.quiet {
            eprintln!("{}", epoch_line(&record, 1, self.config.metric));
        }
        let history = vec![record];
        run_dir.commit_epoch(&model, None, &history, validates)?;
        run_dir.write_curves(&history, self.config.metric)?;
        Ok(TrainOutcome {
            model,
            best_epoch: 1,
            best_valid: valid_metrics,
            best_ranking: ranking,
            history,
            stopped_early: false,
        })
    }

    /// The rating metrics of `model` on `valid` and its ranking metrics under
    /// [`Trainer::ranking`], each when there is one, on the plain `device`.
    fn validate<M: RatingModel>(
        &self,
        model: &M,
        valid: Option<&Interactions>,
        device: &Device,
    ) -> (Option<RatingMetrics>, Option<RankingMetrics>) {
        let rating = valid.map(|v| {
            evaluate(
                &model.valid(),
                v,
                self.config.eval_batch_size,
                self.rating_scale,
                &self.normalizer,
                device,
            )
        });
        let ranking = self
            .ranking
            .as_ref()
            .map(|task| crate::ranking::evaluate_ranking(&model.valid(), task, device));
        (rating, ranking)
    }

    /// Commits the epoch last pushed on `history` to `dir` (its weights, optimiser state,
    /// metrics line and, when `best`, the best marker, all at once: [`RunDir::commit_epoch`]),
    /// then draws the curves.
    fn checkpoint<M: RatingModel>(
        &self,
        dir: &RunDir,
        model: &M,
        optim: &ModuleOptimizer,
        history: &[EpochRecord],
        best: bool,
    ) -> Result<()> {
        dir.commit_epoch(model, Some(optim), history, best)?;
        dir.write_curves(history, self.config.metric)
    }

    /// Whether the run stops after `epoch` (of `last`): validating with a
    /// [`TrainConfig::patience`], that many epochs passed without improvement. Says so unless
    /// quiet.
    fn patience_ran_out<M>(
        &self,
        selection: &Selection<M>,
        validates: bool,
        epoch: usize,
        last: usize,
    ) -> bool {
        let cfg = &self.config;
        if let Some(patience) = cfg.patience
            && validates
            && selection.since >= patience
            && epoch < last
        {
            if !self.quiet {
                eprintln!(
                    "early stop: no {} improvement for {patience} epochs",
                    cfg.metric
                );
            }
            return true;
        }
        false
    }
}

/// The best epoch so far, and the epochs trained since.
struct Selection<M> {
    best: Option<Best<M>>,
    /// The selection metric's value at `best` (the worst value there is before any).
    value: f64,
    since: usize,
}

impl<M: Clone> Selection<M> {
    /// Resumes after `done` epochs with `best` among them.
    fn new(best: Option<Best<M>>, metric: Metric, done: usize) -> Self {
        let value = match &best {
            Some((_, _, v, r)) => metric_value(metric, v.as_ref(), r.as_ref()),
            None => None,
        }
        .unwrap_or(if metric.higher_is_better() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
        let since = best.as_ref().map_or(0, |(_, e, _, _)| done - e);
        Self { best, value, since }
    }

    /// Whether epoch `epoch` with these validation metrics is the best so far: the first epoch,
    /// every epoch without a value of [`TrainConfig::metric`], or one that improves on the best
    /// by more than [`TrainConfig::min_delta`]. The best epoch's `model` is kept.
    fn offer(
        &mut self,
        cfg: &TrainConfig,
        model: &M,
        epoch: usize,
        valid: Option<RatingMetrics>,
        ranking: Option<RankingMetrics>,
    ) -> bool {
        let is_best = match metric_value(cfg.metric, valid.as_ref(), ranking.as_ref()) {
            Some(value) => {
                let improved = self.best.is_none()
                    || (cfg.metric.improves(value, self.value)
                        && (value - self.value).abs() > cfg.min_delta);
                if improved {
                    self.value = value;
                }
                improved
            }
            None => true,
        };
        if is_best {
            self.since = 0;
            self.best = Some((model.clone(), epoch, valid, ranking));
        } else {
            self.since += 1;
        }
        is_best
    }
}

/// The progress bar of epoch `epoch` of `last` (`steps` steps), when `show`.
fn progress_bar(show: bool, steps: usize, epoch: usize, last: usize) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{last}"));
    Some(bar)
}

fn epoch_line(r: &EpochRecord, epochs: usize, metric: Metric) -> String {
    let mut line = format!("epoch {}/{}  loss {:.4}", r.epoch, epochs, r.train_loss);
    if let Some(v) = &r.valid {
        line += &format!("  valid rmse {:.4} mae {:.4}", v.rmse, v.mae);
    }
    if let Some(m) = &r.ranking {
        let k = match metric {
            Metric::Rank(_, k) => k,
            _ => 10,
        };
        for name in ["hr", "ndcg"] {
            if let Some(v) = m.get(&format!("{name}@{k}")) {
                line += &format!("  {name}@{k} {v:.4}");
            }
        }
    }
    line += &format!("  {:.1}s  {:.0} samples/s", r.seconds, r.samples_per_s);
    if r.best {
        line += "  *";
    }
    if let Some(p) = &r.profile {
        line += &format!(
            "\n  profile: batch {:.3}s  forward {:.3}s  backward {:.3}s  optimizer {:.3}s  \
             read-back {:.3}s",
            p.batch, p.forward, p.backward, p.optimizer, p.readback
        );
    }
    line
}
