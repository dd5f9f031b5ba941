//! A run directory:
//!
//! ```text
//! <run>/config.toml      resolved RunConfig (model + training + backend + rating scale + data)
//! <run>/idmap.json       raw <-> dense ids (IdMap::save)
//! <run>/train-rows.bin   training ratings, for models that predict from them (AutoRec)
//! <run>/manifest.json    the committed state: epoch, files with sizes and SHA-256, best epoch
//! <run>/metrics.jsonl    one EpochRecord per epoch (the first `metrics.lines` lines count)
//! <run>/checkpoints/model-e0007.bpk      weights after epoch 7 (burnpack)
//! <run>/checkpoints/optimizer-e0007.bpk  optimiser state after epoch 7 (for resuming)
//! <run>/loss.svg         training loss and validation MSE per epoch (and loss.png)
//! <run>/<metric>.svg     validation metric per epoch (e.g. rmse.svg; and <metric>.png)
//! ```
//!
//! An epoch's checkpoint is a transaction: its weights and optimiser state go to new files named
//! by the epoch, `metrics.jsonl` is rewritten, every one of them is flushed to disk, and then one
//! rename of `manifest.json` publishes them together. The manifest names the last weights, the
//! optimiser state, the best epoch's weights (the file of that epoch, kept while it is the best)
//! and how much of `metrics.jsonl` is committed. **Readers trust the manifest only**: files it
//! does not name are leftovers of an interrupted write, removed when training starts or resumes,
//! and a named file whose size or checksum differs is an error. A crash at any point leaves the
//! previous epoch's state, whole.
//!
//! `config.toml`, `idmap.json` and `train-rows.bin` are written before the first epoch and never
//! after (but for `config.toml`'s epoch count and device, on resume). Runs written before
//! manifests existed (`model-best.bpk`, `model-last.bpk`, `optimizer-last.bpk` at the top) are
//! read as they were: every line of `metrics.jsonl` counts, and resuming one moves it to this
//! layout at its first checkpoint.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use recsys_data::io::{fault_point, is_temp_name, sync_folder};
use recsys_data::{IdMap, Interactions, Vocab};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};
use crate::metrics::Metric;
use crate::plot;
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

/// A run directory (see the module docs).
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

pub const CONFIG_FILE: &str = "config.toml";
pub const IDMAP_FILE: &str = "idmap.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub const LOSS_PLOT_FILE: &str = "loss.svg";
/// `loss.png`, the same chart as a picture.
pub const LOSS_PNG_FILE: &str = "loss.png";
/// `loss.svg` without its extension.
pub const LOSS_PLOT_STEM: &str = "loss";
pub const TRAIN_ROWS_FILE: &str = "train-rows.bin";
/// The folder of a refit run's selection run (a run directory of its own).
pub const SELECTION_DIR: &str = "selection";
/// The weights and optimiser state of runs written before manifests existed.
const LEGACY_BEST: &str = "model-best.bpk";
const LEGACY_LAST: &str = "model-last.bpk";
const LEGACY_OPTIMIZER: &str = "optimizer-last.bpk";
const ROWS_MAGIC: &[u8; 8] = b"RSROWS1\n";
/// The manifest layout this code writes (and the newest it reads).
const MANIFEST_FORMAT: u32 = 1;

/// A file of the run as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the run directory, with `/` between folders.
    pub path: String,
    pub bytes: u64,
    /// Hex SHA-256 of the content; absent only for the files of a run written before manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The committed beginning of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsEntry {
    /// Lines that count (one per committed epoch).
    pub lines: usize,
    /// Their length in bytes, line breaks included.
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The best epoch and its weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BestEntry {
    pub epoch: usize,
    pub model: FileEntry,
}

