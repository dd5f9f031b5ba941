//! Model families: whatever differs between them lives in one file per family, behind the
//! [`Family`] trait. The registry at the bottom of this file generates [`ModelConfig`] (the
//! `[model]` table), [`AnyModel`] (a built model of any family) and their dispatch; the
//! trainer, evaluation, top-K and the CLI call the trait and never match on family names.
//!
//! Adding a family: a model file in `recsys-models` (a `RatingModel`), a file of the same name
//! here implementing [`Family`] for its configuration (exported as `Config`), and one line in
//! the list of families, [`recsys_models::with_families`].

use std::fmt::Debug;
use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use recsys_data::{IdMap, Interactions};
use recsys_models::{Activation, AutoRecBase, NcfInput, RatingBatch, RatingModel, Retriever};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use ncf::{NcfSetup, Pretrained, ncf_from_pretrained};
pub use regressor::{RegressorSetup, regressor_config_for_mf_run, regressor_from_mf_run};

use crate::batch::{BatchSource, ImplicitPairs};
use crate::error::{Result, TrainError};
use crate::record::TrainSummary;
use crate::run_dir::RunDir;
use crate::task::{ImplicitTask, Task, TaskKind};
use crate::trainer::{TrainConfig, TrainOutcome, Trainer};

/// What the data tells a model's configuration.
#[derive(Debug, Clone, Copy)]
pub struct DataShape {
    pub n_users: usize,
    pub n_items: usize,
    /// `(min, max)` of the targets: the rating scale, or `(0, 1)` for implicit feedback.
    pub scale: (f32, f32),
    /// The mean target: the training mean rating, or for implicit feedback the share of
    /// positives among the training examples.
    pub mean: f64,
    pub implicit: bool,
}

/// How a [`Retriever`]'s dot product `z = user · item` becomes the model's score, so that
/// scores of vectors searched on the host equal [`recsys_models::Scorer::score`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// The score is `z`.
    Identity,
    /// The score is `min + (max - min) σ(z)`.
    ScaledSigmoid { min: f32, max: f32 },
}

impl Link {
    /// The link of a model whose output is `output` over the scale `[min, max]` (MF and the
    /// baseline).
    pub fn of_output(output: recsys_models::MfOutput, min: f32, max: f32) -> Self {
        match output {
            recsys_models::MfOutput::Linear => Link::Identity,
            recsys_models::MfOutput::ScaledSigmoid | recsys_models::MfOutput::Logit => {
                Link::ScaledSigmoid { min, max }
            }
        }
    }

    pub fn apply(self, z: f32) -> f32 {
        match self {
            Link::Identity => z,
            Link::ScaledSigmoid { min, max } => min + (max - min) / (1.0 + (-z).exp()),
        }
    }
}

/// A user the model was not trained on, described by a few ratings, to fold in
/// ([`Family::fold_in`]).
#[derive(Debug, Clone, Copy)]
pub struct FoldIn<'a> {
    /// `(item, rating)` pairs: dense item indices and ratings on the run's scale.
    pub history: &'a [(u32, f32)],
    /// The mean number of training ratings per user (what per-row penalties are weighted by).
    pub mean_user_ratings: f64,
    /// The [`Retriever`]'s item vectors, row-major `[n_items, dim]` on the host (read once by
    /// the caller, not per user).
    pub item_vectors: &'a [f32],
}

/// The loss of a rating task (`--loss` without `--task implicit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingLoss {
    Mse,
    /// BCE on min-max normalised ratings, through a sigmoid (MF only).
    Bce,
}

