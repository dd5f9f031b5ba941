//! A run's configuration from its parts, in order: the defaults of the model's family and task,
//! a config file (the layout of `config.toml`), then the typed command-line overrides; sized by
//! the data last. The CLI only parses flags into [`Overrides`].

use std::path::{Path, PathBuf};

use recsys_data::{NormalizeKind, Normalizer};
use serde::Serialize;
use toml::Table;

use crate::config::{DataRecipe, RunConfig};
use crate::device::BackendKind;
use crate::error::{Result, TrainError};
use crate::family::{DataShape, ModelConfig, ModelOverrides, RatingLoss};
use crate::metrics::{Metric, RankMetric};
use crate::optim::{Algorithm, OptimizerName};
use crate::task::{ImplicitLossKind, Protocol, Task, TaskKind};
use crate::trainer::TrainConfig;

/// Every loss `--loss` names: `mse` and `bce` for ratings, `bce`, `bpr` and `softmax` for
/// implicit feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LossName {
    Mse,
    Bce,
    Bpr,
    Softmax,
}

/// Settings given on the command line; `None` (or `false`) keeps the file's or the default.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub backend: Option<BackendKind>,
    pub device_index: Option<usize>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub readback_steps: Option<usize>,
    pub profile: bool,
    pub refit: Option<bool>,
    /// Seeds the split, the initial weights, shuffling and negative sampling.
    pub seed: Option<u64>,
    pub patience: Option<usize>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub optimizer: Option<OptimizerName>,
    pub metric: Option<Metric>,
    pub task: Option<TaskKind>,
    pub loss: Option<LossName>,
    pub negatives: Option<usize>,
    pub protocol: Option<Protocol>,
    /// Rating normalisation (rating tasks only).
    pub normalize: Option<NormalizeKind>,
    pub model: ModelOverrides,
}

/// A config file read as a table (merged over the defaults, so it may give any subset).
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    table: Table,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let table = toml::from_str(&text)
            .map_err(|e| TrainError::format(path, format!("not valid TOML: {}", e.message())))?;
        Ok(Self {
            path: path.to_path_buf(),
            table,
        })
    }

    /// A config file made in memory (`path` names it in messages), e.g. a tuning trial's values
    /// over the study's own config file.
    pub fn from_table(path: impl Into<PathBuf>, table: Table) -> Self {
        Self {
            path: path.into(),
            table,
        }
    }

    /// The file's table as read.
    pub fn table(&self) -> &Table {
        &self.table
    }

    fn get(&self, table: &str, key: &str) -> Option<&toml::Value> {
        self.table.get(table)?.get(key)
    }
}

/// The configuration of a run of model `name` (a `--model` name) before the data is read: the
/// family's defaults for the task, then `file`, then `overrides`. [`size`] completes it.
pub fn draft(name: &str, file: Option<&ConfigFile>, mut overrides: Overrides) -> Result<RunConfig> {
    let mut model_overrides = std::mem::take(&mut overrides.model);
    let name = ModelConfig::canonical(name).unwrap_or(name);
    let family = ModelConfig::family_of(name);
    if let Some(f) = file
        && let Some(given) = f.get("model", "family").and_then(|v| v.as_str())
        && family != ModelConfig::family_of(given).or(Some(given))
    {
        return Err(config_err(format!(
            "{} configures model {given:?}, but --model {name} was given",
            f.path.display()
        )));
    }
    let kind = match overrides.task {
        Some(kind) => kind,
        None => match file
            .and_then(|f| f.get("task", "kind"))
            .and_then(|v| v.as_str())
        {
            Some("implicit") => TaskKind::Implicit,
            _ => ModelConfig::default_task(name)?,
        },
    };
    let (model, implicit_defaults) = ModelConfig::named(name, kind, &mut model_overrides)?;
    let task_of = |kind| match kind {
        TaskKind::Rating => Task::Rating,
        TaskKind::Implicit => Task::Implicit(implicit_defaults.clone()),
    };
    let mut defaults = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: TrainConfig::default(),
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [1.0, 5.0],
        task: task_of(kind),
        data: DataRecipe::default(),
    };
    defaults
        .model
        .train_defaults(&defaults.task, &mut defaults.train);
    // A batch size or learning rate given anywhere holds as given; the family's defaults grow
    // with the data (see `size`).
    let in_file = |keys: &[&str]| {
        file.is_some_and(|f| {
            let mut v: Option<&toml::Value> = f.table.get("train");
            for k in keys {
                v = v.and_then(|v| v.get(*k));
            }
            v.is_some()
        })
    };
    let scale_batch = defaults.model.scales_batch()
        && overrides.batch_size.is_none()
        && overrides.lr.is_none()
        && !in_file(&["batch_size"])
        && !in_file(&["optimizer", "lr"]);
    let refit_by_default =
        defaults.train.refit && overrides.refit.is_none() && !in_file(&["refit"]);
    let mut config = match file {
        Some(f) => merged(defaults, f)?,
        None => defaults,
    };
    if config.task.kind() != kind {
        config.task = task_of(kind);
    }
    apply(&mut config, overrides, model_overrides)?;
    config.train.scale_batch = scale_batch;
    config.train.refit_by_default = refit_by_default;
    Ok(config)
}

