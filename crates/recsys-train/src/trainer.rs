//! The training loop: one loop for every [`RatingModel`].
//!
//! Per epoch: seeded shuffle, mini-batch steps with Burn's optimiser and learning-rate schedule,
//! the mean training loss, the validation metrics, early stopping on [`TrainConfig::metric`] with
//! [`TrainConfig::patience`], and (with a [`RunDir`]) one line of `metrics.jsonl` plus the
//! `model-best` / `model-last` weights.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recsys_data::Interactions;
use recsys_models::{AutoRec, RatingBatch, RatingModel};
use serde::{Deserialize, Serialize};

use crate::batch::{BatchSource, epoch_order, host_batches, index_tensor};
use crate::error::{Result, TrainError};
use crate::metrics::{Metric, RatingMetrics};
use crate::optim::OptimizerConfig;
use crate::ranking::{RankingMetrics, RankingTask};
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
        }
    }
}

impl TrainConfig {
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

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss (data term + penalty) over the epoch's samples.
    pub train_loss: f64,
    /// Mean penalty part of `train_loss` (0 without regularisation).
    pub train_penalty: f64,
    pub valid: Option<RatingMetrics>,
    /// Validation ranking metrics, when the run validates by ranking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingMetrics>,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall time of training and validation.
    pub seconds: f64,
    /// Training samples per second (training steps only).
    pub samples_per_s: f64,
    /// Whether this epoch is the best so far.
    pub best: bool,
    /// Seconds per phase of the epoch's steps, with [`TrainConfig::profile`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<PhaseSeconds>,
}

/// Steps between loss read-backs on a GPU when [`TrainConfig::loss_readback_steps`] is 0: measured
/// on an H200 (MF at ML-20M shape), reading back every 64 steps instead of every step made an
/// epoch 26% shorter. On CPU backends and llvmpipe every step costs nothing extra.
pub const AUTO_READBACK_GPU: usize = 64;

/// Batches cut ahead on the host while the device trains.
const PREFETCH_BATCHES: usize = 4;

/// Epoch orders, each shuffled on a helper thread during the epoch before it.
struct OrderAhead {
    n: usize,
    seed: u64,
    next: Option<(usize, std::thread::JoinHandle<Vec<usize>>)>,
}

impl OrderAhead {
    fn new(n: usize, seed: u64) -> Self {
        Self {
            n,
            seed,
            next: None,
        }
    }

    /// The order of `epoch` ([`epoch_order`]); starts shuffling the next one unless `epoch` is
    /// the last.
    fn take(&mut self, epoch: usize, last: usize) -> Vec<usize> {
        let (n, seed) = (self.n, self.seed);
        let order = match self.next.take() {
            Some((e, handle)) if e == epoch => handle.join().expect("shuffling cannot panic"),
            _ => epoch_order(n, seed, epoch),
        };
        if epoch < last {
            let next = epoch + 1;
            self.next = Some((next, std::thread::spawn(move || epoch_order(n, seed, next))));
        }
        order
    }
}

/// Where an epoch's training time went (seconds, summed over its steps), measured by waiting for
/// the device at the end of each phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Cutting the batch on the host and sending it to the device.
    pub batch: f64,
    /// The loss (forward pass).
    pub forward: f64,
    /// Gradients (backward pass).
    pub backward: f64,
    /// The optimizer's update.
    pub optimizer: f64,
    /// Reading the losses back.
    pub readback: f64,
}

/// Adds the time since the last lap to a phase, after waiting for the device; does nothing
/// (and never waits) when off.
struct Profiler {
    device: Option<Device>,
    last: Instant,
    seconds: PhaseSeconds,
}

impl Profiler {
    fn new(device: &Device, on: bool) -> Self {
        Self {
            device: on.then(|| device.clone()),
            last: Instant::now(),
            seconds: PhaseSeconds::default(),
        }
    }

    fn lap(&mut self, phase: fn(&mut PhaseSeconds) -> &mut f64) {
        if let Some(device) = &self.device {
            // A failed wait surfaces at the next read-back; the timing is all that is lost.
            let _ = device.sync();
            let now = Instant::now();
            *phase(&mut self.seconds) += (now - self.last).as_secs_f64();
            self.last = now;
        }
    }