/// Model settings given on the command line, applied to a typed configuration by its family.
/// A family takes the settings it knows; one left over is an error naming its flag.
#[derive(Debug, Clone, Default)]
pub struct ModelOverrides {
    pub embedding_dim: Option<usize>,
    pub hidden: Option<Vec<usize>>,
    pub dropout: Option<f64>,
    pub l2: Option<f64>,
    pub activation: Option<Activation>,
    pub base: Option<AutoRecBase>,
    pub input: Option<NcfInput>,
    pub temperature: Option<f64>,
    pub logq: Option<bool>,
    pub oov: bool,
    pub bias: Option<bool>,
    pub rating_range: bool,
    pub rating_loss: Option<RatingLoss>,
    pub pretrained: Option<Pretrained>,
    /// The MF run whose embeddings a regressor reads.
    pub embeddings: Option<PathBuf>,
    /// Item-KNN's neighbours per prediction.
    pub neighbours: Option<usize>,
    /// Item-KNN's similarity shrinkage, popularity's pseudo-ratings.
    pub shrinkage: Option<f64>,
    pub similarity: Option<recsys_models::Similarity>,
    /// How the baseline's biases are learned.
    pub baseline_fit: Option<recsys_models::BaselineFit>,
}

impl ModelOverrides {
    /// `Err` naming the first setting no family took, for model `name`.
    fn check_all_taken(&self, name: &str) -> Result<()> {
        let flag = [
            (self.embedding_dim.is_some(), "--embedding-dim"),
            (self.hidden.is_some(), "--hidden"),
            (self.dropout.is_some(), "--dropout"),
            (self.l2.is_some(), "--l2"),
            (self.activation.is_some(), "--activation"),
            (self.base.is_some(), "--user-based / --item-based"),
            (self.input.is_some(), "--input"),
            (self.temperature.is_some(), "--temperature"),
            (self.logq.is_some(), "--logq"),
            (self.oov, "--oov"),
            (self.neighbours.is_some(), "--neighbours"),
            (self.shrinkage.is_some(), "--shrinkage"),
            (self.similarity.is_some(), "--similarity"),
            (self.baseline_fit.is_some(), "--algo"),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag));
        let bad = |m: String| Err(TrainError::Config(m));
        if let Some(flag) = flag {
            return bad(format!("{flag} does not apply to model {name}"));
        }
        if self.bias.is_some() || self.rating_range {
            return bad("--bias and --rating-range apply to model mf".into());
        }
        if self.rating_loss.is_some() {
            return bad("--loss applies to model mf, or to --task implicit".into());
        }
        if self.pretrained.is_some() {
            return bad("--pretrained-gmf and --pretrained-mlp apply to model neumf".into());
        }
        if self.embeddings.is_some() {
            return bad("--embeddings applies to model regressor".into());
        }
        Ok(())
    }
}

/// `*to = v` when the override `from` holds `v`, taking it.
pub(crate) fn take<T>(from: &mut Option<T>, to: &mut T) {
    if let Some(v) = from.take() {
        *to = v;
    }
}

/// [`take`] for a weight given as `f64` on the command line and kept as `f32`.
pub(crate) fn take_f32(from: &mut Option<f64>, to: &mut f32) {
    if let Some(v) = from.take() {
        *to = v as f32;
    }
}

/// `*to = true` when the switch `from` is on, taking it.
pub(crate) fn take_switch(from: &mut bool, to: &mut bool) {
    if std::mem::take(from) {
        *to = true;
    }
}

/// A training run about to start: the trainer, the data and where it writes. A family's
/// [`Family::fit`] attaches what its model reads and picks the batch source.
pub struct Fit<'a> {
    pub(crate) trainer: Trainer,
    pub train: &'a Interactions,
    /// Rating validation (none for implicit runs, which validate by ranking).
    pub(crate) valid: Option<&'a Interactions>,
    /// Positives and sampled negatives of an implicit-feedback run.
    pub(crate) implicit: Option<ImplicitPairs>,
    pub(crate) device: &'a Device,
    pub run: &'a RunDir,
    /// Continuing from the run's last weights and optimiser state.
    pub resume: bool,
}

