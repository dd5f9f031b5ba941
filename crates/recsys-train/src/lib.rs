//! # recsys-train
//!
//! Training, evaluation and run directories for the models of `recsys-models` on the data of
//! `recsys-data`, on any Burn backend chosen at run time ([`device::device`]).
//!
//! - [`device`]: `ndarray | flex | wgpu` to an autodiff [`Device`](burn::tensor::Device).
//! - [`optim`]: optimiser / schedule / clipping settings built into Burn's optimisers.
//! - [`metrics`]: RMSE, MAE, MSE, MAPE, R² on slices.
//! - [`batch`]: seeded shuffled mini-batches of interactions as device tensors.
//! - [`ranking`]: HR / NDCG / Recall / Precision / MAP / MRR@K and AUC, sampled and full.
//! - [`trainer`]: the training loop, generic over [`RatingModel`](recsys_models::RatingModel).
//! - [`run_dir`]: `config.toml`, `idmap.json`, `metrics.jsonl`, `model-{best,last}.bpk`,
//!   `optimizer-last.bpk`, `loss.svg` and `<metric>.svg`.
//! - [`plot`]: the hand-written SVG line charts of the run directory.
//! - [`run`]: the CLI's entry points ([`train_run`], [`resume_run`], [`load_run`],
//!   [`regressor_from_mf_run`]).

pub use burn;

pub mod batch;
pub mod device;
pub mod error;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod ranking;
pub mod run;
pub mod run_dir;
pub mod topk;
pub mod trainer;

pub use batch::{ImplicitLoss, ImplicitPairs};
pub use device::{BackendKind, DeviceError, adapter_name, device, wgpu_adapters};
pub use error::{Result, TrainError};
pub use metrics::{Metric, RankMetric, RatingMetrics};
pub use optim::{Algorithm, GradClip, LrSchedule, OptimizerConfig};
pub use ranking::{RankingData, RankingMetrics, RankingTask, evaluate_ranking};
pub use run::{
    AnyModel, ImplicitTask, LoadedRun, ModelConfig, NcfRun, Pretrained, RegressorRun, RunConfig,
    Task, TrainSummary, check_same_ids, load_run, ncf_from_pretrained, regressor_config_for_mf_run,
    regressor_from_mf_run, resume_run, train_run,
};
pub use run_dir::{Checkpoint, RunDir};
pub use topk::{Scored, Vectors, recommend, similar_items, top_k};
pub use trainer::{
    EpochRecord, TrainConfig, TrainOutcome, Trainer, evaluate, hidden_ratings_check, predict,
};
