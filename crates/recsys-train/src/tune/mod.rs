//! Hyper-parameter search (`recsys tune`): a [`Space`] of configuration keys, a [`Sampler`]
//! (random search or [`tpe`]), the [`MedianPruner`] that stops trials whose validation curve
//! falls behind, and the [`Study`] folder with its `study.jsonl` log.
//!
//! The keys of a space are those of a run's `config.toml` (`train.optimizer.lr`, `model.l2`), or
//! a key's last part when it names one key of the configuration (`lr`, `l2`, `embedding_dim`;
//! `-` reads as `_`, so flag names work too). Every trial's values are a config-file table merged
//! over the study's own `--config`, so a trial is configured exactly as `recsys train` would be.

pub mod study;
pub mod tpe;

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::error::{Result, TrainError};

pub use study::{MedianPruner, Study, StudySettings, TrialRecord, TrialState};

/// The values a trial tries, by the space's keys.
pub type Params = BTreeMap<String, Value>;

/// Where a parameter's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// A float in `[low, high]`, drawn uniformly or (with `log`) log-uniformly.
    Float { low: f64, high: f64, log: bool },
    /// An integer in `[low, high]`, drawn uniformly or (with `log`) log-uniformly.
    Int { low: i64, high: i64, log: bool },
    /// One of these values.
    Choice(Vec<Value>),
}

/// One parameter: its key as given, the configuration path it sets, and its domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub key: String,
    /// The path of the key in `config.toml`, e.g. `["train", "optimizer", "lr"]`.
    pub path: Vec<String>,
    pub domain: Domain,
}

/// A search space: parameters in key order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Space {
    pub params: Vec<Param>,
}

fn space_err(message: String) -> TrainError {
    TrainError::Config(message)
}

impl Domain {
    /// The domain of a space entry: a table with one of `range = [low, high]`,
    /// `log = [low, high]` (integers when both bounds are) or `choice = [...]`.
    pub fn from_toml(key: &str, spec: &Table) -> Result<Self> {
        let kinds: Vec<&str> = ["range", "log", "choice"]
            .into_iter()
            .filter(|k| spec.contains_key(*k))
            .collect();
        if kinds.len() != 1 || spec.len() != 1 {
            return Err(space_err(format!(
                "search space key {key}: give exactly one of range = [low, high], \
                 log = [low, high] or choice = [...]"
            )));
        }
        let kind = kinds[0];
        let Some(Value::Array(items)) = spec.get(kind) else {
            return Err(space_err(format!(
                "search space key {key}: {kind} takes a list"
            )));
        };
        match kind {
            "choice" => Self::choice(key, items.clone()),
            _ => Self::from_bounds(key, kind == "log", items),
        }
    }

