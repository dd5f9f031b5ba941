//! Optimiser settings as data (serde / TOML), built into Burn's own optimisers
//! ([`burn::optim::ModuleOptimizer`]) and learning-rate schedulers.
//!
//! ```toml
//! [optimizer]
//! lr = 0.005
//! weight_decay = 0.0          # L2 on the gradient; decoupled for AdamW
//! algorithm = { name = "adam", beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-8 }
//! schedule = { name = "cosine", min_lr = 0.0 }  # or "constant", or { name = "step", every_epochs = 10, gamma = 0.5 }
//! grad_clip = { norm = 1.0 }  # or { value = 0.5 }; absent = no clipping
//! lazy = false                # adam only: row-sparse ("lazy") updates, see below
//! ```
//!
//! **Lazy Adam** (`lazy = true`, Adam only). Dense Adam moves every entry of an embedding table at
//! every step: rows absent from the batch get a zero gradient, yet their stale first moment keeps
//! pushing them (and their second moment decays). The lazy variant ([`LazyAdam`], as TensorFlow's
//! `LazyAdam` / PyTorch's `SparseAdam`) updates the moments and the value of an entry only where
//! its gradient is non-zero, i.e. only the rows looked up in the batch; other entries are left
//! exactly as they are. Bias correction uses the global step count. This changes the semantics
//! for absent rows (and for any dense weight whose gradient is exactly zero); dense Adam stays
//! the default.

use burn::grad_clipping::GradientClippingConfig;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::step::StepLrSchedulerConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdaGradConfig, Adam, AdamConfig, AdamState, AdamWConfig, AdaptiveMomentumState,
    ModuleOptimizer, Optimizer, RmsPropConfig, SgdConfig,
};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

fn beta_1() -> f32 {
    0.9
}
fn beta_2() -> f32 {
    0.999
}
fn epsilon() -> f32 {
    1e-8
}
fn initial_accumulator() -> f32 {
    0.1
}
fn alpha() -> f32 {
    0.99
}
fn gamma() -> f64 {
    0.1
}

/// The update rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Algorithm {
    Adam {
        #[serde(default = "beta_1")]
        beta_1: f32,
        #[serde(default = "beta_2")]
        beta_2: f32,
        #[serde(default = "epsilon")]
        epsilon: f32,
    },
    /// Adam with decoupled weight decay (Loshchilov & Hutter); `weight_decay` is the decoupled rate.
    #[serde(rename = "adamw")]
    AdamW {
        #[serde(default = "beta_1")]
        beta_1: f32,
        #[serde(default = "beta_2")]
        beta_2: f32,
        #[serde(default = "epsilon")]
        epsilon: f32,
    },
    #[serde(rename = "rmsprop")]
    RmsProp {
        #[serde(default = "alpha")]
        alpha: f32,
        #[serde(default)]
        momentum: f32,
        #[serde(default = "epsilon")]
        epsilon: f32,
    },
    /// Adagrad; the squared-gradient accumulator starts at `initial_accumulator` (0.1 as in
    /// Keras / TensorFlow, whose recommenders tutorials use Adagrad; 0 as in PyTorch).
    Adagrad {
        #[serde(default)]
        lr_decay: f64,
        #[serde(default = "epsilon")]
        epsilon: f32,
        #[serde(default = "initial_accumulator")]
        initial_accumulator: f32,
    },
    /// Stochastic gradient descent, with heavy-ball momentum when `momentum > 0`.
    Sgd {
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        nesterov: bool,
    },
}

/// The update rules by name, as `--optimizer` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum OptimizerName {
    Adam,
    Adamw,
    Rmsprop,
    Adagrad,
    Sgd,
}

impl Algorithm {
    /// The update rule `name` with its default settings (those a config file gets when it names
    /// the algorithm alone).
    pub fn named(name: OptimizerName) -> Self {
        match name {
            OptimizerName::Adam => Algorithm::default(),
            OptimizerName::Adamw => Algorithm::AdamW {
                beta_1: beta_1(),
                beta_2: beta_2(),
                epsilon: epsilon(),
            },
            OptimizerName::Rmsprop => Algorithm::RmsProp {
                alpha: alpha(),
                momentum: 0.0,
                epsilon: epsilon(),
            },
            OptimizerName::Adagrad => Algorithm::Adagrad {
                lr_decay: 0.0,
                epsilon: epsilon(),
                initial_accumulator: initial_accumulator(),
            },
            OptimizerName::Sgd => Algorithm::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
        }
    }
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm::Adam {
            beta_1: beta_1(),
            beta_2: beta_2(),
            epsilon: epsilon(),
        }
    }
}

