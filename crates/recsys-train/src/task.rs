//! What a run learns: ratings, or implicit feedback with its loss and validation ranking. Every
//! choice among a fixed set is an enum whose serde and command-line names are one list.

use serde::{Deserialize, Serialize};

use crate::batch::ImplicitLoss;
use crate::error::{Result, TrainError};

/// What a run learns from: ratings, or implicit feedback (every rated pair is a positive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Predict ratings; validate with rating metrics.
    #[default]
    Rating,
    /// Rank items; train on positives and sampled negatives, validate by ranking.
    Implicit(ImplicitTask),
}

impl Task {
    pub fn kind(&self) -> TaskKind {
        match self {
            Task::Rating => TaskKind::Rating,
            Task::Implicit(_) => TaskKind::Implicit,
        }
    }

    pub fn implicit(&self) -> Option<&ImplicitTask> {
        match self {
            Task::Rating => None,
            Task::Implicit(t) => Some(t),
        }
    }
}

/// The two tasks, as named on the command line and in `config.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Predict ratings.
    Rating,
    /// Rank items: every rated pair is a positive, unseen items are sampled as negatives.
    Implicit,
}

/// The loss of implicit-feedback training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ImplicitLossKind {
    /// Pointwise binary cross-entropy with sampled negatives.
    Bce,
    /// Pairwise BPR: each positive against one sampled negative.
    Bpr,
    /// In-batch softmax (the two-tower retrieval task).
    Softmax,
}

/// How a ranking validation or evaluation ranks the held-out items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Each held-out pair among fixed sampled negatives (NCF).
    Sampled,
    /// All items, the user's known items excluded.
    Full,
    /// Each held-out pair among all items, nothing excluded (TFRS' top-K accuracy).
    Factorized,
}

/// Settings of implicit-feedback training and its validation ranking (the `[task]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImplicitTask {
    pub loss: ImplicitLossKind,
    /// Sampled negatives per positive for `bce`.
    pub negatives: usize,
    /// Validation protocol.
    pub protocol: Protocol,
    /// Negatives per held-out pair in the sampled protocol (NCF: 99).
    pub eval_negatives: usize,
    /// The cutoffs reported during validation.
    pub ks: Vec<usize>,
}

impl Default for ImplicitTask {
    fn default() -> Self {
        Self {
            loss: ImplicitLossKind::Bce,
            negatives: 4,
            protocol: Protocol::Sampled,
            eval_negatives: 99,
            ks: vec![10],
        }
    }
}

impl ImplicitTask {
    /// TensorFlow Recommenders' retrieval task: in-batch softmax, factorized top-K accuracy.
    pub fn retrieval() -> Self {
        Self {
            loss: ImplicitLossKind::Softmax,
            protocol: Protocol::Factorized,
            ks: vec![1, 5, 10, 50, 100],
            ..Self::default()
        }
    }

    pub fn implicit_loss(&self) -> Result<ImplicitLoss> {
        match self.loss {
            ImplicitLossKind::Bce if self.negatives == 0 => Err(TrainError::Config(
                "implicit bce needs at least 1 negative per positive".into(),
            )),
            ImplicitLossKind::Bce => Ok(ImplicitLoss::Bce {
                negatives: self.negatives,
            }),
            ImplicitLossKind::Bpr => Ok(ImplicitLoss::Bpr),
            ImplicitLossKind::Softmax => Ok(ImplicitLoss::InBatch),
        }
    }

    /// The share of positives among the training examples (the starting global mean of models
    /// with a logit output).
    pub fn positive_share(&self) -> f64 {
        match self.loss {
            ImplicitLossKind::Bce => 1.0 / (1.0 + self.negatives as f64),
            _ => 0.5,
        }
    }
}