impl Fit<'_> {
    /// Trains `model` on the batches of `source`.
    pub fn on<M, S>(&self, model: M, source: &S) -> Result<TrainSummary>
    where
        M: RatingModel,
        S: BatchSource<Batch = M::Batch>,
    {
        let outcome = if self.resume {
            self.trainer
                .resume(model, source, self.valid, self.device, self.run)?
        } else {
            self.trainer
                .fit(model, source, self.valid, self.device, Some(self.run))?
        };
        Ok(self.summary(outcome))
    }

    /// Trains a model of rated pairs: on the implicit positives and negatives of an implicit
    /// run, else on the training ratings.
    pub fn pairs<M: RatingModel<Batch = RatingBatch>>(&self, model: M) -> Result<TrainSummary> {
        match &self.implicit {
            Some(source) => self.on(model, source),
            None => self.on(model, self.train),
        }
    }

    /// Records `model`, already fitted in closed form on [`Fit::train`] (no gradient steps), as
    /// a run of one epoch (see [`Trainer::closed_form`]).
    pub fn closed_form<M: RatingModel>(&self, model: M) -> Result<TrainSummary> {
        if self.resume {
            return Err(TrainError::Config(
                "this model is fitted in closed form, not by epochs: there is nothing to resume; \
                 train it again"
                    .into(),
            ));
        }
        let outcome =
            self.trainer
                .closed_form(model, self.train, self.valid, self.device, self.run)?;
        Ok(self.summary(outcome))
    }

    /// The device the model trains on.
    pub fn device(&self) -> &Device {
        self.device
    }

    /// The implicit positives and negatives (for families that learn from nothing else).
    pub fn implicit(&self) -> Result<&ImplicitPairs> {
        self.implicit
            .as_ref()
            .ok_or_else(|| TrainError::Config("this model learns from implicit feedback".into()))
    }

    /// Keeps the training rows in the run directory (for models that read them at prediction
    /// time); a resumed run has them already.
    pub fn keep_train_rows(&self) -> Result<()> {
        if self.resume {
            return Ok(());
        }
        self.run.write_train_rows(self.train)
    }

    fn summary<M>(&self, o: TrainOutcome<M>) -> TrainSummary {
        TrainSummary {
            best_epoch: o.best_epoch,
            best_valid: o.best_valid,
            best_ranking: o.best_ranking,
            history: o.history,
            stopped_early: o.stopped_early,
            adapter: crate::device::adapter_name(self.device),
        }
    }
}

/// One model family, implemented by its configuration type (the family's `[model]` table).
pub trait Family: Clone + Debug + Serialize + DeserializeOwned + Into<ModelConfig> {
    /// The model it builds.
    type Model: RatingModel + Clone + Debug + Into<AnyModel>;

