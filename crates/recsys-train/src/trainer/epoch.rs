//! One epoch of training steps: the batches cut ahead on a helper thread, the forward and
//! backward passes, the optimiser's update, and the losses read back every few steps.

use std::time::Instant;

use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use indicatif::ProgressBar;
use recsys_models::RatingModel;

use super::TrainConfig;
use crate::batch::{BatchSource, epoch_order, host_batches};
use crate::error::{Result, TrainError};
use crate::record::PhaseSeconds;

/// Batches cut ahead on the host while the device trains.
const PREFETCH_BATCHES: usize = 4;

/// Epoch orders, each shuffled on a helper thread during the epoch before it.
pub(super) struct OrderAhead {
    n: usize,
    seed: u64,
    next: Option<(usize, std::thread::JoinHandle<Vec<usize>>)>,
}

impl OrderAhead {
    pub(super) fn new(n: usize, seed: u64) -> Self {
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

/// What an epoch's steps add up to.
pub(super) struct EpochSums {
    /// Training loss (data term + penalty) summed over the samples.
    pub loss: f64,
    /// Penalty part of `loss`, summed over the samples.
    pub penalty: f64,
    /// Samples trained on.
    pub seen: usize,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Seconds per phase, with [`TrainConfig::profile`].
    pub profile: Option<PhaseSeconds>,
}

/// The training steps of a run: the data, the optimiser and its learning-rate schedule, and the
/// epoch orders, all carried from one epoch to the next.
pub(super) struct Steps<'a, S> {
    pub train: &'a S,
    /// The autodiff device the model trains on.
    pub device: &'a Device,
    pub optim: ModuleOptimizer,
    pub sched: ModuleLrScheduler,
    pub orders: OrderAhead,
    /// Steps between two read-backs of the loss.
    pub readback_steps: usize,
}

impl<S: BatchSource> Steps<'_, S> {
    /// Trains `model` for one pass over the data in the order of `epoch` (of `last`), reading the
    /// losses back every [`Steps::readback_steps`] steps and at the end. `bar` shows the steps
    /// and the running loss; it is abandoned on a non-finite loss.
    pub(super) fn epoch<M>(
        &mut self,
        cfg: &TrainConfig,
        model: M,
        epoch: usize,
        last: usize,
        bar: Option<&ProgressBar>,
    ) -> Result<(M, EpochSums)>
    where
        M: RatingModel,
        S: BatchSource<Batch = M::Batch>,
    {
        let mut loss_sum = 0.0f64;
        let mut penalty_sum = 0.0f64;
        let mut seen = 0usize;
        let mut lr = cfg.optimizer.lr;
        let mut pending = StepLosses::default();
        let abandon = |bar: Option<&ProgressBar>| {
            if let Some(bar) = bar {
                bar.abandon();
            }
        };
        let mut profiler = Profiler::new(self.device, cfg.profile);
        let order = self.orders.take(epoch, last);
        let (train, device, readback_steps) = (self.train, self.device, self.readback_steps);
        let (optim, sched) = (&mut self.optim, &mut self.sched);
        // The host cuts the next batches on a helper thread while this one drives the device.
        let model = std::thread::scope(|scope| -> Result<M> {
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
                        abandon(bar);
                        return Err(TrainError::NonFiniteLoss { epoch, step, value });
                    }
                    if let Some(bar) = bar {
                        bar.set_message(format!("loss {:.4}", loss_sum / pending.counted as f64));
                    }
                }
                profiler.lap(|p| &mut p.readback);
                if let Some(bar) = bar {
                    bar.inc(1);
                }
            }
            Ok(model)
        })?;
        if let Err((step, value)) = pending.flush(&mut loss_sum, &mut penalty_sum) {
            abandon(bar);
            return Err(TrainError::NonFiniteLoss { epoch, step, value });
        }
        let sums = EpochSums {
            loss: loss_sum,
            penalty: penalty_sum,
            seen,
            lr,
            profile: profiler.result(),
        };
        Ok((model, sums))
    }
}