/// How the learning rate changes over training (per optimiser step, expressed in epochs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LrSchedule {
    #[default]
    Constant,
    /// Multiply by `gamma` every `every_epochs` epochs.
    Step {
        every_epochs: usize,
        #[serde(default = "gamma")]
        gamma: f64,
    },
    /// Cosine annealing from `lr` down to `min_lr` over the whole run.
    Cosine {
        #[serde(default)]
        min_lr: f64,
    },
}

/// Gradient clipping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradClip {
    /// Rescale each parameter's gradient to at most this L2 norm.
    Norm(f32),
    /// Clamp each gradient component to `[-v, v]`.
    Value(f32),
}

/// Optimiser, learning rate, weight decay, clipping and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizerConfig {
    pub lr: f64,
    /// L2 penalty added to gradients (Adam, RMSprop, Adagrad, SGD), or the decoupled decay rate
    /// (AdamW). 0 disables it.
    pub weight_decay: f32,
    pub algorithm: Algorithm,
    pub schedule: LrSchedule,
    pub grad_clip: Option<GradClip>,
    /// Row-sparse ("lazy") Adam: entries with a zero gradient (embedding rows absent from the
    /// batch) keep their value and moments (see the module docs). Adam only; default off.
    pub lazy: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            weight_decay: 0.0,
            algorithm: Algorithm::default(),
            schedule: LrSchedule::Constant,
            grad_clip: None,
            lazy: false,
        }
    }
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("learning rate must be positive, got {}", self.lr));
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return bad(format!(
                "weight_decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        match &self.schedule {
            LrSchedule::Step {
                every_epochs: 0, ..
            } => {
                return bad("schedule step: every_epochs must be >= 1".into());
            }
            LrSchedule::Cosine { min_lr } if !(*min_lr >= 0.0 && *min_lr <= self.lr) => {
                return bad(format!(
                    "schedule cosine: min_lr must be in [0, lr], got {min_lr}"
                ));
            }
            LrSchedule::Cosine { .. } if self.lr > 1.0 => {
                return bad("schedule cosine: lr must be at most 1".into());
            }
            _ => {}
        }
        if self.lazy && !matches!(self.algorithm, Algorithm::Adam { .. }) {
            return bad("lazy updates are only implemented for adam".into());
        }
        match self.grad_clip {
            Some(GradClip::Norm(v) | GradClip::Value(v)) if v.is_nan() || v <= 0.0 => {
                bad(format!("grad_clip must be positive, got {v}"))
            }
            _ => Ok(()),
        }
    }

    fn decay(&self) -> Option<WeightDecayConfig> {
        (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay))
    }

    fn clipping(&self) -> Option<GradientClippingConfig> {
        self.grad_clip.map(|c| match c {
            GradClip::Norm(v) => GradientClippingConfig::Norm(v),
            GradClip::Value(v) => GradientClippingConfig::Value(v),
        })
    }

    /// `optim` (one of this module's own optimisers) with the configured gradient clipping.
    fn with_clipping(&self, optim: ModuleOptimizer) -> ModuleOptimizer {
        match self.clipping() {
            Some(c) => optim.with_grad_clipping(c.init()),
            None => optim,
        }
    }

    /// The Burn optimiser (with weight decay and clipping).
    pub fn init(&self) -> Result<ModuleOptimizer> {
        self.validate()?;
        Ok(match self.algorithm {
            Algorithm::Adam {
                beta_1,
                beta_2,
                epsilon,
            } if self.lazy => {
                let optim = ModuleOptimizer::from(LazyAdam {
                    beta_1,
                    beta_2,
                    epsilon,
                    weight_decay: self.weight_decay,
                });
                self.with_clipping(optim)
            }
            Algorithm::Adam {
                beta_1,
                beta_2,
                epsilon,
            } => {
                let adam = AdamConfig::new()
                    .with_beta_1(beta_1)
                    .with_beta_2(beta_2)
                    .with_epsilon(epsilon)
                    .with_weight_decay(self.decay());
                self.with_clipping(ModuleOptimizer::from(FusedAdam {
                    composed: adam.build(),
                    beta_1,
                    beta_2,
                    epsilon,
                    weight_decay: self.weight_decay,
                }))
            }
            Algorithm::AdamW {
                beta_1,
                beta_2,
                epsilon,
            } => AdamWConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .with_weight_decay(self.weight_decay)
                .with_grad_clipping(self.clipping())
                .init(),
            Algorithm::RmsProp {
                alpha,
                momentum,
                epsilon,
            } => RmsPropConfig::new()
                .with_alpha(alpha)
                .with_momentum(momentum)
                .with_epsilon(epsilon)
                .with_weight_decay(self.decay())
                .with_grad_clipping(self.clipping())
                .init(),
            Algorithm::Adagrad {
                lr_decay,
                epsilon,
                initial_accumulator,
            } if initial_accumulator > 0.0 => {
                let optim = ModuleOptimizer::from(AccumulatorAdagrad {
                    lr_decay,
                    epsilon,
                    initial_accumulator,
                    weight_decay: self.weight_decay,
                });
                self.with_clipping(optim)
            }
            Algorithm::Adagrad {
                lr_decay, epsilon, ..
            } => AdaGradConfig::new()
                .with_lr_decay(lr_decay)
                .with_epsilon(epsilon)
                .with_weight_decay(self.decay())
                .with_grad_clipping(self.clipping())
                .init(),
            Algorithm::Sgd { momentum, nesterov } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                }))
                .with_weight_decay(self.decay())
                .with_gradient_clipping(self.clipping())
                .init(),
        })
    }

    /// The learning-rate scheduler for a run of `epochs` epochs of `steps_per_epoch` steps;
    /// call `step()` once per optimiser step.
    pub fn scheduler(&self, epochs: usize, steps_per_epoch: usize) -> Result<ModuleLrScheduler> {
        self.validate()?;
        let steps_per_epoch = steps_per_epoch.max(1);
        let sched = match &self.schedule {
            LrSchedule::Constant => Ok(ModuleLrScheduler::new(self.lr)),
            LrSchedule::Step {
                every_epochs,
                gamma,
            } => StepLrSchedulerConfig::new(self.lr, every_epochs * steps_per_epoch)
                .with_gamma(*gamma)
                .init(),
            LrSchedule::Cosine { min_lr } => {
                CosineAnnealingLrSchedulerConfig::new(self.lr, (epochs * steps_per_epoch).max(1))
                    .with_min_lr(*min_lr)
                    .init()
            }
        };
        sched.map_err(TrainError::Config)
    }
}

