//! Errors of training, evaluation and run directories.

use std::path::PathBuf;

use crate::device::DeviceError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Model(#[from] recsys_models::ModelError),
    #[error(transparent)]
    Data(#[from] recsys_data::DataError),
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but cannot be read as what it should be (TOML, JSON, weights).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "training diverged: loss is {value} at epoch {epoch}, step {step}; \
         lower the learning rate or set gradient clipping"
    )]
    NonFiniteLoss {
        epoch: usize,
        step: usize,
        value: f32,
    },
    /// A run directory was built on other users or items than the data at hand.
    #[error("{run}: the run's id map differs from the data's: {detail}")]
    IdMapMismatch { run: PathBuf, detail: String },
    #[error("no training data: the training set is empty")]
    EmptyTrainingSet,
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        TrainError::Format {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