/// Sizes `config` from the data: its users and items, rating scale, and the training part's
/// mean rating and number of examples (which scale a family's default batch size, see
/// [`TrainConfig::scale_to`]); fits the rating normalisation (the model is sized for normalised
/// ratings); records `recipe`.
pub fn size(
    config: &mut RunConfig,
    n_users: usize,
    n_items: usize,
    scale: (f32, f32),
    train: (usize, f64),
    recipe: DataRecipe,
) -> Result<()> {
    let (n_train, train_mean) = train;
    if std::mem::take(&mut config.train.scale_batch) {
        config.train.scale_to(n_train);
    }
    config.normalizer = Normalizer::fit_kind(config.normalize, scale, train_mean)
        .map_err(|e| config_err(format!("--normalize {}: {e}", config.normalize.name())))?;
    let n = config.normalizer;
    let shape = match &config.task {
        Task::Rating => DataShape {
            n_users,
            n_items,
            scale: (n.forward(scale.0), n.forward(scale.1)),
            mean: n.forward(train_mean as f32) as f64,
            implicit: false,
        },
        Task::Implicit(t) => DataShape {
            n_users,
            n_items,
            scale: (0.0, 1.0),
            mean: t.positive_share(),
            implicit: true,
        },
    };
    config.model.size(&shape);
    config.rating_scale = [scale.0, scale.1];
    config.data = recipe;
    Ok(())
}

fn config_err(message: String) -> TrainError {
    TrainError::Config(message)
}

/// `defaults` with the file's tables merged over them; a key the configuration lacks is an
/// error naming it.
fn merged(defaults: RunConfig, file: &ConfigFile) -> Result<RunConfig> {
    let mut given = file.table.clone();
    if let Some(toml::Value::Table(model)) = given.get_mut("model") {
        ModelConfig::migrate(model, Some(defaults.model.family()));
    }
    let mut table = to_table(&defaults)?;
    let default_table = table.clone();
    merge(&mut table, given.clone());
    let config: RunConfig = table.try_into().map_err(|e: toml::de::Error| {
        // Serde's message names the type, not the key: find the key whose value has another
        // type than the default's.
        let key = mistyped_key(&given, &default_table, "")
            .map(|(key, want, got)| format!("key {key}: expected {want}, found {got} ("))
            .unwrap_or_default();
        let close = if key.is_empty() { "" } else { ")" };
        TrainError::format(
            &file.path,
            format!("invalid configuration: {key}{}{close}", e.message().trim()),
        )
    })?;
    let known = to_table(&config)?;
    let mut unknown = Vec::new();
    unknown_keys(&given, &known, "", &mut unknown);
    if !unknown.is_empty() {
        return Err(TrainError::format(
            &file.path,
            format!("unknown configuration key(s): {}", unknown.join(", ")),
        ));
    }
    Ok(config)
}

/// `value` (a [`RunConfig`]) as a TOML table: the layout of `config.toml`.
pub fn to_table<T: Serialize>(value: &T) -> Result<Table> {
    Table::try_from(value).map_err(|e| config_err(format!("cannot write the configuration: {e}")))
}

/// Merges `over` into `base`, table by table.
fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The first key of `given` (a dotted path) whose value is of another TOML type than the same
/// key of `defaults`, with both types; integers and floats count as one type.
fn mistyped_key(
    given: &Table,
    defaults: &Table,
    prefix: &str,
) -> Option<(String, &'static str, &'static str)> {
    let kind = |v: &toml::Value| match v {
        toml::Value::Integer(_) | toml::Value::Float(_) => "a number",
        toml::Value::String(_) => "a string",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    };
    for (k, v) in given {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (v, defaults.get(k)) {
            (toml::Value::Table(g), Some(toml::Value::Table(d))) => {
                if let Some(found) = mistyped_key(g, d, &path) {
                    return Some(found);
                }
            }
            (v, Some(d)) if kind(v) != kind(d) => return Some((path, kind(d), kind(v))),
            _ => {}
        }
    }
    None
}

/// Keys of `given` that `known` lacks, as dotted paths.
fn unknown_keys(given: &Table, known: &Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in given {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (v, known.get(k)) {
            (_, None) => out.push(path),
            (toml::Value::Table(g), Some(toml::Value::Table(kn))) => {
                unknown_keys(g, kn, &path, out)
            }
            _ => {}
        }
    }
}