/// `manifest.json`: the committed state of a run. Renamed into place as the last step of a
/// checkpoint, so it always describes files that are complete and on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Epochs trained and committed (0 for weights published without training).
    pub epoch: usize,
    pub metrics: MetricsEntry,
    /// The weights after `epoch`.
    pub model: FileEntry,
    /// The optimiser state after `epoch` (none for weights published without training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<FileEntry>,
    /// The best validation epoch (none when the run does not validate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestEntry>,
    /// Read from a run written before manifests (never written).
    #[serde(skip)]
    pub legacy: bool,
}

impl Manifest {
    /// Every file it names, relative to the run directory.
    fn named(&self) -> Vec<&str> {
        let mut v = vec![self.model.path.as_str()];
        v.extend(self.optimizer.as_ref().map(|f| f.path.as_str()));
        v.extend(self.best.as_ref().map(|b| b.model.path.as_str()));
        v
    }
}

/// What a folder given as a run directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// Nothing there yet.
    Missing,
    /// An empty folder (or one holding only the temporary files of an interrupted write).
    Empty,
    /// A run (it has a `config.toml` or a `manifest.json`).
    Run,
    /// A folder that is not a run and holds this entry (the first found).
    Other(String),
    /// A file, not a folder.
    NotAFolder,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether `name` (an entry of a run directory) is one of the files or folders a run writes.
fn is_run_entry(name: &str) -> bool {
    const FIXED: &[&str] = &[
        CONFIG_FILE,
        IDMAP_FILE,
        METRICS_FILE,
        MANIFEST_FILE,
        CHECKPOINTS_DIR,
        SELECTION_DIR,
        TRAIN_ROWS_FILE,
        LOSS_PLOT_FILE,
        LOSS_PNG_FILE,
        LEGACY_BEST,
        LEGACY_LAST,
        LEGACY_OPTIMIZER,
    ];
    if FIXED.contains(&name) || is_temp_name(name) {
        return true;
    }
    if let Some(stem) = name
        .strip_suffix(".svg")
        .or_else(|| name.strip_suffix(".png"))
    {
        return stem.parse::<Metric>().is_ok();
    }
    if let Some(stem) = name.strip_suffix(".negative") {
        return ["train", "valid", "test"].contains(&stem);
    }
    false
}

/// Removes the file `path` (a fault point) when it exists; whether it did.
fn remove_file(path: &Path) -> Result<bool> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    fault_point("remove", path);
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(path, e)),
        _ => Ok(true),
    }
}

/// Removes the folder `path` and everything in it (a fault point) when it exists.
fn remove_folder(path: &Path) -> Result<bool> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    fault_point("remove", path);
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(path, e)),
        _ => Ok(true),
    }
}

/// The names in folder `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Result<Vec<(String, bool)>> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    out.sort();
    Ok(out)
}

