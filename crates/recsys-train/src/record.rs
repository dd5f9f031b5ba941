//! What a training run records per epoch: one [`EpochRecord`] per line of `metrics.jsonl`,
//! written by the [`trainer`](crate::trainer) and read back by the [`run_dir`](crate::run_dir).

use serde::{Deserialize, Serialize};

use crate::metrics::{Metric, RatingMetrics};
use crate::ranking::RankingMetrics;

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
    /// Seconds per phase of the epoch's steps, with
    /// [`TrainConfig::profile`](crate::trainer::TrainConfig::profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<PhaseSeconds>,
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

/// What [`train_run`](crate::train_run) and [`resume_run`](crate::resume_run) report.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub best_epoch: usize,
    pub best_valid: Option<RatingMetrics>,
    pub best_ranking: Option<RankingMetrics>,
    /// Every epoch of the run (a resumed run's earlier epochs included).
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// Where it ran (adapter or CPU backend name).
    pub adapter: String,
}
