//! Errors of loading and serving runs.

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Train(#[from] recsys_train::TrainError),
    #[error(transparent)]
    Data(#[from] recsys_data::DataError),
    #[error("{0}")]
    Config(String),
    #[error("{addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}