/// `*to = v` when the override `from` is `Some(v)`.
fn set<T>(from: Option<T>, to: &mut T) {
    if let Some(v) = from {
        *to = v;
    }
}

/// Applies the command-line overrides to the merged configuration.
fn apply(config: &mut RunConfig, o: Overrides, mut model: ModelOverrides) -> Result<()> {
    set(o.backend, &mut config.backend);
    set(o.device_index, &mut config.device_index);
    let train = &mut config.train;
    set(o.epochs, &mut train.epochs);
    set(o.batch_size, &mut train.batch_size);
    set(o.readback_steps, &mut train.loss_readback_steps);
    train.profile |= o.profile;
    set(o.refit, &mut train.refit);
    if let Some(p) = o.patience {
        train.patience = Some(p);
    }
    set(o.lr, &mut train.optimizer.lr);
    if let Some(wd) = o.weight_decay {
        train.optimizer.weight_decay = wd as f32;
    }
    if let Some(name) = o.optimizer {
        train.optimizer.algorithm = Algorithm::named(name);
    }
    if let Some(seed) = o.seed {
        train.seed = seed;
        config.model.set_seed(seed);
    }
    match &mut config.task {
        Task::Rating => {
            if o.negatives.is_some() || o.protocol.is_some() {
                return Err(config_err(
                    "--negatives and --protocol apply to --task implicit".into(),
                ));
            }
            model.rating_loss = match o.loss {
                None => None,
                Some(LossName::Mse) => Some(RatingLoss::Mse),
                Some(LossName::Bce) => Some(RatingLoss::Bce),
                Some(other) => {
                    return Err(config_err(format!(
                        "--loss {} applies to --task implicit",
                        loss_name(other)
                    )));
                }
            };
        }
        Task::Implicit(t) => {
            t.loss = match o.loss {
                None => t.loss,
                Some(LossName::Bce) => ImplicitLossKind::Bce,
                Some(LossName::Bpr) => ImplicitLossKind::Bpr,
                Some(LossName::Softmax) => ImplicitLossKind::Softmax,
                Some(LossName::Mse) => {
                    return Err(config_err(
                        "--loss mse is a rating loss: --task implicit trains with bce, bpr or \
                         softmax"
                            .into(),
                    ));
                }
            };
            set(o.negatives, &mut t.negatives);
            set(o.protocol, &mut t.protocol);
        }
    }
    match (o.metric, &config.task) {
        (Some(m), _) => config.train.metric = m,
        // An implicit run validates by ranking: hit rate at its largest cutoff by default.
        (None, Task::Implicit(t)) if !config.train.metric.is_ranking() => {
            let k = t.ks.last().copied().unwrap_or(10);
            config.train.metric = Metric::Rank(RankMetric::Hr, k);
        }
        _ => {}
    }
    set(o.normalize, &mut config.normalize);
    config.model.apply(model, &config.task)?;
    config.model.check_task(&config.task)?;
    if config.normalize != NormalizeKind::None {
        if config.task.kind() != TaskKind::Rating {
            return Err(config_err(
                "--normalize applies to rating tasks: implicit feedback has no rating scale".into(),
            ));
        }
        config.model.check_normalize(config.normalize)?;
    }
    Ok(())
}

fn loss_name(l: LossName) -> &'static str {
    match l {
        LossName::Mse => "mse",
        LossName::Bce => "bce",
        LossName::Bpr => "bpr",
        LossName::Softmax => "softmax",
    }
}

/// The configuration a resumed run continues with: the run's `config`, with the settings of
/// `overrides` that may change between sessions of one run applied (the backend and device, the
/// loss read-back steps, profiling, patience). Every other setting given must equal the run's:
/// one that would change the model, the optimisation or the task is an error naming its flag
/// and the run's value. `overrides.epochs` is not looked at (a resumed run counts its epochs
/// from where it stopped).
pub fn resume_config(config: &RunConfig, overrides: Overrides) -> Result<RunConfig> {
    let mut resumed = config.clone();
    set(overrides.backend, &mut resumed.backend);
    set(overrides.device_index, &mut resumed.device_index);
    set(
        overrides.readback_steps,
        &mut resumed.train.loss_readback_steps,
    );
    resumed.train.profile |= overrides.profile;
    if let Some(p) = overrides.patience {
        resumed.train.patience = Some(p);
    }
    if let Some(kind) = overrides.task
        && kind != config.task.kind()
    {
        return Err(config_err(format!(
            "--task contradicts the run being resumed, whose config.toml has task.kind = {}",
            toml::Value::try_from(config.task.kind())
                .map_or_else(|_| format!("{:?}", config.task.kind()), |v| v.to_string())
        )));
    }
    let base = to_table(&applied(config, Overrides::default())?)?;
    for (flag, one) in each_flag(overrides) {
        let changed = applied(config, one).map_err(|e| {
            config_err(format!(
                "{flag} cannot be given when resuming this run: {e}"
            ))
        })?;
        if let Some((key, value)) = first_difference(&base, &to_table(&changed)?, "") {
            return Err(config_err(format!(
                "{flag} contradicts the run being resumed, whose config.toml has {key} = \
                 {value}; a resumed run keeps its data, model and training settings (train a \
                 new run to change them)"
            )));
        }
    }
    Ok(resumed)
}