    /// The names `recsys train --model` knows this family by (NCF: `gmf`, `mlp`, `neumf`).
    const MODELS: &'static [&'static str];

    /// Older spellings of [`Family::MODELS`] still read from command lines and run directories.
    const OLD_NAMES: &'static [&'static str] = &[];

    /// The task of a run that asks for none.
    const DEFAULT_TASK: TaskKind = TaskKind::Rating;

    /// The default configuration of model `name` (one of [`Family::MODELS`]) for `task`, before
    /// sizing; takes the overrides it needs to exist at all (a regressor's MF run).
    fn named(name: &str, task: TaskKind, overrides: &mut ModelOverrides) -> Result<Self>;

    /// This configuration's model name (one of [`Family::MODELS`]).
    fn name(&self) -> &'static str;

    /// The implicit-feedback settings of a run that gives none.
    fn default_implicit() -> ImplicitTask {
        ImplicitTask::default()
    }

    /// Whether a run that sets neither its batch size nor its learning rate scales them with
    /// the size of its training part ([`TrainConfig::scale_to`]).
    const SCALES_BATCH: bool = false;

    /// The training settings of a run of this configuration for `task` before a config file and
    /// flags: those behind the family's figures in README's quality table (the best validated
    /// settings found). `train` holds the general defaults on entry.
    fn train_defaults(&self, _task: &Task, _train: &mut TrainConfig) {}

    /// `Err` naming the family and the task unless the family learns it.
    fn check_task(&self, task: &Task) -> Result<()>;

    /// Applies the command-line settings this family knows, taking them out of `overrides`.
    fn apply(&mut self, overrides: &mut ModelOverrides, task: &Task) -> Result<()>;

    /// Sets the seed of the initial weights.
    fn set_seed(&mut self, seed: u64);

    /// Sizes the model from the data (users, items, target scale and mean).
    fn size(&mut self, data: &DataShape);

    /// The trained runs this model starts from (refit swaps in their selection runs).
    fn source_runs_mut(&mut self) -> Vec<&mut PathBuf> {
        Vec::new()
    }

    /// The model with initial weights (what saved weights are loaded into).
    fn init(&self, device: &Device) -> Result<Self::Model>;

    /// The model training starts from: initial weights, or weights from source runs.
    fn build(&self, _ids: &IdMap, device: &Device) -> Result<Self::Model> {
        self.init(device)
    }

    /// Attaches the training data the model reads and trains it on its batch source.
    fn fit(&self, model: Self::Model, fit: &Fit<'_>) -> Result<TrainSummary>;

    /// Attaches to loaded weights what the model reads at prediction time (AutoRec's rows).
    fn attach(&self, model: Self::Model, _run: &RunDir) -> Result<Self::Model> {
        Ok(model)
    }

    /// The learned vectors of users `0..n_users` and of every item, for export and item
    /// similarity; `None` when the model learns no id vectors.
    fn vectors(_model: &Self::Model, _n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        None
    }

    /// The model as a [`Retriever`], when its scores factorise into user and item vectors.
    fn retriever(_model: &Self::Model) -> Option<&dyn Retriever> {
        None
    }

    /// The dense index unknown users map to, when the model keeps an out-of-vocabulary row.
    fn oov_user(&self) -> Option<u32> {
        None
    }

    /// `Err` naming the model when it cannot learn ratings normalised by `kind` (for example a
    /// model that already maps ratings into its own range).
    fn check_normalize(&self, _kind: recsys_data::NormalizeKind) -> Result<()> {
        Ok(())
    }

    /// How the dot product of [`Family::retriever`]'s vectors becomes the score.
    fn link(&self) -> Link {
        Link::Identity
    }

    /// A new user's vector in [`Family::retriever`]'s user space, fitted to `user.history`
    /// against the model's frozen item parameters (no retraining); `None` when the family cannot
    /// fold users in.
    fn fold_in(&self, _model: &Self::Model, _user: &FoldIn<'_>) -> Option<Vec<f32>> {
        None
    }

    /// The model reading `data` at prediction time instead of the training ratings it read
    /// when trained (AutoRec's rows, NCF's rating vectors, item-KNN's neighbours' ratings);
    /// `None` for a model whose predictions depend on its weights alone. `data` is normalised
    /// as the training ratings were.
    fn reading(_model: &Self::Model, _data: &Interactions) -> Option<Self::Model> {
        None
    }

    /// Whether the model reads a user's ratings as its input row at prediction time, through
    /// inputs whose size does not depend on the number of users (U-AutoRec, NCF on rating
    /// vectors): a new user's history then becomes that row, with no retraining
    /// ([`LoadedRun::top_k_for_history`]).
    ///
    /// [`LoadedRun::top_k_for_history`]: crate::LoadedRun::top_k_for_history
    fn folds_in_rows(&self) -> bool {
        false
    }

    /// The model reading `rows` as its users' rating rows, for [`Family::folds_in_rows`]:
    /// [`Family::reading`] unless the family also reads rows on its item side, which must stay
    /// the training ratings.
    fn reading_user_rows(model: &Self::Model, rows: &Interactions) -> Option<Self::Model> {
        Self::reading(model, rows)
    }

    /// Renames, in this family's `[model]` table, the keys older run directories and config
    /// files used to today's.
    fn migrate(_model: &mut toml::Table) {}

    /// The configuration of `recsys sanity` for model `name` on data of `shape` (ratings): no
    /// regularisation, predictions on the rating scale; `None` for a family without one.
    fn sanity(_name: &str, _shape: &DataShape, _seed: u64) -> Option<Self> {
        None
    }
}

/// The `[model]` table of the run in `dir` (a run this model starts from).
fn read_model(dir: &std::path::Path) -> Result<ModelConfig> {
    #[derive(Deserialize)]
    struct ModelOf {
        model: ModelConfig,
    }
    Ok(RunDir::open(dir)?.read_config::<ModelOf>()?.model)
}

/// Moves `table[old]` to `table[new]` (replacing it), when present.
pub(crate) fn rename_key(table: &mut toml::Table, old: &str, new: &str) {
    if let Some(v) = table.remove(old) {
        table.insert(new.to_string(), v);
    }
}