impl RunDir {
    /// Creates the directory (and parents) if needed.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if !path.is_dir() {
            fault_point("mkdir", &path);
            fs::create_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
        }
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

    /// What the folder `path` holds: nothing, a run, or something else.
    pub fn probe(path: &Path) -> Result<DirState> {
        match fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Missing),
            Err(e) => return Err(TrainError::io(path, e)),
            Ok(m) if !m.is_dir() => return Ok(DirState::NotAFolder),
            Ok(_) => {}
        }
        // Temporary files are what a crash during the first write left: nothing to keep.
        let names: Vec<(String, bool)> = entries(path)?
            .into_iter()
            .filter(|(n, _)| !is_temp_name(n))
            .collect();
        if names.is_empty() {
            return Ok(DirState::Empty);
        }
        if names
            .iter()
            .any(|(n, _)| n == CONFIG_FILE || n == MANIFEST_FILE)
        {
            return Ok(DirState::Run);
        }
        Ok(DirState::Other(names[0].0.clone()))
    }

    /// Makes `path` ready for a new run: creates it, or removes the files of the run it holds
    /// (the manifest first, so that a crash half-way leaves no run that looks committed; files
    /// that are not a run's stay). A folder that holds anything else is refused.
    pub fn create_fresh(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        match Self::probe(&path)? {
            DirState::Missing => {}
            DirState::Empty => {
                let mut removed = false;
                for (name, is_dir) in entries(&path)? {
                    if !is_dir && is_temp_name(&name) {
                        removed |= remove_file(&path.join(name))?;
                    }
                }
                if removed {
                    sync_folder(&path)?;
                }
            }
            DirState::NotAFolder => {
                return Err(TrainError::format(&path, "not a folder"));
            }
            DirState::Other(name) => {
                return Err(TrainError::format(
                    &path,
                    format!(
                        "not empty and not a run directory (it holds {name:?}); give an empty \
                         or new folder"
                    ),
                ));
            }
            DirState::Run => {
                let run = Self { path: path.clone() };
                if remove_file(&run.manifest_path())? {
                    sync_folder(&path)?;
                }
                for legacy in [LEGACY_LAST, LEGACY_BEST, LEGACY_OPTIMIZER] {
                    remove_file(&path.join(legacy))?;
                }
                for (name, is_dir) in entries(&path)? {
                    if !is_run_entry(&name) {
                        continue;
                    }
                    if is_dir {
                        remove_folder(&path.join(&name))?;
                    } else {
                        remove_file(&path.join(&name))?;
                    }
                }
                sync_folder(&path)?;
            }
        }
        Self::create(path)
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

    pub fn manifest_path(&self) -> PathBuf {
        self.path.join(MANIFEST_FILE)
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

    /// The committed state: `manifest.json`, or for a run written before manifests what its
    /// files say; `None` when no epoch was ever committed (a run stopped during its first epoch).
    pub fn manifest(&self) -> Result<Option<Manifest>> {
        let path = self.manifest_path();
        match fs::read(&path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| TrainError::format(&path, format!("not a run manifest: {e}")))?;
                if m.format > MANIFEST_FORMAT {
                    return Err(TrainError::format(
                        &path,
                        format!(
                            "manifest format {} is newer than this program reads ({MANIFEST_FORMAT})",
                            m.format
                        ),
                    ));
                }
                Ok(Some(m))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.legacy_manifest(),
            Err(e) => Err(TrainError::io(&path, e)),
        }
    }

    /// The committed state, which must exist.
    pub fn committed(&self) -> Result<Manifest> {
        self.manifest()?.ok_or_else(|| {
            TrainError::format(
                &self.path,
                format!(
                    "no epoch of this run was committed (no {MANIFEST_FILE}): its training \
                     stopped before the end of the first epoch"
                ),
            )
        })
    }

    /// A run written before manifests: its top-level weights and every line of its metrics.
    fn legacy_manifest(&self) -> Result<Option<Manifest>> {
        let entry = |name: &str| -> Option<FileEntry> {
            let meta = fs::metadata(self.path.join(name)).ok()?;
            meta.is_file().then(|| FileEntry {
                path: name.to_string(),
                bytes: meta.len(),
                sha256: None,
            })
        };
        let Some(model) = entry(LEGACY_LAST) else {
            return Ok(None);
        };
        let (records, bytes) = match fs::read_to_string(self.metrics_path()) {
            Ok(text) => (parse_metrics(&self.metrics_path(), &text)?, text.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), 0),
            Err(e) => return Err(TrainError::io(self.metrics_path(), e)),
        };
        let best = entry(LEGACY_BEST).map(|model| BestEntry {
            epoch: records
                .iter()
                .rev()
                .find(|r| r.best)
                .or(records.last())
                .map_or(0, |r| r.epoch),
            model,
        });
        Ok(Some(Manifest {
            format: MANIFEST_FORMAT,
            epoch: records.len(),
            metrics: MetricsEntry {
                lines: records.len(),
                bytes: bytes as u64,
                sha256: None,
            },
            model,
            optimizer: entry(LEGACY_OPTIMIZER),
            best,
            legacy: true,
        }))
    }

    /// The committed records of `metrics.jsonl` (none before the first commit). Lines past the
    /// manifest's count are an interrupted epoch's and are not read.
    pub fn read_metrics(&self) -> Result<Vec<EpochRecord>> {
        match self.manifest()? {
            Some(m) => self.committed_metrics(&m),
            None => Ok(Vec::new()),
        }
    }

    fn committed_metrics(&self, m: &Manifest) -> Result<Vec<EpochRecord>> {
        let path = self.metrics_path();
        let text = self.committed_metrics_text(m)?;
        let records = parse_metrics(&path, &text)?;
        if !m.legacy && records.len() != m.metrics.lines {
            return Err(TrainError::format(
                &path,
                format!(
                    "{} committed lines, but {MANIFEST_FILE} records {}",
                    records.len(),
                    m.metrics.lines
                ),
            ));
        }
        Ok(records)
    }

    /// The committed beginning of `metrics.jsonl`, checked against the manifest (all of it for
    /// a run from before manifests), ending with a line break unless empty.
    fn committed_metrics_text(&self, m: &Manifest) -> Result<String> {
        let path = self.metrics_path();
        let bytes = match fs::read(&path) {
            Err(e) if m.legacy && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            other => other.map_err(|e| TrainError::io(&path, e))?,
        };
        let differs = |what: &str| {
            TrainError::format(
                &path,
                format!("{what} differs from what {MANIFEST_FILE} records: the file was changed"),
            )
        };
        let n = if m.legacy {
            bytes.len()
        } else {
            m.metrics.bytes as usize
        };
        if bytes.len() < n {
            return Err(differs("the length"));
        }
        let prefix = &bytes[..n];
        if let Some(sha) = &m.metrics.sha256
            && sha256_hex(prefix) != *sha
        {
            return Err(differs("the content"));
        }
        let mut text = String::from_utf8(prefix.to_vec())
            .map_err(|_| TrainError::format(&path, "not UTF-8 text"))?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }

    /// Reads the file `entry` names, checked against its size and checksum.
    fn read_entry(&self, entry: &FileEntry) -> Result<Vec<u8>> {
        let path = self.path.join(&entry.path);
        let mut file = fs::File::open(&path).map_err(|e| {
            TrainError::io(
                &path,
                std::io::Error::new(
                    e.kind(),
                    format!("named by the run's {MANIFEST_FILE} but cannot be opened: {e}"),
                ),
            )
        })?;
        let mut bytes = Vec::with_capacity(entry.bytes as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| TrainError::io(&path, e))?;
        let differs = |what: &str| {
            TrainError::format(
                &path,
                format!(
                    "{what} differs from what the run's {MANIFEST_FILE} records (the file was \
                     changed or damaged after training)"
                ),
            )
        };
        if bytes.len() as u64 != entry.bytes {
            return Err(differs("its size"));
        }
        if let Some(sha) = &entry.sha256
            && sha256_hex(&bytes) != *sha
        {
            return Err(differs("its checksum"));
        }
        Ok(bytes)
    }

    /// The weights `which` of the committed state. [`Checkpoint::Best`] is the last weights when
    /// the run has no best epoch (no validation).
    fn model_entry(&self, which: Checkpoint) -> Result<FileEntry> {
        let m = self.committed()?;
        Ok(match (which, m.best) {
            (Checkpoint::Best, Some(best)) => best.model,
            _ => m.model,
        })
    }

    /// The path of the weights `which` of the committed state.
    pub fn model_path(&self, which: Checkpoint) -> Result<PathBuf> {
        Ok(self.path.join(self.model_entry(which)?.path))
    }

    /// Loads the weights `which` of the committed state into `model` (built from the run's
    /// config on the target device).
    pub fn load_model<M: Module>(&self, mut model: M, which: Checkpoint) -> Result<M> {
        let entry = self.model_entry(which)?;
        let path = self.path.join(&entry.path);
        let bytes = self.read_entry(&entry)?;
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
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

    /// Loads the committed optimiser state into `optim` (built from the run's optimiser config).
    pub fn load_optimizer(&self, optim: ModuleOptimizer) -> Result<ModuleOptimizer> {
        let m = self.committed()?;
        let Some(entry) = m.optimizer else {
            return Err(TrainError::format(
                &self.path,
                "the run holds no optimiser state (its weights were not trained here)",
            ));
        };
        let path = self.path.join(&entry.path);
        let bytes = Bytes::from_bytes_vec(self.read_entry(&entry)?);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| optim.from_bytes(bytes)))
            .map_err(|_| TrainError::format(&path, "corrupt optimiser state"))?
            .map_err(|e| TrainError::format(&path, format!("cannot read optimiser state: {e}")))
    }

    /// Writes `bytes` to the file `name` of the checkpoints folder; its manifest entry.
    fn write_checkpoint_file(&self, name: &str, bytes: &[u8]) -> Result<FileEntry> {
        let dir = self.path.join(CHECKPOINTS_DIR);
        if !dir.is_dir() {
            fault_point("mkdir", &dir);
            fs::create_dir(&dir).map_err(|e| TrainError::io(&dir, e))?;
            sync_folder(&self.path)?;
        }
        recsys_data::io::write_atomic(&dir.join(name), bytes)?;
        Ok(FileEntry {
            path: format!("{CHECKPOINTS_DIR}/{name}"),
            bytes: bytes.len() as u64,
            sha256: Some(sha256_hex(bytes)),
        })
    }

    /// Commits epoch `history.last()`: the weights of `model`, the optimiser state (none for a
    /// closed-form fit), the history
    /// as `metrics.jsonl`, and (when `best`) this epoch as the best; then removes the files the
    /// new manifest no longer names. Until the manifest's rename the previous state stands.
    pub fn commit_epoch<M: Module>(
        &self,
        model: &M,
        optim: Option<&ModuleOptimizer>,
        history: &[EpochRecord],
        best: bool,
    ) -> Result<()> {
        let epoch = history.last().expect("an epoch was pushed").epoch;
        let previous = self.manifest()?;
        let model = self.write_checkpoint_file(
            &format!("model-e{epoch:04}.bpk"),
            &model_bytes(model, &self.path)?,
        )?;
        let optimizer = match optim {
            Some(optim) => {
                let bytes = optim.into_bytes().map_err(|e| {
                    TrainError::format(&self.path, format!("cannot write optimiser state: {e}"))
                })?;
                Some(self.write_checkpoint_file(&format!("optimizer-e{epoch:04}.bpk"), &bytes)?)
            }
            None => None,
        };
        let committed = match &previous {
            Some(m) => self.committed_metrics_text(m)?,
            None => String::new(),
        };
        let metrics = self.write_metrics(&committed, history.last())?;
        if metrics.lines != history.len() {
            return Err(TrainError::format(
                self.metrics_path(),
                format!(
                    "{} committed lines and a new one, but the history has {} epochs",
                    metrics.lines - 1,
                    history.len()
                ),
            ));
        }
        let best = match previous.and_then(|m| m.best) {
            _ if best => Some(BestEntry {
                epoch,
                model: model.clone(),
            }),
            // The best weights of a run from before manifests move into the checkpoints.
            Some(b) if !b.model.path.starts_with(CHECKPOINTS_DIR) => {
                let bytes = self.read_entry(&b.model)?;
                let name = format!("model-e{:04}.bpk", b.epoch);
                Some(BestEntry {
                    epoch: b.epoch,
                    model: self.write_checkpoint_file(&name, &bytes)?,
                })
            }
            kept => kept,
        };
        self.publish(Manifest {
            format: MANIFEST_FORMAT,
            epoch,
            metrics,
            model,
            optimizer,
            best,
            legacy: false,
        })
    }

    /// Publishes `model`'s weights as a run's weights without training (epoch 0, no optimiser
    /// state, no metrics): what a copy or a conversion of a model writes.
    pub fn publish_weights<M: Module>(&self, model: &M) -> Result<()> {
        let model =
            self.write_checkpoint_file("model-e0000.bpk", &model_bytes(model, &self.path)?)?;
        let metrics = self.write_metrics("", None)?;
        self.publish(Manifest {
            format: MANIFEST_FORMAT,
            epoch: 0,
            metrics,
            model,
            optimizer: None,
            best: None,
            legacy: false,
        })
    }

    /// Writes `metrics.jsonl`: the committed lines `committed` as they are (a line parsed and
    /// written again could differ in the last digit of a float), then `record`; its manifest
    /// entry.
    fn write_metrics(&self, committed: &str, record: Option<&EpochRecord>) -> Result<MetricsEntry> {
        let path = self.metrics_path();
        let mut text = committed.to_string();
        if let Some(record) = record {
            text += &serde_json::to_string(record).map_err(|e| TrainError::format(&path, e))?;
            text.push('\n');
        }
        recsys_data::io::write_atomic(&path, text.as_bytes())?;
        Ok(MetricsEntry {
            lines: text.lines().filter(|l| !l.trim().is_empty()).count(),
            bytes: text.len() as u64,
            sha256: Some(sha256_hex(text.as_bytes())),
        })
    }

    /// Renames the manifest into place (the commit), then removes what it no longer names.
    fn publish(&self, manifest: Manifest) -> Result<()> {
        let path = self.manifest_path();
        let mut text =
            serde_json::to_string_pretty(&manifest).map_err(|e| TrainError::format(&path, e))?;
        text.push('\n');
        recsys_data::io::write_atomic(&path, text.as_bytes())?;
        self.collect_garbage(Some(&manifest))
    }

    /// Forgets every trained epoch before training starts from scratch into this run: removes
    /// the manifest (first), the checkpoints, the weights of the layout before manifests and
    /// `metrics.jsonl`.
    pub fn reset_training(&self) -> Result<()> {
        if remove_file(&self.manifest_path())? {
            sync_folder(&self.path)?;
        }
        let mut removed = false;
        for legacy in [LEGACY_LAST, LEGACY_BEST, LEGACY_OPTIMIZER, METRICS_FILE] {
            removed |= remove_file(&self.path.join(legacy))?;
        }
        if removed {
            sync_folder(&self.path)?;
        }
        self.collect_garbage(None)
    }

    /// Makes the run directory match its committed state before training continues: removes
    /// the files of interrupted writes (temporary files, checkpoints the manifest does not name)
    /// and cuts `metrics.jsonl` back to its committed lines. Returns the committed state.
    pub fn recover(&self) -> Result<Option<Manifest>> {
        let manifest = self.manifest()?;
        self.collect_garbage(manifest.as_ref())?;
        let mut changed = false;
        for (name, is_dir) in entries(&self.path)? {
            if !is_dir && is_temp_name(&name) {
                changed |= remove_file(&self.path.join(name))?;
            }
        }
        if changed {
            sync_folder(&self.path)?;
        }
        if let Some(m) = &manifest
            && !m.legacy
        {
            let path = self.metrics_path();
            let len = fs::metadata(&path)
                .map_err(|e| TrainError::io(&path, e))?
                .len();
            if len > m.metrics.bytes {
                // The committed bytes as they are (a parsed and written again line could differ
                // in the last digit of a float).
                self.committed_metrics(m)?;
                let bytes = fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
                recsys_data::io::write_atomic(&path, &bytes[..m.metrics.bytes as usize])?;
            }
        }
        Ok(manifest)
    }

    /// Removes the checkpoint files `manifest` does not name (all of them without one), and, once
    /// a manifest is on disk, the weights of the layout before manifests it does not name.
    fn collect_garbage(&self, manifest: Option<&Manifest>) -> Result<()> {
        let named: Vec<&str> = manifest.map(Manifest::named).unwrap_or_default();
        let dir = self.path.join(CHECKPOINTS_DIR);
        let mut removed = false;
        for (name, is_dir) in entries(&dir)? {
            let rel = format!("{CHECKPOINTS_DIR}/{name}");
            if named.contains(&rel.as_str()) {
                continue;
            }
            removed |= if is_dir {
                remove_folder(&dir.join(name))?
            } else {
                remove_file(&dir.join(name))?
            };
        }
        if removed {
            sync_folder(&dir)?;
        }
        if let Some(m) = manifest
            && !m.legacy
        {
            let mut removed = false;
            for legacy in [LEGACY_LAST, LEGACY_BEST, LEGACY_OPTIMIZER] {
                if !named.contains(&legacy) {
                    removed |= remove_file(&self.path.join(legacy))?;
                }
            }
            if removed {
                sync_folder(&self.path)?;
            }
        }
        Ok(())
    }

    /// Writes the curves of `history` as SVG and PNG, atomically: `loss.svg` (the training
    /// loss's data term, the penalty when there is one, and the validation MSE of a run validated
    /// on ratings, on one chart) and `<metric>.svg` (the validation `metric`, when validated).
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

    /// Writes `<stem>.svg` and `<stem>.png`.
    fn write_chart(&self, stem: &str, title: &str, series: &[plot::Series<'_>]) -> Result<()> {
        let svg_path = self.path.join(format!("{stem}.svg"));
        let svg =
            plot::svg(title, "epoch", series).map_err(|e| TrainError::format(&svg_path, e))?;
        recsys_data::io::write_atomic(&svg_path, svg.as_bytes())?;
        let png_path = self.path.join(format!("{stem}.png"));
        let png =
            plot::png(title, "epoch", series).map_err(|e| TrainError::format(&png_path, e))?;
        recsys_data::io::write_atomic(&png_path, &png)?;
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

    /// Reads `train-rows.bin`, the training ratings of a model of `n_users` users and `n_items`
    /// items (a file of another shape is an error, before anything of that shape is allocated).
    pub fn read_train_rows(&self, (n_users, n_items): (usize, usize)) -> Result<Interactions> {
        let path = self.path.join(TRAIN_ROWS_FILE);
        let bytes = fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
        let bad = |m: String| TrainError::format(&path, m);
        if bytes.len() < 32 || &bytes[..8] != ROWS_MAGIC {
            return Err(bad("not a training-rows file".into()));
        }
        let word = |k: usize| {
            u64::from_le_bytes(bytes[8 + 8 * k..16 + 8 * k].try_into().unwrap()) as usize
        };
        let (users, items, len) = (word(0), word(1), word(2));
        if (users, items) != (n_users, n_items) {
            return Err(bad(format!(
                "holds ratings of {users} users and {items} items; the model has {n_users} and \
                 {n_items}"
            )));
        }
        if len.checked_mul(12).and_then(|n| n.checked_add(32)) != Some(bytes.len()) {
            return Err(bad("truncated training-rows file".into()));
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

/// The records of `metrics.jsonl` text, naming the line of the first that does not parse.
fn parse_metrics(path: &Path, text: &str) -> Result<Vec<EpochRecord>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(k, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::format(path, format!("line {}: {e}", k + 1)))
        })
        .collect()
}

/// The weights of `model` as burnpack bytes.
fn model_bytes<M: Module>(model: &M, run: &Path) -> Result<Vec<u8>> {
    let fail = |e: String| TrainError::format(run, format!("cannot write weights: {e}"));
    let mut store = BurnpackStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| fail(e.to_string()))?;
    Ok(bytes.to_vec())
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

#[cfg(test)]
mod tests {
    use recsys_models::MfOutput;

    use super::*;
    use crate::device::{BackendKind, device};
    use crate::trainer::Trainer;
    use crate::trainer::tests::{mf_config, synthetic, train_config};

    fn names(dir: &Path) -> Vec<String> {
        entries(dir).unwrap().into_iter().map(|(n, _)| n).collect()
    }

    /// A 2-epoch MF run trained into a new run directory under `root`.
    fn trained(root: &Path) -> RunDir {
        let (train, valid) = synthetic();
        let device = device(BackendKind::Flex, 0).unwrap();
        let run = RunDir::create(root.join("run")).unwrap();
        let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
        Trainer::new(train_config(2))
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, Some(&run))
            .unwrap();
        run
    }

    #[test]
    fn temporary_names_are_those_of_publish_atomic() {
        for name in [".metrics.jsonl.tmp-12-0", ".model-e0001.bpk.tmp-1-23"] {
            assert!(is_temp_name(name), "{name}");
        }
        for name in [
            "metrics.jsonl",
            ".metrics.jsonl.tmp-",
            ".a.tmp-1-x",
            "a.tmp-1-2",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
    }

    #[test]
    fn recover_leaves_the_committed_state_only() {
        let tmp = tempfile::tempdir().unwrap();
        let run = trained(tmp.path());
        let committed = run.manifest().unwrap().unwrap();
        assert_eq!((committed.epoch, committed.metrics.lines), (2, 2));
        let metrics = fs::read(run.metrics_path()).unwrap();
        // What a kill during epoch 3 could leave: its files, temporary files, a third line.
        let dir = run.path().join(CHECKPOINTS_DIR);
        fs::write(dir.join("model-e0003.bpk"), b"half").unwrap();
        fs::write(dir.join(".optimizer-e0003.bpk.tmp-9-9"), b"half").unwrap();
        fs::write(run.path().join(".manifest.json.tmp-9-10"), b"{").unwrap();
        let mut longer = metrics.clone();
        longer.extend_from_slice(b"{\"epoch\": 3, \"torn");
        fs::write(run.metrics_path(), &longer).unwrap();
        // Readers see two epochs.
        assert_eq!(run.read_metrics().unwrap().len(), 2);
        assert_eq!(run.recover().unwrap(), Some(committed.clone()));
        assert_eq!(fs::read(run.metrics_path()).unwrap(), metrics);
        let mut named: Vec<String> = committed
            .named()
            .iter()
            .map(|p| p.trim_start_matches("checkpoints/").to_string())
            .collect();
        named.sort();
        named.dedup();
        assert_eq!(names(&dir), named);
        assert!(!names(run.path()).iter().any(|n| is_temp_name(n)));
        // A changed committed line is an error, not a silent reading.
        let mut changed = metrics.clone();
        changed[10] ^= 1;
        fs::write(run.metrics_path(), &changed).unwrap();
        let err = run.read_metrics().unwrap_err().to_string();
        assert!(
            err.contains("metrics.jsonl") && err.contains("differs"),
            "{err}"
        );
    }

    #[test]
    fn create_fresh_removes_a_run_and_keeps_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        let run = trained(tmp.path());
        fs::write(run.path().join("notes.txt"), b"mine").unwrap();
        fs::write(run.path().join("valid.negative"), b"").unwrap();
        assert_eq!(RunDir::probe(run.path()).unwrap(), DirState::Run);
        RunDir::create_fresh(run.path()).unwrap();
        assert_eq!(names(run.path()), vec!["notes.txt".to_string()]);
        assert!(run.manifest().unwrap().is_none());
        assert_eq!(
            RunDir::probe(run.path()).unwrap(),
            DirState::Other("notes.txt".into())
        );
        let err = RunDir::create_fresh(run.path()).unwrap_err().to_string();
        assert!(
            err.contains("not a run directory") && err.contains("notes.txt"),
            "{err}"
        );
        // A folder holding only what an interrupted first write left counts as empty.
        let other = tmp.path().join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join(".config.toml.tmp-1-0"), b"x").unwrap();
        assert_eq!(RunDir::probe(&other).unwrap(), DirState::Empty);
        RunDir::create_fresh(&other).unwrap();
        assert!(names(&other).is_empty());
    }
}
