//! A study folder: `study.toml` (what the study searches and how; a resumed study must match
//! it), `study.jsonl` (one [`TrialRecord`] per finished trial), `trial-NNNN/` (each a run
//! directory), and, once done, `best.toml` and `best/`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Table;

use super::{Params, SamplerKind};
use crate::error::{Result, TrainError};
use crate::metrics::Metric;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrialState {
    /// Trained to its end (or to early stopping).
    Complete,
    /// Stopped by the pruner: its validation curve fell behind the other trials'.
    Pruned,
    /// Training failed (e.g. the loss diverged); `error` says why.
    Failed,
}

/// One line of `study.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// 0-based; the trial's run directory is `trial-NNNN`.
    pub trial: usize,
    pub state: TrialState,
    pub params: Params,
    /// The best validation value of the study's metric (none for a failed trial).
    pub value: Option<f64>,
    pub best_epoch: Option<usize>,
    /// The validation metric after each epoch.
    pub curve: Vec<f64>,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Median pruning (as Optuna's `MedianPruner`): after `warmup_epochs` epochs, a trial stops when
/// its best value so far is worse than the median of the other trials' best values at the same
/// epoch, once `startup_trials` trials have finished.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MedianPruner {
    pub startup_trials: usize,
    pub warmup_epochs: usize,
}

impl MedianPruner {
    /// Whether a trial with validation curve `curve` (oriented: lower is better) stops now,
    /// given the oriented curves of the finished trials.
    pub fn should_prune(&self, curve: &[f64], finished: &[Vec<f64>]) -> bool {
        let epoch = curve.len();
        if epoch < self.warmup_epochs.max(1) || finished.len() < self.startup_trials.max(1) {
            return false;
        }
        let mut others: Vec<f64> = finished
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| best_so_far(&c[..epoch.min(c.len())]))
            .filter(|v| v.is_finite())
            .collect();
        if others.is_empty() {
            return false;
        }
        others.sort_by(f64::total_cmp);
        let n = others.len();
        let median = if n % 2 == 1 {
            others[n / 2]
        } else {
            0.5 * (others[n / 2 - 1] + others[n / 2])
        };
        best_so_far(curve) > median
    }
}

fn best_so_far(curve: &[f64]) -> f64 {
    curve.iter().copied().fold(f64::INFINITY, f64::min)
}

/// What a study searches and how: kept in `study.toml`; resuming with other settings is an
/// error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySettings {
    /// The `--model` name.
    pub model: String,
    /// The validation metric the study optimises.
    pub metric: Metric,
    pub sampler: SamplerKind,
    pub seed: u64,
    pub startup_trials: usize,
    pub pruner: Option<MedianPruner>,
    /// The search space, as a space file.
    pub space: Table,
    /// Every trial's configuration before the trial's values and the data's sizes.
    pub base: Table,
}

impl StudySettings {
    /// `value` oriented so that lower is better.
    pub fn oriented(&self, value: f64) -> f64 {
        if self.metric.higher_is_better() {
            -value
        } else {
            value
        }
    }
}

/// An open study folder and its finished trials.
#[derive(Debug)]
pub struct Study {
    pub dir: PathBuf,
    pub settings: StudySettings,
    pub records: Vec<TrialRecord>,
    /// `study.jsonl` as read and written: finished trials' lines are kept byte for byte.
    log: String,
}

impl Study {
    pub const SETTINGS: &'static str = "study.toml";
    pub const LOG: &'static str = "study.jsonl";

    /// Opens `dir`: a new study (the folder is created and `study.toml` written), or the study
    /// already there, whose settings must equal `settings` and whose finished trials are read
    /// back (they are not run again).
    pub fn open(dir: &Path, settings: StudySettings) -> Result<Self> {
        let settings_path = dir.join(Self::SETTINGS);
        let text = toml::to_string(&settings)
            .map_err(|e| TrainError::Config(format!("cannot write the study settings: {e}")))?;
        let (records, log) = if settings_path.exists() {
            let old = std::fs::read_to_string(&settings_path)
                .map_err(|e| TrainError::io(&settings_path, e))?;
            if old != text {
                return Err(TrainError::format(
                    &settings_path,
                    "this study was started with another model, metric, sampler, seed, search \
                     space or base configuration; resume it with the same flags, or give a new \
                     --out",
                ));
            }
            read_log(&dir.join(Self::LOG))?
        } else {
            if dir.join(Self::LOG).exists() {
                return Err(TrainError::format(
                    dir.join(Self::LOG),
                    format!("a study log without {}", Self::SETTINGS),
                ));
            }
            std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
            recsys_data::io::write_atomic(&settings_path, text.as_bytes())?;
            (Vec::new(), String::new())
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            settings,
            records,
            log,
        })
    }

    /// The run directory of trial `trial`.
    pub fn trial_dir(&self, trial: usize) -> PathBuf {
        self.dir.join(format!("trial-{trial:04}"))
    }

    /// The number of the next trial.
    pub fn next_trial(&self) -> usize {
        self.records.len()
    }

    /// Appends `record` to `study.jsonl`: the whole log is written to a temporary file and
    /// renamed, so an interruption leaves either the old log or the new one.
    pub fn record(&mut self, record: TrialRecord) -> Result<()> {
        let line = serde_json::to_string(&record)
            .map_err(|e| TrainError::Config(format!("cannot write a trial record: {e}")))?;
        let mut text = self.log.clone();
        text += &line;
        text.push('\n');
        recsys_data::io::write_atomic(&self.dir.join(Self::LOG), text.as_bytes())?;
        self.log = text;
        self.records.push(record);
        Ok(())
    }

    /// Finished trials with their oriented values for a sampler: failed trials count as the
    /// worst there is, so the sampler moves away from them.
    pub fn history(&self) -> Vec<(Params, f64)> {
        self.records
            .iter()
            .map(|r| {
                let v = r.value.map_or(f64::INFINITY, |v| self.settings.oriented(v));
                (r.params.clone(), if v.is_nan() { f64::INFINITY } else { v })
            })
            .collect()
    }

    /// The oriented validation curves of the finished trials, for the pruner.
    pub fn curves(&self) -> Vec<Vec<f64>> {
        self.records
            .iter()
            .filter(|r| r.state != TrialState::Failed)
            .map(|r| r.curve.iter().map(|&v| self.settings.oriented(v)).collect())
            .collect()
    }

    /// The complete trial with the best value (the earliest among equals).
    pub fn best(&self) -> Option<&TrialRecord> {
        self.records
            .iter()
            .filter(|r| r.state == TrialState::Complete)
            .filter_map(|r| r.value.map(|v| (self.settings.oriented(v), r)))
            .filter(|(v, _)| !v.is_nan())
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.trial.cmp(&b.1.trial)))
            .map(|(_, r)| r)
    }
}

/// The records of `study.jsonl` and its text (ending in a line break unless empty).
fn read_log(path: &Path) -> Result<(Vec<TrialRecord>, String)> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), String::new()));
        }
        Err(e) => return Err(TrainError::io(path, e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut records = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: TrialRecord = serde_json::from_str(line)
            .map_err(|e| TrainError::format(path, format!("line {}: {e}", i + 1)))?;
        if r.trial != records.len() {
            return Err(TrainError::format(
                path,
                format!(
                    "line {}: trial {} where trial {} was expected",
                    i + 1,
                    r.trial,
                    records.len()
                ),
            ));
        }
        records.push(r);
    }
    Ok((records, text))
}