/// `Err` saying that `name` does not learn from implicit feedback.
pub(crate) fn rating_only(name: &str, task: &Task) -> Result<()> {
    match task {
        Task::Rating => Ok(()),
        Task::Implicit(_) => Err(TrainError::Config(format!(
            "--task implicit trains mf, recnet, gmf, mlp, neumf, two-tower, baseline or \
             popularity, not {name}"
        ))),
    }
}

/// `Err` unless `task` is ratings or an implicit task with a pointwise or pairwise loss.
pub(crate) fn pairs_task(name: &str, task: &Task) -> Result<()> {
    match task {
        Task::Implicit(t) if t.loss == crate::task::ImplicitLossKind::Softmax => {
            Err(TrainError::Config(format!(
                "the in-batch softmax loss trains the two-tower model, not {name}"
            )))
        }
        _ => Ok(()),
    }
}

/// Generates, from the list of families ([`recsys_models::with_families`]): the family modules,
/// [`ModelConfig`], [`AnyModel`], their `From` impls, the name lookup, and the dispatch macros
/// `with_family!` and `with_model!` (`$d` is a literal `$` for the inner macros).
macro_rules! registry {
    (($d:tt) $( $module:ident: $variant:ident($tag:literal $(| $alias:literal)*) ),* $(,)?) => {
        $( pub(crate) mod $module; )*

        /// A model family and its configuration (the `[model]` table, tagged by `family`).
        /// Reading it renames older keys first ([`Family::migrate`]).
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "family", try_from = "toml::Table")]
        pub enum ModelConfig {
            $( #[serde(rename = $tag)] $variant($module::Config), )*
        }

        /// [`ModelConfig`] as read, older family tags included.
        #[derive(Deserialize)]
        #[serde(tag = "family")]
        enum ModelConfigRepr {
            $( #[serde(rename = $tag $(, alias = $alias)*)] $variant($module::Config), )*
        }

        impl TryFrom<toml::Table> for ModelConfig {
            type Error = String;

            fn try_from(mut table: toml::Table) -> std::result::Result<Self, String> {
                ModelConfig::migrate(&mut table, None);
                let repr: ModelConfigRepr =
                    toml::Value::Table(table).try_into().map_err(|e| e.to_string())?;
                Ok(match repr {
                    $( ModelConfigRepr::$variant(c) => ModelConfig::$variant(c), )*
                })
            }
        }

        /// A built model of any family.
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant)]
        pub enum AnyModel {
            $( $variant(<$module::Config as Family>::Model), )*
        }

        $(
            impl From<$module::Config> for ModelConfig {
                fn from(c: $module::Config) -> Self {
                    ModelConfig::$variant(c)
                }
            }

            impl From<<$module::Config as Family>::Model> for AnyModel {
                fn from(m: <$module::Config as Family>::Model) -> Self {
                    AnyModel::$variant(m)
                }
            }

            impl<'a> TryFrom<&'a AnyModel> for &'a <$module::Config as Family>::Model {
                type Error = ();

                fn try_from(m: &'a AnyModel) -> std::result::Result<Self, ()> {
                    match m {
                        AnyModel::$variant(m) => Ok(m),
                        #[allow(unreachable_patterns)]
                        _ => Err(()),
                    }
                }
            }
        )*

        /// `$body` with `$c` bound to the configuration inside a [`ModelConfig`] and `$F` naming
        /// its type (a [`Family`]).
        macro_rules! with_family {
            ($d cfg:expr, $d F:ident, $d c:ident => $d body:expr) => {
                match $d cfg {
                    $( crate::family::ModelConfig::$variant($d c) => {
                        #[allow(dead_code)]
                        type $d F = crate::family::$module::Config;
                        $d body
                    } )*
                }
            };
        }

        /// `$body` with `$m` bound to the model inside an [`AnyModel`] and `$F` naming its
        /// family's configuration type.
        macro_rules! with_model {
            ($d any:expr, $d F:ident, $d m:ident => $d body:expr) => {
                match $d any {
                    $( crate::family::AnyModel::$variant($d m) => {
                        #[allow(dead_code)]
                        type $d F = crate::family::$module::Config;
                        $d body
                    } )*
                }
            };
        }

        impl ModelConfig {
            /// The `family` tag of this configuration in `config.toml`.
            pub fn family(&self) -> &'static str {
                match self {
                    $( ModelConfig::$variant(_) => $tag, )*
                }
            }

            /// Renames older keys of the `[model]` table `table` of family `family` (else of the
            /// family its `family` key names) to today's.
            pub fn migrate(table: &mut toml::Table, family: Option<&str>) {
                let tag = match family {
                    Some(f) => f.to_string(),
                    None => match table.get("family").and_then(|f| f.as_str()) {
                        Some(f) => f.to_string(),
                        None => return,
                    },
                };
                $( if tag == $tag $(|| tag == $alias)* {
                    <$module::Config as Family>::migrate(table);
                } )*
            }

            /// Every name `recsys train --model` takes, family by family.
            pub fn model_names() -> Vec<&'static str> {
                let mut names = Vec::new();
                $( names.extend_from_slice(<$module::Config as Family>::MODELS); )*
                names
            }

            /// Today's spelling of model `name` (one of [`ModelConfig::model_names`]), if it
            /// names a model.
            pub fn canonical(name: &str) -> Option<&'static str> {
                $(
                    let models = <$module::Config as Family>::MODELS;
                    if let Some(k) = models.iter().position(|m| *m == name) {
                        return Some(models[k]);
                    }
                    if <$module::Config as Family>::OLD_NAMES.contains(&name) {
                        return Some(models[0]);
                    }
                )*
                None
            }

            /// The `family` tag of model `name`, if it is one.
            pub fn family_of(name: &str) -> Option<&'static str> {
                let name = Self::canonical(name)?;
                $( if <$module::Config as Family>::MODELS.contains(&name) {
                    return Some($tag);
                } )*
                None
            }

            /// The `recsys sanity` configuration of model `name` (see [`Family::sanity`]).
            pub fn sanity(name: &str, shape: &DataShape, seed: u64) -> Result<Self> {
                $( if <$module::Config as Family>::MODELS.contains(&name) {
                    return <$module::Config as Family>::sanity(name, shape, seed)
                        .map(Into::into)
                        .ok_or_else(|| TrainError::Config(format!(
                            "model {name} has no sanity check"
                        )));
                } )*
                Err(unknown_model(name))
            }

            /// The task of a run of model `name` that asks for none.
            pub fn default_task(name: &str) -> Result<TaskKind> {
                $( if <$module::Config as Family>::MODELS.contains(&name) {
                    return Ok(<$module::Config as Family>::DEFAULT_TASK);
                } )*
                Err(unknown_model(name))
            }

            /// The default configuration of model `name` for `task`, and its family's default
            /// implicit-feedback settings.
            pub fn named(
                name: &str,
                task: TaskKind,
                overrides: &mut ModelOverrides,
            ) -> Result<(Self, ImplicitTask)> {
                $( if <$module::Config as Family>::MODELS.contains(&name) {
                    let config = <$module::Config as Family>::named(name, task, overrides)?;
                    return Ok((config.into(), <$module::Config as Family>::default_implicit()));
                } )*
                Err(unknown_model(name))
            }
        }
    };
}

