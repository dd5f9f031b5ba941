//! A run directory:
//!
//! ```text
//! <run>/config.toml      resolved RunConfig (model + training + backend + rating scale)
//! <run>/idmap.json       raw <-> dense ids (IdMap::save)
//! <run>/metrics.jsonl    one EpochRecord per epoch
//! <run>/model-best.bpk   weights of the best validation epoch (burnpack)
//! <run>/model-last.bpk   weights after the last epoch
//! <run>/optimizer-last.bpk  optimiser state after the last epoch (for resuming)
//! <run>/loss.svg         training loss and validation MSE per epoch
//! <run>/<metric>.svg     validation metric per epoch (e.g. rmse.svg)
//! <run>/train-rows.bin   training ratings, for models that predict from them (AutoRec)
//! ```
//!
//! Every file is written to a temporary name and renamed into place.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use recsys_data::{IdMap, Interactions, Vocab};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, TrainError};
use crate::metrics::Metric;
use crate::plot::line_chart;
use crate::record::{EpochRecord, metric_value};

/// Which weights of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
pub const OPTIMIZER_FILE: &str = "optimizer-last.bpk";
/// `loss.svg`.
pub const LOSS_PLOT_STEM: &str = "loss";
pub const TRAIN_ROWS_FILE: &str = "train-rows.bin";
const ROWS_MAGIC: &[u8; 8] = b"RSROWS1\n";

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
        Ok(recsys_data::io::write_atomic(&path, text.as_bytes())?)
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
        recsys_data::io::publish_atomic(&self.model_path(which), |tmp| {
            let mut store = BurnpackStore::from_file(tmp)
                .auto_extension(false)
                .overwrite(true);
            model
                .save_into(&mut store)
                .map_err(|e| TrainError::format(tmp, format!("cannot write weights: {e}")))
        })
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

    pub fn optimizer_path(&self) -> PathBuf {
        self.path.join(OPTIMIZER_FILE)
    }

    /// Writes the optimiser state (burnpack), through a temporary file.
    pub fn save_optimizer(&self, optim: &ModuleOptimizer) -> Result<()> {
        recsys_data::io::publish_atomic(&self.optimizer_path(), |tmp| {
            optim
                .save(tmp)
                .map_err(|e| TrainError::format(tmp, format!("cannot write optimiser state: {e}")))
        })
    }

    /// Loads the saved optimiser state into `optim` (built from the run's optimiser config).
    pub fn load_optimizer(&self, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
        let path = self.optimizer_path();
        if !path.is_file() {
            return Err(TrainError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no saved optimiser state"),
            ));
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| optim.load(&path)))
            .map_err(|_| TrainError::format(&path, "corrupt optimiser state"))?
            .map_err(|e| TrainError::format(&path, format!("cannot read optimiser state: {e}")))
    }

    /// Writes the curves of `history` as SVG, atomically: `loss.svg` (the training loss's data
    /// term, the penalty when there is one, and the validation MSE of a run validated on
    /// ratings, on one chart) and `<metric>.svg` (the validation `metric`, when validated).
    pub fn write_curves(&self, history: &[EpochRecord], metric: Metric) -> Result<()> {
        let series = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .iter()
                .filter_map(|r| f(r).map(|y| (r.epoch as f64, y)))
                .collect()
        };
        let penalised = history.iter().any(|r| r.train_penalty > 0.0);
        let mut losses = vec![(
            if penalised {
                "training loss (data term)"
            } else {
                "training loss"
            },
            series(&|r| Some(r.train_loss - r.train_penalty)),
        )];
        let valid_mse = series(&|r| r.valid.as_ref().map(|v| v.mse));
        if !valid_mse.is_empty() {
            losses.push(("validation mse", valid_mse));
        }
        if penalised {
            losses.push(("penalty", series(&|r| Some(r.train_penalty))));
        }
        self.write_chart(LOSS_PLOT_STEM, "loss", &losses)?;
        let valid = series(&|r| metric_value(metric, r.valid.as_ref(), r.ranking.as_ref()));
        if !valid.is_empty() {
            let name = metric.name();
            self.write_chart(
                &name,
                &format!("validation {name}"),
                &[(format!("validation {name}").as_str(), valid)],
            )?;
        }
        Ok(())
    }

    /// Writes `<stem>.svg`.
    fn write_chart(
        &self,
        stem: &str,
        title: &str,
        series: &[(&str, Vec<(f64, f64)>)],
    ) -> Result<()> {
        let svg = line_chart(title, "epoch", series);
        recsys_data::io::write_atomic(&self.path.join(format!("{stem}.svg")), svg.as_bytes())?;
        Ok(())
    }

    /// Writes the training ratings (`train-rows.bin`: magic, `n_users`, `n_items`, `len` as `u64`,
    /// then users, items as `u32` and ratings as `f32`, little-endian).
    pub fn write_train_rows(&self, data: &Interactions) -> Result<()> {
        let mut bytes = Vec::with_capacity(32 + 12 * data.len());
        bytes.extend_from_slice(ROWS_MAGIC);
        for n in [data.n_users, data.n_items, data.len()] {
            bytes.extend_from_slice(&(n as u64).to_le_bytes());
        }
        data.users
            .iter()
            .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        data.items
            .iter()
            .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        data.ratings
            .iter()
            .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
        Ok(recsys_data::io::write_atomic(
            &self.path.join(TRAIN_ROWS_FILE),
            &bytes,
        )?)
    }

    /// Reads `train-rows.bin`.
    pub fn read_train_rows(&self) -> Result<Interactions> {
        let path = self.path.join(TRAIN_ROWS_FILE);
        let bytes = fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
        let bad = |m: &str| TrainError::format(&path, m);
        if bytes.len() < 32 || &bytes[..8] != ROWS_MAGIC {
            return Err(bad("not a training-rows file"));
        }
        let word = |k: usize| {
            u64::from_le_bytes(bytes[8 + 8 * k..16 + 8 * k].try_into().unwrap()) as usize
        };
        let (n_users, n_items, len) = (word(0), word(1), word(2));
        if bytes.len() != 32 + 12 * len {
            return Err(bad("truncated training-rows file"));
        }
        let u32s = |k: usize| -> Vec<u32> {
            bytes[32 + 4 * len * k..32 + 4 * len * (k + 1)]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let ratings = u32s(2).into_iter().map(f32::from_bits).collect();
        Interactions::new(u32s(0), u32s(1), ratings, None, n_users, n_items)
            .map_err(|e| TrainError::format(&path, e))
    }
}

/// `Err` naming the first difference between the id map of the run `run` and the data's `ids`.
pub fn check_same_ids(run: &Path, run_ids: &IdMap, ids: &IdMap) -> Result<()> {
    let diff = |what: &str, a: &Vocab, b: &Vocab| -> Option<String> {
        if a.len() != b.len() {
            return Some(format!(
                "{what}: the run has {}, the data has {}",
                a.len(),
                b.len()
            ));
        }
        let (a, b) = (a.raw_ids(), b.raw_ids());
        (0..a.len()).find(|&k| a[k] != b[k]).map(|k| {
            format!(
                "{what}: dense index {k} is {:?} in the run but {:?} in the data",
                a[k], b[k]
            )
        })
    };
    match diff("users", &run_ids.users, &ids.users)
        .or_else(|| diff("items", &run_ids.items, &ids.items))
    {
        Some(detail) => Err(TrainError::IdMapMismatch {
            run: run.to_path_buf(),
            detail,
        }),
        None => Ok(()),
    }
}
