//! Errors of model construction.

/// What can go wrong when building a model from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
