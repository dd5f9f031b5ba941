//! # recsys-train
//!
//! Training, evaluation and run directories for the models of `recsys-models` on the data of
//! `recsys-data`, on any Burn backend chosen at run time ([`device::device`]).
//!
//! - [`device`]: `ndarray | flex | wgpu` to an autodiff [`Device`](burn::tensor::Device).
//! - [`optim`]: optimiser / schedule / clipping settings built into Burn's optimisers.
//! - [`metrics`]: RMSE, MAE, MSE, MAPE, R² on slices.
//! - [`batch`]: seeded shuffled mini-batches of interactions as device tensors.
//! - [`budget`]: how many users (rows of scores) go into one scoring block.
//! - [`ranking`]: HR / NDCG / Recall / Precision / MAP / MRR@K and AUC, sampled and full.
//! - [`trainer`]: the training loop, generic over [`RatingModel`](recsys_models::RatingModel).
//! - [`record`]: what the training loop records per epoch ([`EpochRecord`]).
//! - [`eval`]: rating predictions and rating metrics of a trained model.
//! - [`run_dir`]: `config.toml`, `idmap.json`, `metrics.jsonl`, `manifest.json` (the committed
//!   state) and the per-epoch weights and optimiser state it names, `loss.svg` and `<metric>.svg`.
//! - [`plot`]: the hand-written SVG line charts of the run directory.
//! - [`config`]: the resolved configuration of a run ([`RunConfig`]) and its data recipe.
//! - [`task`]: ratings or implicit feedback, with its loss and validation protocol.
//! - [`family`]: the [`Family`] trait, one file per model family, and the registry that
//!   generates [`ModelConfig`] and [`AnyModel`].
//! - [`setup`]: defaults, a config file and command-line overrides to a [`RunConfig`].
//! - [`orchestrate`]: [`train_run`] (with refit) and [`resume_run`].
//! - [`heldout`]: the ranking evaluation of a part of a run's split.
//! - [`loaded`]: [`load_run`] and [`LoadedRun`], a trained run for inference.
//! - [`topk`]: top-K lists, item similarity and vector export of a loaded run.
//! - [`tune`]: hyper-parameter search: search spaces, random and TPE samplers, median pruning,
//!   the study log.
//! - [`retrieval`]: host-side top-K of factorised runs (exact or through an [`ann`] index)
//!   and folded-in users.
//! - [`replay`]: a run's data and split again, from its recipe.

pub use burn;

pub mod ann;
pub mod batch;
pub mod budget;
pub mod config;
pub mod device;
pub mod error;
pub mod eval;
pub mod family;
pub mod fuzz;
pub mod heldout;
pub mod loaded;
pub mod memory;
pub mod metrics;
pub mod optim;
pub mod orchestrate;
pub mod plot;
pub mod ranking;
pub mod record;
pub mod replay;
pub mod retrieval;
pub mod run_dir;
pub mod setup;
pub mod task;
pub mod topk;
pub mod trainer;
pub mod tune;

pub use batch::{ImplicitLoss, ImplicitPairs};
pub use config::{DataRecipe, RunConfig};
pub use device::{BackendKind, DeviceError, adapter_name, device, wgpu_adapters};
pub use error::{Result, TrainError};
pub use eval::{evaluate, predict};
pub use family::{
    AnyModel, DataShape, Family, Fit, FoldIn, Link, ModelConfig, ModelOverrides, NcfSetup,
    Pretrained, RatingLoss, RegressorSetup, ncf_from_pretrained, regressor_config_for_mf_run,
    regressor_from_mf_run,
};
pub use heldout::{Part, Parts, heldout_ranking};
pub use loaded::{LoadedRun, hidden_split, load_run};
pub use metrics::{Metric, RankMetric, RatingMetrics};
pub use optim::{Algorithm, GradClip, LrSchedule, OptimizerConfig, OptimizerName};
pub use orchestrate::{ResumeOptions, SELECTION_DIR, resume_run, train_run, train_run_observed};
pub use ranking::{RankingData, RankingMetrics, RankingTask, evaluate_ranking};
pub use record::{EpochRecord, PhaseSeconds, TrainSummary, metric_value};
pub use run_dir::{Checkpoint, DirState, Manifest, RunDir, check_same_ids};
pub use setup::{ConfigFile, LossName, Overrides, resume_config};
pub use task::{ImplicitLossKind, ImplicitTask, Protocol, Task, TaskKind};
pub use topk::{Scored, Vectors, recommend, similar_items, top_k};
pub use trainer::{EpochHook, EpochVerdict, TrainConfig, TrainOutcome, Trainer};