/// Burn's [`Adam`] (L2 weight decay on the gradient, no AMSGrad) in one pass per step on the CPU
/// backends: the parameter, its gradient and both moments are read once and written once, where
/// the composition of tensor operations makes about a dozen passes and as many buffers. The
/// arithmetic is the composition's, operation for operation in `f32`, so the values are the same
/// (tested against [`Adam`]); so is the state, so runs resume either way. On other devices it is
/// [`Adam`] itself.
#[derive(Clone)]
pub struct FusedAdam {
    /// The same optimiser as a composition of tensor operations.
    pub composed: Adam,
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

/// A tensor's values on the host.
fn host_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("optimiser tensors are f32")
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let usable =
            |s: &Option<AdamState<D>>| s.as_ref().is_none_or(|s| s.momentum.max_moment_2.is_none());
        if !recsys_models::embedding::on_cpu(&device) || !usable(&state) {
            return self.composed.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let mut p = host_values(tensor);
        let g = host_values(grad);
        let (mut m, mut v, time) = match state {
            Some(s) => (
                host_values(s.momentum.moment_1),
                host_values(s.momentum.moment_2),
                s.momentum.time,
            ),
            // A first step from zero moments is Burn's first step: b·0 + x is x exactly.
            None => (vec![0.0; p.len()], vec![0.0; p.len()], 0),
        };
        let time = time + 1;
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let bc2 = (1.0 - b2.powi(time as i32)).sqrt();
        let factor = bc2 / (1.0 - b1.powi(time as i32));
        let eps = self.epsilon * bc2;
        let (wd, lr) = (self.weight_decay, lr as f32);
        for k in 0..p.len() {
            let gk = if wd > 0.0 { p[k] * wd + g[k] } else { g[k] };
            m[k] = m[k] * b1 + gk * f1;
            v[k] = v[k] * b2 + gk * gk * f2;
            p[k] -= m[k] * factor / (v[k].sqrt() + eps) * lr;
        }
        let back = |values: Vec<f32>| {
            Tensor::<D>::from_data(
                burn::tensor::TensorData::new(values, shape.clone()),
                &device,
            )
        };
        let momentum = AdaptiveMomentumState::new(time, back(m), back(v));
        (back(p), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}

/// Row-sparse ("lazy") Adam: Adam restricted, at each step, to the entries whose gradient is
/// non-zero; see the [module docs](self). Weight decay (L2 on the gradient) applies to those
/// entries only.
#[derive(Debug, Clone)]
pub struct LazyAdam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

impl Optimizer for LazyAdam {
    type State<const D: usize> = AdaptiveMomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let absent = grad.clone().equal_elem(0.0);
        let grad = if self.weight_decay > 0.0 {
            grad.clone()
                .add(tensor.clone().mul_scalar(self.weight_decay))
                .mask_where(absent.clone(), grad)
        } else {
            grad
        };
        let (m, v, time) = match state {
            Some(s) => (s.moment_1, s.moment_2, s.time),
            None => (grad.zeros_like(), grad.zeros_like(), 0),
        };
        let m_new = m
            .clone()
            .mul_scalar(self.beta_1)
            .add(grad.clone().mul_scalar(1.0 - self.beta_1));
        let v_new = v
            .clone()
            .mul_scalar(self.beta_2)
            .add(grad.square().mul_scalar(1.0 - self.beta_2));
        let m = m_new.mask_where(absent.clone(), m);
        let v = v_new.mask_where(absent.clone(), v);
        let time = time + 1;
        let bc2 = (1.0 - self.beta_2.powi(time as i32)).sqrt();
        let factor = bc2 / (1.0 - self.beta_1.powi(time as i32));
        let delta = m
            .clone()
            .mul_scalar(factor * lr as f32)
            .div(v.clone().sqrt().add_scalar(self.epsilon * bc2))
            .mask_fill(absent, 0.0);
        (tensor - delta, Some(AdaptiveMomentumState::new(time, m, v)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

/// Adagrad whose accumulator starts at `initial_accumulator` (Keras' `Adagrad`):
/// `a ← a + g²`, `θ ← θ - lr_t g / √(a + ε)` with `lr_t = lr / (1 + (t - 1) lr_decay)` and
/// `g` the gradient plus `weight_decay · θ`.
#[derive(Debug, Clone)]
pub struct AccumulatorAdagrad {
    pub lr_decay: f64,
    pub epsilon: f32,
    pub initial_accumulator: f32,
    pub weight_decay: f32,
}

impl Optimizer for AccumulatorAdagrad {
    /// The accumulator is kept in both moments of Burn's adaptive state (one buffer, shared).
    type State<const D: usize> = AdaptiveMomentumState<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = if self.weight_decay > 0.0 {
            grad + tensor.clone().mul_scalar(self.weight_decay)
        } else {
            grad
        };
        let (acc, time) = match state {
            Some(s) => (s.moment_2, s.time),
            None => (grad.ones_like().mul_scalar(self.initial_accumulator), 0),
        };
        let acc = acc + grad.clone().square();
        let time = time + 1;
        let lr = lr / (1.0 + (time as f64 - 1.0) * self.lr_decay);
        let delta = grad
            .mul_scalar(lr as f32)
            .div(acc.clone().add_scalar(self.epsilon).sqrt());
        (
            tensor - delta,
            Some(AdaptiveMomentumState::new(time, acc.clone(), acc)),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.to_device(device)
    }
}

#[cfg(test)]
mod tests;