fn unknown_model(name: &str) -> TrainError {
    TrainError::Config(format!(
        "unknown model {name:?}: expected {}",
        ModelConfig::model_names().join(", ")
    ))
}

recsys_models::with_families!(registry);

pub(crate) use {with_family, with_model};

impl ModelConfig {
    /// The model name: the family's, or for NCF its kind (`gmf`, `mlp`, `neumf`).
    pub fn name(&self) -> &'static str {
        with_family!(self, F, c => c.name())
    }

    /// The trained runs this model starts from: a regressor's MF run, NeuMF's pretrained GMF
    /// and MLP runs.
    pub fn source_runs_mut(&mut self) -> Vec<&mut PathBuf> {
        with_family!(self, F, c => c.source_runs_mut())
    }

    /// `Err` naming the model and the task unless the model learns it.
    pub fn check_task(&self, task: &Task) -> Result<()> {
        with_family!(self, F, c => c.check_task(task))
    }

    /// Applies command-line model settings; one that does not apply is an error naming its flag.
    pub fn apply(&mut self, mut overrides: ModelOverrides, task: &Task) -> Result<()> {
        let name = self.name();
        with_family!(self, F, c => c.apply(&mut overrides, task))?;
        overrides.check_all_taken(name)
    }

    pub fn set_seed(&mut self, seed: u64) {
        with_family!(self, F, c => c.set_seed(seed))
    }

    /// See [`Family::train_defaults`].
    pub fn train_defaults(&self, task: &Task, train: &mut TrainConfig) {
        with_family!(self, F, c => c.train_defaults(task, train))
    }

    /// See [`Family::SCALES_BATCH`].
    pub fn scales_batch(&self) -> bool {
        with_family!(self, F, _c => F::SCALES_BATCH)
    }

    /// Sizes the model from the data.
    pub fn size(&mut self, data: &DataShape) {
        with_family!(self, F, c => c.size(data))
    }

    /// Builds the model on `device` with initial weights (a regressor's embedding tables are
    /// zeros here: training reads them from its MF run, loading from its own weights).
    pub fn init(&self, device: &Device) -> Result<AnyModel> {
        with_family!(self, F, c => Ok(c.init(device)?.into()))
    }

    /// The dense index unknown users map to, when the model keeps one.
    pub fn oov_user(&self) -> Option<u32> {
        with_family!(self, F, c => c.oov_user())
    }

    /// See [`Family::check_normalize`].
    pub fn check_normalize(&self, kind: recsys_data::NormalizeKind) -> Result<()> {
        with_family!(self, F, c => c.check_normalize(kind))
    }

    /// See [`Family::link`].
    pub fn link(&self) -> Link {
        with_family!(self, F, c => c.link())
    }

    /// See [`Family::fold_in`]; `None` also when `model` is of another family.
    pub fn fold_in(&self, model: &AnyModel, user: &FoldIn<'_>) -> Option<Vec<f32>> {
        with_family!(self, F, c => {
            let m: Option<&<F as Family>::Model> = model.try_into().ok();
            m.and_then(|m| c.fold_in(m, user))
        })
    }

    /// See [`Family::folds_in_rows`].
    pub fn folds_in_rows(&self) -> bool {
        with_family!(self, F, c => c.folds_in_rows())
    }

    /// Whether the family folds new users in ([`Family::fold_in`] of an empty history).
    pub fn can_fold_in(&self, model: &AnyModel) -> bool {
        let user = FoldIn {
            history: &[],
            mean_user_ratings: 1.0,
            item_vectors: &[],
        };
        self.fold_in(model, &user).is_some()
    }
}