    fn result(self) -> Option<PhaseSeconds> {
        self.device.map(|_| self.seconds)
    }
}

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
    /// No progress output at all.
    pub quiet: bool,
    /// Validation by ranking (implicit feedback), after every epoch.
    pub ranking: Option<Arc<RankingTask>>,
    /// Stop after this epoch, with the learning-rate schedule still laid out over
    /// [`TrainConfig::epochs`] (how a refit replays the selection run's first epochs).
    pub stop_after: Option<usize>,
}

impl Trainer {
    pub fn new(config: TrainConfig) -> Self {
        Self {
            config,
            rating_scale: None,
            quiet: false,
            ranking: None,
            stop_after: None,
        }
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

    /// Trains `model` (built on `device`, an autodiff device) on the rated pairs `train`,
    /// validating on `valid` after every epoch. With `run_dir`, writes `metrics.jsonl`, the curves,
    /// the weights and the optimiser state there.
    pub fn fit<M: RatingModel<Batch = RatingBatch>>(
        &self,
        model: M,
        train: &Interactions,
        valid: Option<&Interactions>,
        device: &Device,
        run_dir: Option<&RunDir>,
    ) -> Result<TrainOutcome<M>> {
        self.fit_on(model, train, valid, device, run_dir)
    }

    /// [`Trainer::fit`] for any model and [`BatchSource`] of its batch type (e.g. the rows of a
    /// [`UserHistory`](recsys_data::UserHistory) for AutoRec). Validation is always on rated pairs
    /// through [`RatingModel::predict`].
    pub fn fit_on<M, S>(
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
            dir.reset_metrics()?;
        }
        self.run(model, train, valid, device, run_dir, start)
    }