    /// The domain of a command-line entry (what follows `KEY=`): `range:LOW:HIGH`,
    /// `log:LOW:HIGH` or `choice:A,B,C` (each value read as TOML: numbers, `true`, strings).
    pub fn from_arg(key: &str, spec: &str) -> Result<Self> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let value = |s: &str| -> Value {
            let s = s.trim();
            toml::from_str::<Table>(&format!("v = {s}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| Value::String(s.to_string()))
        };
        match kind {
            "choice" if rest.trim().is_empty() => Self::choice(key, Vec::new()),
            "choice" => Self::choice(key, rest.split(',').map(value).collect()),
            "range" | "log" => {
                let bounds: Vec<Value> = rest.split(':').map(value).collect();
                Self::from_bounds(key, kind == "log", &bounds)
            }
            _ => Err(space_err(format!(
                "search space key {key}: {spec:?} is not range:LOW:HIGH, log:LOW:HIGH or \
                 choice:A,B,..."
            ))),
        }
    }

    fn choice(key: &str, items: Vec<Value>) -> Result<Self> {
        if items.is_empty() {
            return Err(space_err(format!(
                "search space key {key}: the choice is empty"
            )));
        }
        Ok(Domain::Choice(items))
    }

    fn from_bounds(key: &str, log: bool, items: &[Value]) -> Result<Self> {
        let kind = if log { "log" } else { "range" };
        let bad = || {
            space_err(format!(
                "search space key {key}: {kind} takes two numbers [low, high]"
            ))
        };
        let [a, b] = items else { return Err(bad()) };
        let domain = match (a, b) {
            (Value::Integer(low), Value::Integer(high)) => Domain::Int {
                low: *low,
                high: *high,
                log,
            },
            _ => {
                let num = |v: &Value| match v {
                    Value::Integer(i) => Some(*i as f64),
                    Value::Float(f) => Some(*f),
                    _ => None,
                };
                let (Some(low), Some(high)) = (num(a), num(b)) else {
                    return Err(bad());
                };
                Domain::Float { low, high, log }
            }
        };
        let (low, high) = domain.bounds().expect("a numeric domain");
        if !(low.is_finite() && high.is_finite()) || low >= high {
            return Err(space_err(format!(
                "search space key {key}: the {kind} [{low}, {high}] is empty (low must be \
                 below high)"
            )));
        }
        if log && low <= 0.0 {
            return Err(space_err(format!(
                "search space key {key}: a log range needs positive bounds, got [{low}, {high}]"
            )));
        }
        Ok(domain)
    }

    /// `(low, high)` of a numeric domain.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match *self {
            Domain::Float { low, high, .. } => Some((low, high)),
            Domain::Int { low, high, .. } => Some((low as f64, high as f64)),
            Domain::Choice(_) => None,
        }
    }

    fn is_log(&self) -> bool {
        matches!(
            self,
            Domain::Float { log: true, .. } | Domain::Int { log: true, .. }
        )
    }

    /// The interval the samplers work in: the bounds, or their logarithms for a log domain
    /// (integers widened by half a step, so every integer gets an equal share).
    pub fn internal_bounds(&self) -> Option<(f64, f64)> {
        let (low, high) = self.bounds()?;
        Some(match self {
            Domain::Int { log: false, .. } => (low - 0.5, high + 0.5),
            // A log domain's bounds are at least 1, so `low - 0.5` stays positive.
            Domain::Int { log: true, .. } => ((low - 0.5).ln(), (high + 0.5).ln()),
            _ if self.is_log() => (low.ln(), high.ln()),
            _ => (low, high),
        })
    }

    /// The value at internal coordinate `x` (see [`Domain::internal_bounds`]).
    pub fn value_at(&self, x: f64) -> Value {
        match *self {
            Domain::Float { low, high, log } => {
                let v = if log { x.exp() } else { x };
                Value::Float(v.clamp(low, high))
            }
            Domain::Int { low, high, log } => {
                let v = if log { x.exp() } else { x };
                Value::Integer((v.round() as i64).clamp(low, high))
            }
            Domain::Choice(ref items) => items[(x.max(0.0) as usize).min(items.len() - 1)].clone(),
        }
    }

    /// The internal coordinate of `value` (a choice's index), if it is one of the domain's.
    pub fn internal_of(&self, value: &Value) -> Option<f64> {
        let num = match value {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        };
        match self {
            Domain::Choice(items) => items.iter().position(|v| v == value).map(|i| i as f64),
            _ if self.is_log() => num.filter(|v| *v > 0.0).map(f64::ln),
            _ => num,
        }
    }

    /// A value drawn uniformly (in internal coordinates).
    pub fn sample_uniform(&self, rng: &mut StdRng) -> Value {
        match self {
            Domain::Choice(items) => items[rng.random_range(0..items.len())].clone(),
            _ => {
                let (lo, hi) = self.internal_bounds().expect("a numeric domain");
                self.value_at(lo + (hi - lo) * rng.random::<f64>())
            }
        }
    }

    /// The values worth checking before a study starts: both bounds, or every choice.
    pub fn extremes(&self) -> Vec<Value> {
        match *self {
            Domain::Float { low, high, .. } => vec![Value::Float(low), Value::Float(high)],
            Domain::Int { low, high, .. } => vec![Value::Integer(low), Value::Integer(high)],
            Domain::Choice(ref items) => items.clone(),
        }
    }

    /// The domain as a space-file entry.
    fn to_toml(&self) -> Table {
        let mut t = Table::new();
        match self {
            Domain::Float { low, high, log } => {
                let key = if *log { "log" } else { "range" };
                t.insert(
                    key.into(),
                    Value::Array(vec![Value::Float(*low), Value::Float(*high)]),
                );
            }
            Domain::Int { low, high, log } => {
                let key = if *log { "log" } else { "range" };
                t.insert(
                    key.into(),
                    Value::Array(vec![Value::Integer(*low), Value::Integer(*high)]),
                );
            }
            Domain::Choice(items) => {
                t.insert("choice".into(), Value::Array(items.clone()));
            }
        }
        t
    }
}

