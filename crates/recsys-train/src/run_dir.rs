//! A run directory:
//!
//! ```text
//! <run>/config.toml      resolved RunConfig (model + training + backend + rating scale)
//! <run>/idmap.json       raw <-> dense ids (IdMap::save)
//! <run>/metrics.jsonl    one EpochRecord per epoch
//! <run>/model-best.bpk   weights of the best validation epoch (burnpack)
//! <run>/model-last.bpk   weights after the last epoch
//! ```
//!
//! Every file is written to a temporary name and renamed into place.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use recsys_data::IdMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, TrainError};
use crate::trainer::EpochRecord;

/// Which weights of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checkpoint {
    /// The best validation epoch (falls back to `Last` when the run had no validation data).
    #[default]
    Best,
    Last,
}

impl Checkpoint {
    pub fn file_name(self) -> &'static str {
        match self {
            Checkpoint::Best => "model-best.bpk",
            Checkpoint::Last => "model-last.bpk",
        }
    }
}

/// A run directory (see the module docs).
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

pub const CONFIG_FILE: &str = "config.toml";
pub const IDMAP_FILE: &str = "idmap.json";
pub const METRICS_FILE: &str = "metrics.jsonl";

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes).map_err(|e| TrainError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

impl RunDir {
    /// Creates the directory (and parents) if needed.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
        Ok(Self { path })
    }

    /// Opens an existing run: the directory must hold a `config.toml`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let config = path.join(CONFIG_FILE);
        if !config.is_file() {
            return Err(TrainError::format(
                &path,
                format!("not a run directory (no {CONFIG_FILE})"),
            ));
        }
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn idmap_path(&self) -> PathBuf {
        self.path.join(IDMAP_FILE)
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }

    pub fn model_path(&self, which: Checkpoint) -> PathBuf {
        self.path.join(which.file_name())
    }

    /// Writes `config.toml`.
    pub fn write_config<C: Serialize>(&self, config: &C) -> Result<()> {
        let path = self.config_path();
        let text = toml::to_string_pretty(config).map_err(|e| TrainError::format(&path, e))?;
        write_atomic(&path, text.as_bytes())
    }

    /// Reads `config.toml`.
    pub fn read_config<C: DeserializeOwned>(&self) -> Result<C> {
        let path = self.config_path();
        let text = fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        toml::from_str(&text).map_err(|e| TrainError::format(&path, e))
    }

    pub fn write_idmap(&self, ids: &IdMap) -> Result<()> {
        Ok(ids.save(&self.idmap_path())?)
    }

    pub fn read_idmap(&self) -> Result<IdMap> {
        Ok(IdMap::load(&self.idmap_path())?)
    }

    /// Empties `metrics.jsonl` (at the start of training).
    pub fn reset_metrics(&self) -> Result<()> {
        let path = self.metrics_path();
        fs::write(&path, b"").map_err(|e| TrainError::io(&path, e))
    }

    /// Appends one line to `metrics.jsonl`.
    pub fn append_metrics(&self, record: &EpochRecord) -> Result<()> {
        let path = self.metrics_path();
        let mut line = serde_json::to_string(record).map_err(|e| TrainError::format(&path, e))?;
        line.push('\n');
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        file.write_all(line.as_bytes())
            .map_err(|e| TrainError::io(&path, e))
    }

    /// Reads `metrics.jsonl`.
    pub fn read_metrics(&self) -> Result<Vec<EpochRecord>> {
        let path = self.metrics_path();
        let text = fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(k, l)| {
                serde_json::from_str(l)
                    .map_err(|e| TrainError::format(&path, format!("line {}: {e}", k + 1)))
            })
            .collect()
    }

    /// Writes the weights of `model` (burnpack) to `which`, through a temporary file.
    pub fn save_model<M: Module>(&self, model: &M, which: Checkpoint) -> Result<()> {
        let path = self.model_path(which);
        let tmp = tmp_path(&path);
        let mut store = BurnpackStore::from_file(&tmp)
            .auto_extension(false)
            .overwrite(true);
        model
            .save_into(&mut store)
            .map_err(|e| TrainError::format(&tmp, format!("cannot write weights: {e}")))?;
        fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))
    }

    /// Loads the weights `which` into `model` (built from the run's config on the target device).
    /// [`Checkpoint::Best`] falls back to `Last` when the run saved no best weights.
    pub fn load_model<M: Module>(&self, mut model: M, which: Checkpoint) -> Result<M> {
        let mut path = self.model_path(which);
        if which == Checkpoint::Best && !path.is_file() {
            path = self.model_path(Checkpoint::Last);
        }
        if !path.is_file() {
            return Err(TrainError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no saved weights"),
            ));
        }
        let mut store = BurnpackStore::from_file(&path).auto_extension(false);
        let result = model
            .load_from(&mut store)
            .map_err(|e| TrainError::format(&path, format!("cannot read weights: {e}")))?;
        if !result.errors.is_empty() || !result.missing.is_empty() {
            let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
            let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
            return Err(TrainError::format(
                &path,
                format!(
                    "weights do not fit the model: missing [{}], errors [{}]",
                    missing.join(", "),
                    errors.join("; ")
                ),
            ));
        }
        Ok(model)
    }
}