    /// Continues the run in `run_dir` for `self.config.epochs` epochs in total: `model` must hold
    /// the run's last weights (`model-last.bpk`); the optimiser state (`optimizer-last.bpk`),
    /// the history (`metrics.jsonl`) and the best weights are read back, and new epochs are
    /// appended. The learning-rate schedule is replayed up to the last step.
    pub fn resume_on<M, S>(
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
        let history = run_dir.read_metrics()?;
        let done = history.last().map_or(0, |r| r.epoch);
        if done != history.len() {
            return Err(TrainError::format(
                run_dir.metrics_path(),
                format!("{} records but the last is epoch {done}", history.len()),
            ));
        }
        let optim = run_dir.load_optimizer(self.config.optimizer.init()?)?;
        let best = match history.iter().rev().find(|r| r.best) {
            Some(r) if valid.is_some() || self.ranking.is_some() => {
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
        if cfg.metric.is_ranking() != self.ranking.is_some() && validates {
            return Err(TrainError::Config(format!(
                "the validation metric {} needs {} validation",
                cfg.metric,
                if cfg.metric.is_ranking() {
                    "a ranking (implicit-feedback)"
                } else {
                    "a rating"
                }
            )));
        }
        let Start {
            mut optim,
            mut history,
            mut best,
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

        let mut best_value = match &best {
            Some((_, _, v, r)) => metric_value(cfg.metric, v.as_ref(), r.as_ref()),
            None => None,
        }
        .unwrap_or(if cfg.metric.higher_is_better() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
        let mut since_best = best.as_ref().map_or(0, |(_, e, _, _)| done - e);
        let mut orders = OrderAhead::new(train.len(), cfg.seed);
        let readback_steps = match cfg.loss_readback_steps {
            0 if crate::device::is_gpu(device) => AUTO_READBACK_GPU,
            0 => 1,
            n => n,
        };
        let mut stopped_early = false;

        let last = self.stop_after.map_or(cfg.epochs, |e| e.min(cfg.epochs));
        for epoch in done + 1..=last {
            let start = Instant::now();
            let bar = if show_bar {
                let bar = ProgressBar::with_draw_target(
                    Some(steps_per_epoch as u64),
                    ProgressDrawTarget::stderr(),
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{epoch}/{last}"));
                Some(bar)
            } else {
                None
            };

            let mut loss_sum = 0.0f64;
            let mut penalty_sum = 0.0f64;
            let mut seen = 0usize;
            let mut lr = cfg.optimizer.lr;
            let mut pending = StepLosses::default();
            let abandon = |bar: &Option<ProgressBar>| {
                if let Some(bar) = bar {
                    bar.abandon();
                }
            };
            let mut profiler = Profiler::new(device, cfg.profile);
            let order = orders.take(epoch, last);
            // The host cuts the next batches on a helper thread while this one drives the device.
            model = std::thread::scope(|scope| -> Result<M> {
                let mut model = model;
                let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_BATCHES);
                let batch_size = cfg.batch_size;
                scope.spawn(move || {
                    for batch in host_batches(train, &order, batch_size, epoch) {
                        if tx.send(batch).is_err() {
                            break; // the loop below stopped
                        }
                    }
                });
                for (step, (host, n)) in (1..).zip(rx) {
                    let batch = S::upload(host, device);
                    profiler.lap(|p| &mut p.batch);
                    let out = model.loss(&batch);
                    let total = out.total();
                    pending.push(step, total.clone().detach(), out.penalty, n);
                    profiler.lap(|p| &mut p.forward);
                    let grads = GradientsParams::from_grads(total.backward(), &model);
                    profiler.lap(|p| &mut p.backward);
                    let step_lr = sched.step();
                    lr = step_lr.base();
                    model = optim.step(step_lr, model, grads);
                    profiler.lap(|p| &mut p.optimizer);
                    seen += n;
                    if pending.len() >= readback_steps {
                        if let Err((step, value)) = pending.flush(&mut loss_sum, &mut penalty_sum) {
                            abandon(&bar);
                            return Err(TrainError::NonFiniteLoss { epoch, step, value });
                        }
                        if let Some(bar) = &bar {
                            bar.set_message(format!(
                                "loss {:.4}",
                                loss_sum / pending.counted as f64
                            ));
                        }
                    }
                    profiler.lap(|p| &mut p.readback);
                    if let Some(bar) = &bar {
                        bar.inc(1);
                    }
                }
                Ok(model)
            })?;
            if let Err((step, value)) = pending.flush(&mut loss_sum, &mut penalty_sum) {
                abandon(&bar);
                return Err(TrainError::NonFiniteLoss { epoch, step, value });
            }
            let train_seconds = start.elapsed().as_secs_f64();
            let profile_seconds = profiler.result();
            if let Some(bar) = &bar {
                bar.set_message(format!("loss {:.4}, validating", loss_sum / seen as f64));
            }

            let valid_metrics = valid.map(|v| {
                evaluate(
                    &model.valid(),
                    v,
                    cfg.eval_batch_size,
                    self.rating_scale,
                    &eval_device,
                )
            });
            let ranking = self
                .ranking
                .as_ref()
                .map(|task| crate::ranking::evaluate_ranking(&model.valid(), task, &eval_device));
            let is_best = match metric_value(cfg.metric, valid_metrics.as_ref(), ranking.as_ref()) {
                Some(value) => {
                    let improved = best.is_none()
                        || (cfg.metric.improves(value, best_value)
                            && (value - best_value).abs() > cfg.min_delta);
                    if improved {
                        best_value = value;
                    }
                    improved
                }
                None => true,
            };
            if is_best {
                since_best = 0;
                best = Some((model.clone(), epoch, valid_metrics, ranking.clone()));
                if let (Some(dir), true) = (run_dir, validates) {
                    dir.save_model(&model, Checkpoint::Best)?;
                }
            } else {
                since_best += 1;
            }

            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / seen as f64,
                train_penalty: penalty_sum / seen as f64,
                valid: valid_metrics,
                ranking,
                lr,
                seconds: start.elapsed().as_secs_f64(),
                samples_per_s: seen as f64 / train_seconds.max(1e-9),
                best: is_best && validates,
                profile: profile_seconds,
            };
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if !self.quiet {
                eprintln!("{}", epoch_line(&record, last, cfg.metric));
            }
            history.push(record);
            if let Some(dir) = run_dir {
                dir.append_metrics(history.last().expect("just pushed"))?;
                dir.save_model(&model, Checkpoint::Last)?;
                dir.save_optimizer(&optim)?;
                dir.write_curves(&history, cfg.metric)?;
            }

            if let Some(patience) = cfg.patience
                && validates
                && since_best >= patience
                && epoch < last
            {
                stopped_early = true;
                if !self.quiet {
                    eprintln!(
                        "early stop: no {} improvement for {patience} epochs",
                        cfg.metric
                    );
                }
                break;
            }
        }

        let (model, best_epoch, best_valid, best_ranking) = best.expect("at least one epoch ran");
        Ok(TrainOutcome {
            model,
            best_epoch,
            best_valid,
            best_ranking,
            history,
            stopped_early,
        })
    }
}

/// The value of `metric` among the rating and ranking metrics of a validation.
pub fn metric_value(
    metric: Metric,
    rating: Option<&RatingMetrics>,
    ranking: Option<&RankingMetrics>,
) -> Option<f64> {
    match metric {
        Metric::Rank(..) => ranking.and_then(|r| r.get(&metric.name())),
        m => rating.and_then(|r| r.get(m)),
    }
}

/// The losses of the steps since the last read-back, still on the device, read back in one
/// transfer: summed (weighted by batch size) into the epoch's totals, or the first non-finite
/// one reported with its step number.
#[derive(Default)]
struct StepLosses {
    steps: Vec<usize>,
    totals: Vec<Tensor<1>>,
    penalties: Vec<Tensor<1>>,
    sizes: Vec<usize>,
    /// Examples whose losses have been read back so far.
    counted: usize,
}

impl StepLosses {
    fn len(&self) -> usize {
        self.totals.len()
    }

    fn push(&mut self, step: usize, total: Tensor<1>, penalty: Option<Tensor<1>>, n: usize) {
        self.steps.push(step);
        self.totals.push(total);
        if let Some(p) = penalty {
            self.penalties.push(p.detach());
        }
        self.sizes.push(n);
    }

    /// Adds the pending losses to `loss_sum` and `penalty_sum`, or returns the first
    /// non-finite loss as `(step, value)`.
    fn flush(&mut self, loss_sum: &mut f64, penalty_sum: &mut f64) -> Result<(), (usize, f32)> {
        if self.totals.is_empty() {
            return Ok(());
        }
        let read = |t: Vec<Tensor<1>>| -> Vec<f32> {
            Tensor::cat(t, 0)
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float losses")
        };
        let totals = read(std::mem::take(&mut self.totals));
        if let Some(k) = totals.iter().position(|v| !v.is_finite()) {
            return Err((self.steps[k], totals[k]));
        }
        if !self.penalties.is_empty() {
            let penalties = read(std::mem::take(&mut self.penalties));
            *penalty_sum += penalties
                .iter()
                .zip(&self.sizes)
                .map(|(&p, &n)| p as f64 * n as f64)
                .sum::<f64>();
        }
        *loss_sum += totals
            .iter()
            .zip(&self.sizes)
            .map(|(&v, &n)| v as f64 * n as f64)
            .sum::<f64>();
        self.counted += self.sizes.iter().sum::<usize>();
        self.steps.clear();
        self.sizes.clear();
        Ok(())
    }
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

/// Predicted ratings of `(users[k], items[k])`, in batches of `batch_size`, on `device` (a plain
/// device for a model from [`Module::valid`] or a loaded one).
pub fn predict<M: RatingModel>(
    model: &M,
    users: &[u32],
    items: &[u32],
    batch_size: usize,
    device: &Device,
) -> Vec<f32> {
    assert_eq!(users.len(), items.len(), "users and items differ in length");
    let batch_size = batch_size.max(1);
    let mut out = Vec::with_capacity(users.len());
    for start in (0..users.len()).step_by(batch_size) {
        let end = (start + batch_size).min(users.len());
        let pred = model.predict(
            index_tensor(&users[start..end], device),
            index_tensor(&items[start..end], device),
        );
        out.extend(
            pred.into_data()
                .try_into_vec_as::<f32>()
                .expect("float predictions"),
        );
    }
    out
}

/// Rating metrics of `model` on `data`, predictions clamped to `scale` if given.
pub fn evaluate<M: RatingModel>(
    model: &M,
    data: &Interactions,
    batch_size: usize,
    scale: Option<(f32, f32)>,
    device: &Device,
) -> RatingMetrics {
    let pred = predict(model, &data.users, &data.items, batch_size, device);
    RatingMetrics::compute(&pred, &data.ratings, scale)
}

/// The AutoRec notebook's "hidden ratings" check: hides `n_hide` ratings of `known` (chosen with
/// `seed`), reconstructs the rows of `known` without them, and returns the metrics of the
/// reconstructions at the hidden entries (clamped to `scale` if given). `known` is the rating
/// matrix the model reads (e.g. the training ratings plus the test ratings).
pub fn hidden_ratings_check(
    model: &AutoRec,
    known: &Interactions,
    n_hide: usize,
    seed: u64,
    scale: Option<(f32, f32)>,
    device: &Device,
) -> RatingMetrics {
    let order = crate::batch::epoch_order(known.len(), seed, 0);
    let (hidden, kept) = order.split_at(n_hide.min(known.len()));
    let hidden = known.select(hidden);
    let rows = model.rows_of(&known.select(kept));
    let pred = model
        .predict_from(
            &rows,
            index_tensor(&hidden.users, device),
            index_tensor(&hidden.items, device),
        )
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float predictions");
    RatingMetrics::compute(&pred, &hidden.ratings, scale)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::{BackendKind, device};
    use crate::optim::{Algorithm, OptimizerConfig};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use recsys_models::{MfConfig, MfOutput};

    /// A 30 x 20 rank-2 rating matrix on the 1..5 scale, ~60% observed, split 80/20.
    pub(crate) fn synthetic() -> (Interactions, Interactions) {
        let (n_users, n_items) = (30usize, 20usize);
        let mut rng = StdRng::seed_from_u64(1);
        let u: Vec<[f32; 2]> = (0..n_users)
            .map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
            .collect();
        let v: Vec<[f32; 2]> = (0..n_items)
            .map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
            .collect();
        let (mut tr, mut va) = (Vec::new(), Vec::new());
        for (a, ua) in u.iter().enumerate() {
            for (b, vb) in v.iter().enumerate() {
                if rng.random::<f32>() < 0.6 {
                    let r = (3.0 + 1.5 * (ua[0] * vb[0] + ua[1] * vb[1]) * 1.5 + 0.3 * ua[0])
                        .clamp(1.0, 5.0);
                    let row = (a as u32, b as u32, r);
                    if rng.random::<f32>() < 0.8 {
                        tr.push(row)
                    } else {
                        va.push(row)
                    }
                }
            }
        }
        let build = |rows: Vec<(u32, u32, f32)>| {
            Interactions::new(
                rows.iter().map(|r| r.0).collect(),
                rows.iter().map(|r| r.1).collect(),
                rows.iter().map(|r| r.2).collect(),
                None,
                n_users,
                n_items,
            )
            .unwrap()
        };
        (build(tr), build(va))
    }

    pub(crate) fn train_config(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size: 32,
            seed: 7,
            patience: None,
            optimizer: OptimizerConfig {
                lr: 0.03,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    pub(crate) fn mf_config(train: &Interactions, output: MfOutput) -> MfConfig {
        MfConfig::new(train.n_users, train.n_items)
            .with_dim(4)
            .with_bias(true)
            .with_output(output)
            .with_global_mean(train.mean_rating() as f32)
            .with_init(recsys_models::EmbeddingInit::Normal { std: 0.1 })
            .with_seed(3)
    }

    #[test]
    fn stop_after_keeps_the_schedule_of_all_epochs() {
        let (train, valid) = synthetic();
        let device = crate::device::device(crate::device::BackendKind::Flex, 0).unwrap();
        let mut cfg = train_config(5);
        cfg.optimizer.schedule = crate::optim::LrSchedule::Cosine { min_lr: 0.0 };
        let config = mf_config(&train, MfOutput::Linear);
        let fit = |stop| {
            Trainer::new(cfg.clone())
                .quiet(true)
                .with_stop_after(stop)
                .fit(
                    config.init(&device).unwrap(),
                    &train,
                    Some(&valid),
                    &device,
                    None,
                )
                .unwrap()
        };
        let (all, two) = (fit(None), fit(Some(2)));
        assert_eq!(all.history.len(), 5);
        assert_eq!(two.history.len(), 2);
        for (a, b) in two.history.iter().zip(&all.history) {
            assert_eq!(a.lr, b.lr);
            assert_eq!(a.train_loss, b.train_loss);
            assert_eq!(a.valid, b.valid);
        }
        assert!(two.history[1].lr > all.history[4].lr);
    }

    fn baseline_rmse(train: &Interactions, valid: &Interactions) -> f64 {
        let mean = train.mean_rating() as f32;
        crate::metrics::rmse(&vec![mean; valid.len()], &valid.ratings)
    }

    fn fit_mf(
        kind: BackendKind,
        output: MfOutput,
        epochs: usize,
    ) -> TrainOutcome<recsys_models::Mf> {
        let (train, valid) = synthetic();
        let device = device(kind, 0).unwrap();
        let model = mf_config(&train, output).init(&device).unwrap();
        Trainer::new(train_config(epochs))
            .with_rating_scale((1.0, 5.0))
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, None)
            .unwrap()
    }

    #[test]
    fn mf_learns_on_flex_and_ndarray() {
        let (train, valid) = synthetic();
        let baseline = baseline_rmse(&train, &valid);
        for kind in [BackendKind::Flex, BackendKind::Ndarray] {
            for output in [MfOutput::Linear, MfOutput::Logit] {
                let o = fit_mf(kind, output, 40);
                let first = o.history.first().unwrap().train_loss;
                let last = o.history.last().unwrap().train_loss;
                let rmse = o.best_valid.unwrap().rmse;
                // BCE on soft labels has an entropy floor, so it falls less far than MSE.
                let factor = if output == MfOutput::Logit { 0.9 } else { 0.5 };
                assert!(
                    last < factor * first,
                    "{kind} {output:?}: loss {first} -> {last}"
                );
                assert!(
                    rmse < 0.9 * baseline,
                    "{kind} {output:?}: rmse {rmse} vs baseline {baseline}"
                );
            }
        }
    }

    #[test]
    fn same_seed_gives_identical_metrics_on_flex() {
        let a = fit_mf(BackendKind::Flex, MfOutput::Linear, 5);
        let b = fit_mf(BackendKind::Flex, MfOutput::Linear, 5);
        let strip = |h: &[EpochRecord]| -> Vec<(f64, Option<RatingMetrics>)> {
            h.iter().map(|r| (r.train_loss, r.valid)).collect()
        };
        assert_eq!(strip(&a.history), strip(&b.history));
    }

    #[test]
    fn profiling_times_every_phase_and_changes_no_result() {
        let (train, valid) = synthetic();
        let device = device(BackendKind::Flex, 0).unwrap();
        let fit = |profile: bool| {
            let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
            Trainer::new(TrainConfig {
                profile,
                ..train_config(2)
            })
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, None)
            .unwrap()
            .history
        };
        let (plain, profiled) = (fit(false), fit(true));
        for (a, b) in plain.iter().zip(&profiled) {
            assert_eq!((a.train_loss, a.valid), (b.train_loss, b.valid));
            assert!(a.profile.is_none());
            let p = b.profile.as_ref().expect("a profile per epoch");
            let phases = [p.batch, p.forward, p.backward, p.optimizer, p.readback];
            assert!(phases.iter().all(|&s| s > 0.0), "{p:?}");
            // The phases cover the training steps, which take no longer than the epoch.
            assert!(
                phases.iter().sum::<f64>() <= b.seconds,
                "{p:?} vs {}",
                b.seconds
            );
        }
    }

    #[test]
    fn early_stopping_and_best_epoch() {
        let (train, valid) = synthetic();
        let device = device(BackendKind::Flex, 0).unwrap();
        let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
        let mut cfg = train_config(200);
        cfg.patience = Some(2);
        cfg.optimizer.lr = 0.2;
        let o = Trainer::new(cfg)
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, None)
            .unwrap();
        assert!(o.stopped_early, "ran {} epochs", o.history.len());
        assert_eq!(o.history.len(), o.best_epoch + 2);
        let best = o.history[o.best_epoch - 1].valid.unwrap().rmse;
        assert!(o.history.iter().all(|r| r.valid.unwrap().rmse >= best));
    }

    #[test]
    fn divergence_is_an_error_naming_epoch_and_step() {
        let (train, valid) = synthetic();
        let device = device(BackendKind::Flex, 0).unwrap();
        let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
        let mut cfg = train_config(3);
        cfg.optimizer.lr = 1e30;
        cfg.optimizer.algorithm = Algorithm::Sgd {
            momentum: 0.0,
            nesterov: false,
        };
        let err = Trainer::new(cfg)
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, None)
            .unwrap_err();
        match &err {
            TrainError::NonFiniteLoss { epoch, step, .. } => assert!(*epoch >= 1 && *step >= 1),
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains("epoch 1, step"), "{err}");
    }

    /// The fast lookup (`EmbeddingTable::lookup`, a gather whose backward is a parallel
    /// scatter-add) against the plain one (`select`, what `nn::Embedding` does): the same
    /// gradients, duplicates included, and the same loss curve over a few SGD steps, within
    /// 1e-5 (atomic adds on wgpu reorder sums).
    #[test]
    fn gather_lookup_matches_select_in_gradients_and_loss_curve() {
        use burn::optim::SgdConfig;
        use burn::tensor::TensorData;
        use recsys_models::EmbeddingTableConfig;
        let mut kinds = vec![BackendKind::Flex, BackendKind::Ndarray];
        if !crate::device::wgpu_adapters().is_empty() {
            kinds.push(BackendKind::Wgpu);
        }
        let (n, dim, batch) = (40, 8, 300);
        let mut rng = StdRng::seed_from_u64(11);
        let ids: Vec<u32> = (0..batch).map(|_| rng.random_range(0..n as u32)).collect();
        let target: Vec<f32> = (0..batch * dim).map(|_| rng.random::<f32>()).collect();
        for kind in kinds {
            let d = device(kind, 0).unwrap();
            let idx = index_tensor(&ids, &d);
            let target = Tensor::<2>::from_data(TensorData::new(target.clone(), [batch, dim]), &d);
            let config = EmbeddingTableConfig::new(n, dim).with_seed(5);
            let (mut fast, mut plain) = (config.init(&d), config.init(&d));
            let (mut opt_fast, mut opt_plain) = (SgdConfig::new().init(), SgdConfig::new().init());
            for step in 0..5 {
                let loss_fast = (fast.lookup(idx.clone()) - target.clone()).square().mean();
                let loss_plain = (plain.weight.val().select(0, idx.clone()) - target.clone())
                    .square()
                    .mean();
                let read = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap();
                let scalar =
                    |t: &Tensor<1>| t.clone().into_data().try_into_vec_as::<f32>().unwrap()[0];
                let (lf, lp) = (scalar(&loss_fast), scalar(&loss_plain));
                assert!(
                    (lf - lp).abs() < 1e-5,
                    "{kind} step {step}: loss {lf} vs {lp}"
                );
                let (gf, gp) = (loss_fast.backward(), loss_plain.backward());
                let (gf, gp) = (
                    GradientsParams::from_grads(gf, &fast),
                    GradientsParams::from_grads(gp, &plain),
                );
                let (a, b) = (
                    read(gf.get::<2>(fast.weight.id).unwrap()),
                    read(gp.get::<2>(plain.weight.id).unwrap()),
                );
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst < 1e-5,
                    "{kind} step {step}: gradients differ by {worst}"
                );
                assert!(a.iter().any(|&g| g != 0.0), "{kind}: a gradient at all");
                fast = opt_fast.step(0.5, fast, gf);
                plain = opt_plain.step(0.5, plain, gp);
            }
        }
    }

    #[test]
    fn ncf_and_two_tower_train_alike_on_flex_and_wgpu() {
        use crate::batch::{ImplicitLoss, ImplicitPairs};
        use crate::ranking::RankingTask;
        use recsys_models::{NcfConfig, TwoTowerConfig};
        if crate::device::wgpu_adapters().is_empty() {
            eprintln!("ncf_and_two_tower_train_alike_on_flex_and_wgpu skipped: no wgpu adapter");
            return;
        }
        let (train, valid) = synthetic();
        let flex = device(BackendKind::Flex, 0).unwrap();
        let wgpu = device(BackendKind::Wgpu, 0).unwrap();
        let ranking = std::sync::Arc::new(RankingTask::factorized(&valid, &[5]).unwrap());
        let mut cfg = train_config(4);
        cfg.metric = "hr@5".parse().unwrap();
        cfg.optimizer.lr = 0.01;
        let trainer = Trainer::new(cfg).quiet(true).with_ranking(Some(ranking));
        // The same starting weights on both devices (`fork` copies them over), the same
        // batches and negatives: the losses agree up to the order of float sums.
        fn both<M: RatingModel<Batch = RatingBatch>>(
            trainer: &Trainer,
            model: M,
            src: &ImplicitPairs,
            flex: &Device,
            wgpu: &Device,
        ) -> (Vec<f64>, Vec<f64>) {
            let on_wgpu = model.clone().fork(wgpu);
            let losses = |o: TrainOutcome<M>| o.history.iter().map(|r| r.train_loss).collect();
            let a = trainer.fit_on(model, src, None, flex, None).unwrap();
            let b = trainer.fit_on(on_wgpu, src, None, wgpu, None).unwrap();
            (losses(a), losses(b))
        }
        let bce = ImplicitPairs::new(&train, ImplicitLoss::Bce { negatives: 2 }, 7).unwrap();
        let neumf = NcfConfig::new(30, 20)
            .with_gmf_dim(4)
            .with_mlp_layers(vec![8, 4])
            .init(&flex)
            .unwrap();
        let softmax = ImplicitPairs::new(&train, ImplicitLoss::InBatch, 7).unwrap();
        let tower = TwoTowerConfig::new(30, 20)
            .with_dim(8)
            .with_hidden(vec![8])
            .with_sum_loss(false)
            .init(&flex)
            .unwrap();
        for (name, (a, b)) in [
            ("neumf", both(&trainer, neumf, &bce, &flex, &wgpu)),
            ("two_tower", both(&trainer, tower, &softmax, &flex, &wgpu)),
        ] {
            assert!(a[3] < a[0], "{name} does not learn on flex: {a:?}");
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                    "{name}: flex {a:?} vs wgpu {b:?}"
                );
            }
        }
    }

    #[test]
    fn every_model_starts_alike_on_flex_and_wgpu() {
        use recsys_models::{
            AutoRecConfig, NcfConfig, NcfKind, RecommenderNetConfig, Scorer, TwoTowerConfig,
        };
        if crate::device::wgpu_adapters().is_empty() {
            eprintln!("every_model_starts_alike_on_flex_and_wgpu skipped: no wgpu adapter");
            return;
        }
        let (train, _) = synthetic();
        let flex = device(BackendKind::Flex, 0).unwrap().without_autodiff();
        let wgpu = device(BackendKind::Wgpu, 0).unwrap().without_autodiff();
        fn scores<M: Scorer>(m: &M, d: &Device) -> Vec<f32> {
            m.score_all(crate::batch::index_tensor(&[0, 7, 29], d))
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap()
        }
        let close = |name: &str, a: Vec<f32>, b: Vec<f32>| {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "{name}: {x} vs {y}"
                );
            }
        };
        let ncf = NcfConfig::new(30, 20)
            .with_gmf_dim(4)
            .with_mlp_layers(vec![8, 4]);
        close(
            "neumf",
            scores(&ncf.init(&flex).unwrap(), &flex),
            scores(&ncf.init(&wgpu).unwrap(), &wgpu),
        );
        let ncf = ncf.with_kind(NcfKind::Mlp);
        close(
            "mlp",
            scores(&ncf.init(&flex).unwrap(), &flex),
            scores(&ncf.init(&wgpu).unwrap(), &wgpu),
        );
        let tt = TwoTowerConfig::new(30, 20)
            .with_dim(8)
            .with_hidden(vec![8, 4]);
        close(
            "two_tower",
            scores(&tt.init(&flex).unwrap(), &flex),
            scores(&tt.init(&wgpu).unwrap(), &wgpu),
        );
        let rn = RecommenderNetConfig::new(30, 20).with_embedding_dim(8);
        close(
            "recnet",
            scores(&rn.init(&flex).unwrap(), &flex),
            scores(&rn.init(&wgpu).unwrap(), &wgpu),
        );
        let rows = std::sync::Arc::new(recsys_data::UserHistory::by_item(&train));
        let ar = AutoRecConfig::new(30, 20).with_hidden(vec![8]);
        close(
            "autorec",
            scores(&ar.init(&flex).unwrap().with_inputs(rows.clone()), &flex),
            scores(&ar.init(&wgpu).unwrap().with_inputs(rows), &wgpu),
        );
    }

    #[test]
    fn wgpu_smoke() {
        let adapters = crate::device::wgpu_adapters();
        if adapters.is_empty() {
            eprintln!("wgpu_smoke skipped: no wgpu adapter on this machine");
            let err = device(BackendKind::Wgpu, 0).unwrap_err().to_string();
            assert!(err.contains("--backend flex"), "{err}");
            return;
        }
        eprintln!("wgpu adapters: {adapters:?}");
        let (train, valid) = synthetic();
        let device = device(BackendKind::Wgpu, 0).unwrap();
        eprintln!("wgpu_smoke on {}", crate::device::adapter_name(&device));
        let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
        let o = Trainer::new(train_config(8))
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, None)
            .unwrap();
        let first = o.history.first().unwrap().train_loss;
        let last = o.history.last().unwrap().train_loss;
        assert!(last.is_finite() && last < first, "loss {first} -> {last}");
        // Same initial weights and order as flex, so the first epoch agrees closely.
        let flex = fit_mf(BackendKind::Flex, MfOutput::Linear, 1);
        assert!((flex.history[0].train_loss - first).abs() < 1e-3 * first.max(1.0));
    }
}