/// `config` with `overrides` applied as `draft` applies them.
fn applied(config: &RunConfig, mut overrides: Overrides) -> Result<RunConfig> {
    let model = std::mem::take(&mut overrides.model);
    let mut c = config.clone();
    apply(&mut c, overrides, model)?;
    Ok(c)
}

/// The settings of `o` that a resumed run may not change, one `Overrides` per flag given, with
/// the flag's name.
fn each_flag(o: Overrides) -> Vec<(&'static str, Overrides)> {
    let mut out: Vec<(&'static str, Overrides)> = Vec::new();
    let mut one = |flag: &'static str, f: &dyn Fn(&mut Overrides)| {
        let mut x = Overrides::default();
        f(&mut x);
        out.push((flag, x));
    };
    let m = &o.model;
    if let Some(v) = o.batch_size {
        one("--batch-size", &|x| x.batch_size = Some(v));
    }
    if let Some(v) = o.refit {
        one("--refit", &|x| x.refit = Some(v));
    }
    if let Some(v) = o.seed {
        one("--seed", &|x| x.seed = Some(v));
    }
    if let Some(v) = o.lr {
        one("--lr", &|x| x.lr = Some(v));
    }
    if let Some(v) = o.weight_decay {
        one("--weight-decay", &|x| x.weight_decay = Some(v));
    }
    if let Some(v) = o.optimizer {
        one("--optimizer", &|x| x.optimizer = Some(v));
    }
    if let Some(v) = o.metric {
        one("--metric", &|x| x.metric = Some(v));
    }
    if let Some(v) = o.loss {
        one("--loss", &|x| x.loss = Some(v));
    }
    if let Some(v) = o.negatives {
        one("--negatives", &|x| x.negatives = Some(v));
    }
    if let Some(v) = o.protocol {
        one("--protocol", &|x| x.protocol = Some(v));
    }
    if let Some(v) = m.embedding_dim {
        one("--embedding-dim", &|x| x.model.embedding_dim = Some(v));
    }
    if let Some(v) = &m.hidden {
        one("--hidden", &|x| x.model.hidden = Some(v.clone()));
    }
    if let Some(v) = m.dropout {
        one("--dropout", &|x| x.model.dropout = Some(v));
    }
    if let Some(v) = m.l2 {
        one("--l2", &|x| x.model.l2 = Some(v));
    }
    if let Some(v) = m.activation {
        one("--activation", &|x| x.model.activation = Some(v));
    }
    if let Some(v) = m.base {
        one("--user-based / --item-based", &|x| x.model.base = Some(v));
    }
    if let Some(v) = m.input {
        one("--input", &|x| x.model.input = Some(v));
    }
    if let Some(v) = m.temperature {
        one("--temperature", &|x| x.model.temperature = Some(v));
    }
    if let Some(v) = m.logq {
        one("--logq", &|x| x.model.logq = Some(v));
    }
    if m.oov {
        one("--oov", &|x| x.model.oov = true);
    }
    if let Some(v) = m.bias {
        one("--bias", &|x| x.model.bias = Some(v));
    }
    if m.rating_range {
        one("--rating-range", &|x| x.model.rating_range = true);
    }
    if let Some(v) = m.rating_loss {
        one("--loss", &|x| x.model.rating_loss = Some(v));
    }
    if let Some(v) = &m.pretrained {
        one("--pretrained-gmf / --pretrained-mlp", &|x| {
            x.model.pretrained = Some(v.clone())
        });
    }
    if let Some(v) = &m.embeddings {
        one("--embeddings", &|x| x.model.embeddings = Some(v.clone()));
    }
    out
}

/// The first key (dotted) whose value differs between `a` and `b`, with its value in `a`.
fn first_difference(a: &Table, b: &Table, prefix: &str) -> Option<(String, String)> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                if let Some(d) = first_difference(x, y, &path) {
                    return Some(d);
                }
            }
            (x, y) if x != y => {
                return Some((path, x.map_or("(absent)".into(), |v| v.to_string())));
            }
            _ => {}
        }
    }
    None
}