impl Space {
    /// Reads a space file: each key (nested tables or quoted dotted keys) maps to a table with
    /// one of `range`, `log` or `choice` (see [`Domain::from_toml`]).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let table: Table = toml::from_str(&text)
            .map_err(|e| TrainError::format(path, format!("not valid TOML: {}", e.message())))?;
        let mut space = Space::default();
        space
            .add_table(&table, "")
            .map_err(|e| TrainError::format(path, e.to_string()))?;
        if space.params.is_empty() {
            return Err(TrainError::format(path, "the search space has no key"));
        }
        Ok(space)
    }

    fn add_table(&mut self, table: &Table, prefix: &str) -> Result<()> {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let Value::Table(t) = v else {
                return Err(space_err(format!(
                    "search space key {key}: expected a table such as {{ range = [0.0, 1.0] }}"
                )));
            };
            if ["range", "log", "choice"]
                .iter()
                .any(|d| t.contains_key(*d))
            {
                self.add(&key, Domain::from_toml(&key, t)?)?;
            } else {
                self.add_table(t, &key)?;
            }
        }
        Ok(())
    }

    /// Adds a command-line entry `KEY=range:LOW:HIGH` (or `log:` / `choice:`).
    pub fn add_arg(&mut self, arg: &str) -> Result<()> {
        let Some((key, spec)) = arg.split_once('=') else {
            return Err(space_err(format!(
                "--param {arg:?}: expected KEY=range:LOW:HIGH, KEY=log:LOW:HIGH or \
                 KEY=choice:A,B,..."
            )));
        };
        let key = key.trim();
        self.add(key, Domain::from_arg(key, spec)?)
    }

    fn add(&mut self, key: &str, domain: Domain) -> Result<()> {
        let key = key.replace('-', "_");
        if self.params.iter().any(|p| p.key == key) {
            return Err(space_err(format!("search space key {key} is given twice")));
        }
        self.params.push(Param {
            path: key.split('.').map(str::to_string).collect(),
            key,
            domain,
        });
        self.params.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(())
    }

    /// Resolves every key against `config` (a run's configuration as a table): a dotted key is a
    /// path of its own, a plain key the one path of the configuration ending in it. Keys of the
    /// `[data]` table are refused: a study's data and split are fixed.
    pub fn resolve(&mut self, config: &Table) -> Result<()> {
        let mut leaves = Vec::new();
        leaf_paths(config, &mut Vec::new(), &mut leaves);
        for p in &mut self.params {
            if p.path.len() == 1 {
                let found: Vec<&Vec<String>> = leaves
                    .iter()
                    .filter(|l| l.last() == Some(&p.key) && l[0] != "data")
                    .collect();
                p.path = match found.as_slice() {
                    [one] => (*one).clone(),
                    [] => {
                        return Err(space_err(format!(
                            "unknown search space key {}: not a key of this model's \
                             configuration (see a run's config.toml)",
                            p.key
                        )));
                    }
                    many => {
                        return Err(space_err(format!(
                            "search space key {} is ambiguous: write one of {}",
                            p.key,
                            many.iter()
                                .map(|l| l.join("."))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                };
            }
            if p.path[0] == "data" {
                return Err(space_err(format!(
                    "search space key {}: the data and split are fixed for a study",
                    p.key
                )));
            }
        }
        Ok(())
    }

    /// The config-file table that sets `params` (merged over `base`).
    pub fn config_table(&self, base: &Table, params: &Params) -> Table {
        let mut table = base.clone();
        for p in &self.params {
            if let Some(v) = params.get(&p.key) {
                set_path(&mut table, &p.path, v.clone());
            }
        }
        table
    }

    /// The space as a space file (what the study folder keeps, to check a resumed study).
    pub fn to_toml(&self) -> Table {
        let mut t = Table::new();
        for p in &self.params {
            t.insert(p.path.join("."), Value::Table(p.domain.to_toml()));
        }
        t
    }

    /// Values drawn uniformly, with `rng`.
    pub fn sample_uniform(&self, rng: &mut StdRng) -> Params {
        self.params
            .iter()
            .map(|p| (p.key.clone(), p.domain.sample_uniform(rng)))
            .collect()
    }
}

/// The value at `path` in `table`.
pub fn get_path<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut t = table;
    for k in parents {
        t = t.get(k)?.as_table()?;
    }
    t.get(last)
}

fn set_path(table: &mut Table, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut t = table;
    for k in parents {
        let entry = t
            .entry(k.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        t = entry.as_table_mut().expect("a table");
    }
    t.insert(last.clone(), value);
}

fn leaf_paths(table: &Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (k, v) in table {
        prefix.push(k.clone());
        match v {
            Value::Table(t) => leaf_paths(t, prefix, out),
            _ => out.push(prefix.clone()),
        }
        prefix.pop();
    }
}

/// How a study draws its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Every trial uniformly at random (log-uniformly on log ranges).
    Random,
    /// Tree-structured Parzen estimators after `startup_trials` random trials.
    Tpe,
}

/// Draws the values of trial `trial`, from the finished trials so far.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub kind: SamplerKind,
    pub seed: u64,
    /// TPE: random trials before the model takes over.
    pub startup_trials: usize,
}

impl Sampler {
    /// The values of trial number `trial`: a pure function of the seed, the trial number and
    /// `history` (finished trials with their values, lower is better).
    pub fn sample(&self, space: &Space, trial: usize, history: &[(Params, f64)]) -> Params {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, trial as u64));
        match self.kind {
            SamplerKind::Tpe if history.len() >= self.startup_trials.max(1) => {
                tpe::sample(space, history, &mut rng)
            }
            _ => space.sample_uniform(&mut rng),
        }
    }
}

/// SplitMix64 of `a` and `b`: independent random streams per trial.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