impl AnyModel {
    /// Publishes the weights as the weights of `run` ([`RunDir::publish_weights`]).
    pub fn save(&self, run: &RunDir) -> Result<()> {
        with_model!(self, F, m => run.publish_weights(m))
    }

    /// See [`Family::vectors`].
    pub fn vectors(&self, n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        with_model!(self, F, m => F::vectors(m, n_users))
    }

    /// See [`Family::retriever`].
    pub fn retriever(&self) -> Option<&dyn Retriever> {
        with_model!(self, F, m => F::retriever(m))
    }

    /// See [`Family::reading`]: the model reading `data`, or itself.
    pub fn reading(&self, data: &Interactions) -> AnyModel {
        with_model!(self, F, m => F::reading(m, data).map_or_else(|| self.clone(), Into::into))
    }

    /// See [`Family::reading_user_rows`]: the model reading `rows` as its users', or itself.
    pub fn reading_user_rows(&self, rows: &Interactions) -> AnyModel {
        with_model!(self, F, m => {
            F::reading_user_rows(m, rows).map_or_else(|| self.clone(), Into::into)
        })
    }
}

/// The ridge fit of a folded-in user: the `x` that minimises
/// `Σ_k (r_k - link(a_k · x + f_k))² + Σ_j penalty[j] x_j²` over the rows `a_k` (row-major
/// `[n, m]`, `m = penalty.len()`), offsets `f_k` and ratings `r_k`. A linear link is one solve
/// of the normal equations; a sigmoid link takes Gauss-Newton steps from `x = 0`.
pub(crate) fn fit_user(a: &[f32], f: &[f32], r: &[f32], penalty: &[f64], link: Link) -> Vec<f64> {
    let m = penalty.len();
    let n = r.len();
    assert_eq!(a.len(), n * m, "features are not [n, m]");
    let mut x = vec![0f64; m];
    let steps = match link {
        Link::Identity => 1,
        Link::ScaledSigmoid { .. } => 25,
    };
    for _ in 0..steps {
        // (Jᵀ J + P) δ = Jᵀ e - P x, with J the Jacobian of the predictions in x.
        let mut lhs = vec![0f64; m * m];
        let mut rhs = vec![0f64; m];
        for j in 0..m {
            lhs[j * m + j] = penalty[j].max(1e-9);
            rhs[j] = -penalty[j] * x[j];
        }
        for k in 0..n {
            let row = &a[k * m..(k + 1) * m];
            let z = row.iter().zip(&x).map(|(a, x)| *a as f64 * x).sum::<f64>() + f[k] as f64;
            let (pred, slope) = match link {
                Link::Identity => (z, 1.0),
                Link::ScaledSigmoid { min, max } => {
                    let s = 1.0 / (1.0 + (-z).exp());
                    let span = (max - min) as f64;
                    (min as f64 + span * s, span * s * (1.0 - s))
                }
            };
            let e = r[k] as f64 - pred;
            for i in 0..m {
                let ji = slope * row[i] as f64;
                rhs[i] += ji * e;
                for j in 0..=i {
                    lhs[i * m + j] += ji * slope * row[j] as f64;
                }
            }
        }
        for i in 0..m {
            for j in 0..i {
                lhs[j * m + i] = lhs[i * m + j];
            }
        }
        let delta = solve_spd(lhs, rhs);
        x.iter_mut().zip(&delta).for_each(|(x, d)| *x += d);
    }
    x
}

/// `x` with `A x = b` for a symmetric positive-definite `A` (row-major `[m, m]`), by Cholesky.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let m = b.len();
    for j in 0..m {
        let mut d = a[j * m + j];
        for k in 0..j {
            d -= a[j * m + k] * a[j * m + k];
        }
        let d = d.max(1e-12).sqrt();
        a[j * m + j] = d;
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= a[i * m + k] * a[j * m + k];
            }
            a[i * m + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y.
    for i in 0..m {
        let s: f64 = (0..i).map(|k| a[i * m + k] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * m + i];
    }
    for i in (0..m).rev() {
        let s: f64 = (i + 1..m).map(|k| a[k * m + i] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * m + i];
    }
    b
}

#[cfg(test)]
mod fold_in_tests {
    use super::*;

    #[test]
    fn ridge_fit_recovers_a_linear_user() {
        // r = 2 a0 - a1 + f, no penalty to speak of: the fit finds (2, -1).
        let a = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0];
        let f = [0.5, 0.0, 1.0, 0.0];
        let r: Vec<f32> = (0..4)
            .map(|k| 2.0 * a[2 * k] - a[2 * k + 1] + f[k])
            .collect();
        let x = fit_user(&a, &f, &r, &[1e-9, 1e-9], Link::Identity);
        assert!(
            (x[0] - 2.0).abs() < 1e-6 && (x[1] + 1.0).abs() < 1e-6,
            "{x:?}"
        );
        // A sigmoid link on targets made through it finds the same point.
        let link = Link::ScaledSigmoid { min: 1.0, max: 5.0 };
        let r: Vec<f32> = (0..4)
            .map(|k| link.apply(0.5 * a[2 * k] - 0.25 * a[2 * k + 1] + f[k]))
            .collect();
        let x = fit_user(&a, &f, &r, &[1e-9, 1e-9], link);
        assert!(
            (x[0] - 0.5).abs() < 1e-4 && (x[1] + 0.25).abs() < 1e-4,
            "{x:?}"
        );
        // A penalty shrinks toward zero.
        let x2 = fit_user(&a, &f, &r, &[100.0, 100.0], link);
        assert!(x2[0].abs() < x[0].abs());
    }
}
