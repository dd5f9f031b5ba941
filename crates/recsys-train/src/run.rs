//! The entry points the CLI calls: train a configured model into a run directory, resume it, load
//! a run back, evaluate and predict with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use recsys_data::TestNegatives;
use recsys_data::{IdMap, Interactions, Vocab};
use recsys_models::{
    AutoRec, AutoRecConfig, Mf, MfConfig, Ncf, NcfConfig, NcfInput, NcfKind, RatingModel,
    RecommenderNet, RecommenderNetConfig, Regressor, RegressorConfig, Scorer, TwoTower,
    TwoTowerConfig,
};
use serde::{Deserialize, Serialize};

use crate::batch::{BatchSource, ImplicitLoss, ImplicitPairs, index_tensor};
use crate::device::{BackendKind, device};
use crate::error::{Result, TrainError};
use crate::metrics::RatingMetrics;
use crate::ranking::{RankingMetrics, RankingTask, evaluate_ranking};
use crate::run_dir::{Checkpoint, RunDir};
use crate::trainer::{EpochRecord, TrainConfig, TrainOutcome, Trainer, evaluate, predict};

/// A model family and its configuration (the `[model]` table, tagged by `family`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelConfig {
    Mf(MfConfig),
    RecommenderNet(RecommenderNetConfig),
    /// A regressor on the frozen embeddings of a trained MF run.
    Regressor(RegressorRun),
    #[serde(rename = "autorec")]
    AutoRec(AutoRecConfig),
    /// GMF, MLP or NeuMF, optionally starting from pretrained GMF and MLP runs.
    Ncf(NcfRun),
    /// A two-tower retrieval model (implicit feedback, in-batch softmax).
    TwoTower(TwoTowerConfig),
}

/// The `[model]` table of an NCF model: its settings, and the runs NeuMF starts from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NcfRun {
    pub ncf: NcfConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<Pretrained>,
}

/// Trained GMF and MLP runs (same data) whose weights a NeuMF model starts from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pretrained {
    pub gmf: PathBuf,
    pub mlp: PathBuf,
}

/// What a run learns from: ratings, or implicit feedback (every rated pair is a positive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Predict ratings; validate with rating metrics.
    #[default]
    Rating,
    /// Rank items; train on positives and sampled negatives, validate by ranking.
    Implicit(ImplicitTask),
}

/// Settings of implicit-feedback training and its validation ranking (the `[task]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImplicitTask {
    /// `bce` (pointwise, with `negatives` per positive), `bpr` (pairwise) or `softmax`
    /// (in-batch softmax: the two-tower retrieval task).
    pub loss: String,
    /// Sampled negatives per positive for `bce`.
    pub negatives: usize,
    /// Validation protocol: `sampled` (among `eval_negatives` fixed negatives), `full` (all
    /// items, training items excluded) or `factorized` (all items, nothing excluded: TFRS).
    pub protocol: String,
    /// Negatives per held-out pair in the sampled protocol (NCF: 99).
    pub eval_negatives: usize,
    /// The cutoffs reported during validation.
    pub ks: Vec<usize>,
}

impl Default for ImplicitTask {
    fn default() -> Self {
        Self {
            loss: "bce".into(),
            negatives: 4,
            protocol: "sampled".into(),
            eval_negatives: 99,
            ks: vec![10],
        }
    }
}

impl ImplicitTask {
    pub fn implicit_loss(&self) -> Result<ImplicitLoss> {
        match self.loss.as_str() {
            "bce" if self.negatives == 0 => Err(TrainError::Config(
                "implicit bce needs at least 1 negative per positive".into(),
            )),
            "bce" => Ok(ImplicitLoss::Bce {
                negatives: self.negatives,
            }),
            "bpr" => Ok(ImplicitLoss::Bpr),
            "softmax" => Ok(ImplicitLoss::InBatch),
            other => Err(TrainError::Config(format!(
                "unknown implicit loss {other:?}: expected bce, bpr or softmax"
            ))),
        }
    }

    /// The ranking of `part` by a model trained on `train`: sampled among `eval_negatives`
    /// negatives per pair (drawn with `seed`, never an item of the user in `known`), or full.
    pub fn ranking(
        &self,
        part: &Interactions,
        train: &Interactions,
        known: &Interactions,
        seed: u64,
    ) -> Result<RankingTask> {
        match self.protocol.as_str() {
            "sampled" => {
                let seen = recsys_data::UserHistory::new(known);
                let cases = TestNegatives::sample(part, &seen, self.eval_negatives, seed)?;
                RankingTask::sampled(cases, &self.ks)
            }
            "full" => RankingTask::full(part, train, &self.ks),
            "factorized" => RankingTask::factorized(part, &self.ks),
            other => Err(TrainError::Config(format!(
                "unknown protocol {other:?}: expected sampled, full or factorized"
            ))),
        }
    }
}

/// The `[model]` table of a regressor: the MF run whose embeddings it reads, and its own settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegressorRun {
    /// Run directory of a trained `mf` model on the same data (same id map).
    pub mf_run: PathBuf,
    pub regressor: RegressorConfig,
}

impl ModelConfig {
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Mf(_) => "mf",
            ModelConfig::RecommenderNet(_) => "recommender_net",
            ModelConfig::Regressor(_) => "regressor",
            ModelConfig::AutoRec(_) => "autorec",
            ModelConfig::Ncf(_) => "ncf",
            ModelConfig::TwoTower(_) => "two_tower",
        }
    }

    /// The family, or for NCF its kind (`gmf`, `mlp`, `neumf`).
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Ncf(c) => c.ncf.kind.name(),
            other => other.family(),
        }
    }

    /// The trained runs this model starts from: a regressor's MF run, NeuMF's pretrained GMF
    /// and MLP runs.
    pub fn source_runs_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            ModelConfig::Regressor(r) => vec![&mut r.mf_run],
            ModelConfig::Ncf(NcfRun {
                pretrained: Some(p),
                ..
            }) => vec![&mut p.gmf, &mut p.mlp],
            _ => Vec::new(),
        }
    }

    /// Builds the model on `device` with initial weights (a regressor's embedding tables are
    /// zeros here: [`train_run`] reads them from its MF run, [`load_run`] from its own weights).
    pub fn init(&self, device: &Device) -> Result<AnyModel> {
        Ok(match self {
            ModelConfig::Mf(c) => AnyModel::Mf(c.init(device)?),
            ModelConfig::RecommenderNet(c) => AnyModel::RecommenderNet(c.init(device)?),
            ModelConfig::Regressor(c) => AnyModel::Regressor(c.regressor.init(device)?),
            ModelConfig::AutoRec(c) => AnyModel::AutoRec(c.init(device)?),
            ModelConfig::Ncf(c) => AnyModel::Ncf(c.ncf.init(device)?),
            ModelConfig::TwoTower(c) => AnyModel::TwoTower(c.init(device)?),
        })
    }
}

/// A built model of any family. A run holds one or two, so the variants' sizes do not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum AnyModel {
    Mf(Mf),
    RecommenderNet(RecommenderNet),
    Regressor(Regressor),
    AutoRec(AutoRec),
    Ncf(Ncf),
    TwoTower(TwoTower),
}

/// `$body` with `$m` bound to the model inside an [`AnyModel`], whatever its family.
macro_rules! with_model {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            AnyModel::Mf($m) => $body,
            AnyModel::RecommenderNet($m) => $body,
            AnyModel::Regressor($m) => $body,
            AnyModel::AutoRec($m) => $body,
            AnyModel::Ncf($m) => $body,
            AnyModel::TwoTower($m) => $body,
        }
    };
}

/// The resolved configuration of a run, written to `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub backend: BackendKind,
    pub device_index: usize,
    /// `[min, max]` of the rating scale; predictions are clamped to it for metrics.
    pub rating_scale: [f32; 2],
    /// Ratings or implicit feedback.
    #[serde(default)]
    pub task: Task,
    /// Free-form notes from the caller (data source, split, ...).
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// What [`train_run`] and [`resume_run`] report.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub best_epoch: usize,
    pub best_valid: Option<RatingMetrics>,
    pub best_ranking: Option<RankingMetrics>,
    /// Every epoch of the run (a resumed run's earlier epochs included).
    pub history: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// Where it ran (adapter or CPU backend name).
    pub adapter: String,
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

/// A [`RegressorConfig`] sized for the MF run in `mf_dir` (its users, items and embedding width),
/// other settings at their defaults.
pub fn regressor_config_for_mf_run(mf_dir: &Path) -> Result<RegressorConfig> {
    let mf = read_mf_config(mf_dir)?;
    Ok(RegressorConfig::new(mf.n_users, mf.n_items, mf.dim))
}

fn read_mf_config(mf_dir: &Path) -> Result<MfConfig> {
    let run = RunDir::open(mf_dir)?;
    match run.read_config::<RunConfig>()?.model {
        ModelConfig::Mf(c) => Ok(c),
        other => Err(TrainError::Config(format!(
            "{}: a regressor needs an `mf` run, this is a `{}` run",
            mf_dir.display(),
            other.family()
        ))),
    }
}

/// A [`Regressor`] on `device` reading the (frozen) user and item embeddings of the best weights of
/// the MF run in `mf_dir`. The run's id map must equal `ids` (the data's), and its sizes `config`'s.
pub fn regressor_from_mf_run(
    mf_dir: &Path,
    ids: &IdMap,
    config: &RegressorConfig,
    device: &Device,
) -> Result<Regressor> {
    let mf_config = read_mf_config(mf_dir)?;
    let run = RunDir::open(mf_dir)?;
    check_same_ids(mf_dir, &run.read_idmap()?, ids)?;
    let plain = device.clone().without_autodiff();
    let mf = run.load_model(mf_config.init(&plain)?, Checkpoint::Best)?;
    let to_device = |t: Tensor<2>| Tensor::<2>::from_data(t.into_data(), device);
    Ok(config.init(device)?.with_embeddings(
        to_device(mf.user_embedding.table()),
        to_device(mf.item_embedding.table()),
    )?)
}

/// Where a refit run keeps the run that chose its epoch count.
pub const SELECTION_DIR: &str = "selection";

/// Trains `config.model` on `train` (validating on `valid`) into the run directory `dir`:
/// writes `config.toml`, `idmap.json`, `metrics.jsonl`, `model-best.bpk`, `model-last.bpk`,
/// `optimizer-last.bpk`, `loss.svg`, `<metric>.svg` (and `train-rows.bin` for AutoRec).
///
/// With [`TrainConfig::refit`], that run goes to `dir/selection`, and `dir` gets a fresh model
/// trained on `train` and `valid` together for the selection run's best number of epochs (the
/// summary reports the selection run's best epoch and validation metrics). The selection run of
/// a model that starts from other runs (NeuMF's pretrained branches, a regressor's MF run) starts
/// from their selection runs when they were refit, so no weight it starts from has seen the
/// validation part.
pub fn train_run(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
) -> Result<TrainSummary> {
    if !config.train.refit {
        return train_once(dir, config, ids, train, valid, quiet, None);
    }
    let Some(valid) = valid.filter(|v| !v.is_empty()) else {
        return Err(TrainError::Config(
            "refit needs a validation part (it picks the number of epochs)".into(),
        ));
    };
    let mut select = config.clone();
    select.train.refit = false;
    // The selection run starts from the selection runs of refit source runs (pretrained
    // branches, an MF run's embeddings): their refit weights have seen the validation part.
    for run in select.model.source_runs_mut() {
        let selection = run.join(SELECTION_DIR);
        if selection.is_dir() {
            *run = selection;
        }
    }
    let chosen = train_once(
        &dir.join(SELECTION_DIR),
        &select,
        ids,
        train,
        Some(valid),
        quiet,
        None,
    )?;
    let both = Interactions::concat(&[train, valid]);
    if !quiet {
        eprintln!(
            "refit: {} epochs on the training and validation parts ({} pairs)",
            chosen.best_epoch,
            both.len()
        );
    }
    let refit = train_once(
        dir,
        config,
        ids,
        &both,
        None,
        quiet,
        Some(chosen.best_epoch),
    )?;
    Ok(TrainSummary {
        best_epoch: chosen.best_epoch,
        best_valid: chosen.best_valid,
        best_ranking: chosen.best_ranking,
        history: refit.history,
        stopped_early: chosen.stopped_early,
        adapter: refit.adapter,
    })
}

/// One training run into `dir`, stopping after epoch `stop_after` when given.
fn train_once(
    dir: &Path,
    config: &RunConfig,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
    stop_after: Option<usize>,
) -> Result<TrainSummary> {
    config.train.validate()?;
    let device = device(config.backend, config.device_index)?;
    let model = match &config.model {
        ModelConfig::Regressor(r) => AnyModel::Regressor(regressor_from_mf_run(
            &r.mf_run,
            ids,
            &r.regressor,
            &device,
        )?),
        ModelConfig::Ncf(NcfRun {
            ncf,
            pretrained: Some(p),
        }) => AnyModel::Ncf(ncf_from_pretrained(ncf, p, ids, &device)?),
        other => other.init(&device)?,
    };
    let mut plan = plan(config, &model, train, valid, quiet)?;
    plan.trainer = plan.trainer.with_stop_after(stop_after);
    let run = RunDir::create(dir)?;
    run.write_config(config)?;
    run.write_idmap(ids)?;
    fit_any(model, train, plan, &device, &run, false)
}

/// Continues the run in `dir` for `extra_epochs` more epochs from its last weights and optimiser
/// state, on the same data (`ids` must equal the run's id map), appending to `metrics.jsonl` and
/// updating `config.toml`'s epoch count. With `family`, the run must be of that model family.
pub fn resume_run(
    dir: &Path,
    family: Option<&str>,
    extra_epochs: usize,
    ids: &IdMap,
    train: &Interactions,
    valid: Option<&Interactions>,
    quiet: bool,
) -> Result<TrainSummary> {
    let run = RunDir::open(dir)?;
    let mut config: RunConfig = run.read_config()?;
    if let Some(family) = family
        && family != config.model.family()
    {
        return Err(TrainError::Config(format!(
            "{}: cannot resume a `{}` run as `{family}`",
            dir.display(),
            config.model.family()
        )));
    }
    if config.train.refit {
        return Err(TrainError::Config(format!(
            "{}: a refit run cannot be resumed (its epoch count was chosen by its selection \
             run); train again with more epochs",
            dir.display()
        )));
    }
    check_same_ids(dir, &run.read_idmap()?, ids)?;
    let done = run.read_metrics()?.len();
    config.train.epochs = done + extra_epochs;
    config.train.validate()?;
    let device = device(config.backend, config.device_index)?;
    let model = with_model!(config.model.init(&device)?, m => AnyModel::from(run.load_model(m, Checkpoint::Last)?));
    let plan = plan(&config, &model, train, valid, quiet)?;
    run.write_config(&config)?;
    fit_any(model, train, plan, &device, &run, true)
}

/// What a run trains on, settled before anything is written: the trainer (with its rating or
/// ranking validation) and, for implicit feedback, the source of positives and negatives.
struct Plan<'a> {
    trainer: Trainer,
    implicit: Option<ImplicitPairs>,
    /// Rating validation (none for implicit runs, which validate by ranking).
    valid: Option<&'a Interactions>,
}

/// Checks that `model` can learn `config.task` and builds its [`Plan`]; every error of the
/// configuration surfaces here, before a run directory is created or changed.
fn plan<'a>(
    config: &RunConfig,
    model: &AnyModel,
    train: &Interactions,
    valid: Option<&'a Interactions>,
    quiet: bool,
) -> Result<Plan<'a>> {
    let implicit = match &config.task {
        Task::Rating => None,
        Task::Implicit(t) => Some(t),
    };
    let bad = |m: String| Err(TrainError::Config(m));
    match (model, implicit.map(|t| t.loss.as_str())) {
        (AnyModel::AutoRec(_) | AnyModel::Regressor(_), Some(_)) => {
            return bad(format!(
                "implicit feedback trains pair-scoring models (mf, recommender_net, gmf, mlp, \
                 neumf, two_tower), not {}",
                config.model.family()
            ));
        }
        (AnyModel::TwoTower(_), None) => {
            return bad(
                "two_tower learns from implicit feedback: use the implicit task \
                 (loss softmax or bpr)"
                    .into(),
            );
        }
        (AnyModel::TwoTower(_), Some("bce")) => {
            return bad("two_tower trains with the softmax or bpr loss, not bce".into());
        }
        (AnyModel::TwoTower(_), _) | (_, None) => {}
        (_, Some("softmax")) => {
            return bad(format!(
                "the in-batch softmax loss trains the two_tower model, not {}",
                config.model.family()
            ));
        }
        _ => {}
    }
    let (ranking, implicit) = match implicit {
        None => (None, None),
        Some(t) => {
            let loss = t.implicit_loss()?;
            let ranking = match valid.filter(|v| !v.is_empty()) {
                Some(v) => {
                    let known = Interactions::concat(&[train, v]);
                    Some(Arc::new(t.ranking(v, train, &known, config.train.seed)?))
                }
                None => None,
            };
            let source = ImplicitPairs::new(train, loss, config.train.seed)?;
            (ranking, Some(source))
        }
    };
    let trainer = Trainer::new(config.train.clone())
        .with_rating_scale((config.rating_scale[0], config.rating_scale[1]))
        .with_ranking(ranking)
        .quiet(quiet);
    Ok(Plan {
        trainer,
        valid: if implicit.is_some() { None } else { valid },
        implicit,
    })
}

fn fit_any(
    model: AnyModel,
    train: &Interactions,
    plan: Plan<'_>,
    device: &Device,
    run: &RunDir,
    resume: bool,
) -> Result<TrainSummary> {
    let Plan {
        trainer,
        implicit,
        valid,
    } = plan;
    let adapter = crate::device::adapter_name(device);
    fn summary<M>(o: TrainOutcome<M>, adapter: String) -> TrainSummary {
        TrainSummary {
            best_epoch: o.best_epoch,
            best_valid: o.best_valid,
            best_ranking: o.best_ranking,
            history: o.history,
            stopped_early: o.stopped_early,
            adapter,
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn fit<M: RatingModel, S: BatchSource<Batch = M::Batch>>(
        trainer: &Trainer,
        model: M,
        source: &S,
        valid: Option<&Interactions>,
        device: &Device,
        run: &RunDir,
        resume: bool,
        adapter: String,
    ) -> Result<TrainSummary> {
        let o = if resume {
            trainer.resume_on(model, source, valid, device, run)?
        } else {
            trainer.fit_on(model, source, valid, device, Some(run))?
        };
        Ok(summary(o, adapter))
    }
    match model {
        AnyModel::TwoTower(m) => {
            let src = implicit.as_ref().expect("planned: two_tower is implicit");
            let m = m.with_item_counts(&train.items);
            fit(&trainer, m, src, None, device, run, resume, adapter)
        }
        AnyModel::Ncf(m) => {
            if m.input() == NcfInput::RatingVectors && !resume {
                run.write_train_rows(train)?;
            }
            let m = m.with_inputs(train);
            match &implicit {
                Some(src) => fit(&trainer, m, src, None, device, run, resume, adapter),
                None => fit(&trainer, m, train, valid, device, run, resume, adapter),
            }
        }
        AnyModel::Mf(m) if implicit.is_some() => {
            let src = implicit.as_ref().expect("implicit");
            fit(&trainer, m, src, None, device, run, resume, adapter)
        }
        AnyModel::RecommenderNet(m) if implicit.is_some() => {
            let src = implicit.as_ref().expect("implicit");
            fit(&trainer, m, src, None, device, run, resume, adapter)
        }
        AnyModel::AutoRec(m) => {
            if !resume {
                run.write_train_rows(train)?;
            }
            let rows = Arc::new(m.rows_of(train));
            let m = m.with_inputs(rows.clone());
            fit(&trainer, m, &*rows, valid, device, run, resume, adapter)
        }
        AnyModel::Mf(m) => {
            let m = m.with_frequency_weights(train);
            fit(&trainer, m, train, valid, device, run, resume, adapter)
        }
        AnyModel::RecommenderNet(m) => fit(&trainer, m, train, valid, device, run, resume, adapter),
        AnyModel::Regressor(m) => fit(&trainer, m, train, valid, device, run, resume, adapter),
    }
}

macro_rules! any_from {
    ($($family:ident),*) => {$(
        impl From<$family> for AnyModel {
            fn from(m: $family) -> Self {
                AnyModel::$family(m)
            }
        }
    )*};
}
any_from!(Mf, RecommenderNet, Regressor, AutoRec, Ncf, TwoTower);

/// The NeuMF model of `config` starting from the best weights of the GMF and MLP runs of
/// `pretrained`, on `device`. Both runs must be of the same data (`ids`) and of the sizes
/// `config` asks for. The GMF run may be an MF run (`d` factors, GMF width `d + 2`).
pub fn ncf_from_pretrained(
    config: &NcfConfig,
    pretrained: &Pretrained,
    ids: &IdMap,
    device: &Device,
) -> Result<Ncf> {
    let load = |dir: &Path, kind: NcfKind| -> Result<Ncf> {
        let run = RunDir::open(dir)?;
        let c = match run.read_config::<RunConfig>()?.model {
            ModelConfig::Ncf(c) if c.ncf.kind == kind => c.ncf,
            // MF is GMF with h = 1: its vectors start the GMF branch (`Ncf::gmf_from_mf`).
            ModelConfig::Mf(c) if kind == NcfKind::Gmf => {
                if config.gmf_dim != c.dim + 2 {
                    return Err(TrainError::Config(format!(
                        "{}: an mf run of {} factors starts a GMF branch of width {} (factors + 2: \
                         the biases), this model's GMF width is {}",
                        dir.display(),
                        c.dim,
                        c.dim + 2,
                        config.gmf_dim
                    )));
                }
                check_same_ids(dir, &run.read_idmap()?, ids)?;
                let mf = run.load_model(c.init(device)?, Checkpoint::Best)?;
                let gmf = config.clone().with_kind(NcfKind::Gmf).init(device)?;
                return Ok(gmf.gmf_from_mf(&mf)?);
            }
            other => {
                return Err(TrainError::Config(format!(
                    "{}: NeuMF pre-training needs a `{}` run{}, this is a `{}` run",
                    dir.display(),
                    kind.name(),
                    if kind == NcfKind::Gmf {
                        " (or `mf`)"
                    } else {
                        ""
                    },
                    other.name()
                )));
            }
        };
        check_same_ids(dir, &run.read_idmap()?, ids)?;
        run.load_model(c.init(device)?, Checkpoint::Best)
    };
    let gmf = load(&pretrained.gmf, NcfKind::Gmf)?;
    let mlp = load(&pretrained.mlp, NcfKind::Mlp)?;
    Ok(config
        .init(device)?
        .from_pretrained(gmf, mlp, config.alpha)?)
}

/// A trained run loaded for inference (weights on a plain, non-autodiff device).
#[derive(Debug, Clone)]
pub struct LoadedRun {
    pub config: RunConfig,
    pub ids: IdMap,
    pub model: AnyModel,
    pub device: Device,
}

/// Loads the run in `dir` with weights `which`, on the run's own backend or `backend` if given.
/// AutoRec reads its training rows back from `train-rows.bin`.
pub fn load_run(
    dir: &Path,
    which: Checkpoint,
    backend: Option<(BackendKind, usize)>,
) -> Result<LoadedRun> {
    let run = RunDir::open(dir)?;
    let config: RunConfig = run.read_config()?;
    let ids = run.read_idmap()?;
    let (kind, index) = backend.unwrap_or((config.backend, config.device_index));
    let device = device(kind, index)?.without_autodiff();
    let model =
        with_model!(config.model.init(&device)?, m => AnyModel::from(run.load_model(m, which)?));
    let model = match model {
        AnyModel::AutoRec(m) => {
            let rows = m.rows_of(&run.read_train_rows()?);
            AnyModel::AutoRec(m.with_inputs(Arc::new(rows)))
        }
        AnyModel::Ncf(m) if m.input() == NcfInput::RatingVectors => {
            AnyModel::Ncf(m.with_inputs(&run.read_train_rows()?))
        }
        other => other,
    };
    Ok(LoadedRun {
        config,
        ids,
        model,
        device,
    })
}

impl LoadedRun {
    fn eval_batch_size(&self) -> usize {
        self.config.train.eval_batch_size
    }

    pub fn rating_scale(&self) -> (f32, f32) {
        (self.config.rating_scale[0], self.config.rating_scale[1])
    }

    /// Predicted ratings of `(users[k], items[k])` (dense indices), unclamped.
    pub fn predict(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        with_model!(&self.model, m => predict(m, users, items, self.eval_batch_size(), &self.device))
    }

    /// Rating metrics on `data`, predictions clamped to the rating scale.
    pub fn evaluate(&self, data: &Interactions) -> RatingMetrics {
        with_model!(&self.model, m => evaluate(
            m,
            data,
            self.eval_batch_size(),
            Some(self.rating_scale()),
            &self.device,
        ))
    }

    /// Scores of every item for each user: row-major `[users.len(), n_items]`.
    pub fn score_all(&self, users: &[u32]) -> Vec<f32> {
        with_model!(&self.model, m => score_all(m, users, &self.device))
    }

    pub fn n_items(&self) -> usize {
        with_model!(&self.model, m => m.n_items())
    }

    /// Each of `users`' best `k` items, selected on the device, skipping `exclude[r]` for row
    /// `r` when given (see [`device_top_k`](crate::ranking::device_top_k)).
    pub fn top_k(
        &self,
        users: &[u32],
        k: usize,
        exclude: Option<&[&[u32]]>,
    ) -> Vec<Vec<(u32, f32)>> {
        with_model!(&self.model, m => crate::ranking::device_top_k(m, users, k, exclude, &self.device))
    }

    /// The dense index of the out-of-vocabulary user row (one past the last user), when the model
    /// keeps one (a two-tower trained with `oov`).
    pub fn oov_user(&self) -> Option<u32> {
        match &self.config.model {
            ModelConfig::TwoTower(c) if c.oov => Some(c.n_users as u32),
            _ => None,
        }
    }

    /// Ranking metrics under `task`.
    pub fn rank(&self, task: &RankingTask) -> RankingMetrics {
        with_model!(&self.model, m => evaluate_ranking(m, task, &self.device))
    }
}

fn score_all<M: RatingModel>(model: &M, users: &[u32], device: &Device) -> Vec<f32> {
    if users.is_empty() {
        return Vec::new();
    }
    // Keep each block near 16M scores.
    let per = (16_000_000 / model.n_items().max(1)).max(1);
    let mut out = Vec::with_capacity(users.len() * model.n_items());
    for chunk in users.chunks(per) {
        out.extend(
            model
                .score_all(index_tensor(chunk, device))
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float scores"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::tests::{mf_config, synthetic, train_config};
    use burn::module::Module;
    use recsys_models::{AutoRecBase, MfOutput};

    fn ids(n_users: usize, n_items: usize) -> IdMap {
        IdMap {
            users: Vocab::from_raw((0..n_users).map(|k| format!("u{k}")).collect()).unwrap(),
            items: Vocab::from_raw((0..n_items).map(|k| format!("i{k}")).collect()).unwrap(),
        }
    }

    #[test]
    fn save_then_load_gives_identical_predictions() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let device = device(BackendKind::Flex, 0).unwrap();
        let run = RunDir::create(tmp.path().join("run")).unwrap();
        let config = mf_config(&train, MfOutput::Logit);
        let model = config.init(&device).unwrap();
        let o = Trainer::new(train_config(3))
            .quiet(true)
            .fit(model, &train, Some(&valid), &device, Some(&run))
            .unwrap();
        let plain = device.clone().without_autodiff();
        let want = predict(&o.model.valid(), &valid.users, &valid.items, 64, &plain);
        let loaded = run
            .load_model(config.init(&plain).unwrap(), Checkpoint::Best)
            .unwrap();
        let got = predict(&loaded, &valid.users, &valid.items, 64, &plain);
        assert_eq!(want, got);
        let read = run.read_metrics().unwrap();
        assert_eq!(read.len(), o.history.len());
        for (a, b) in read.iter().zip(&o.history) {
            assert_eq!(a.epoch, b.epoch);
            assert!((a.train_loss - b.train_loss).abs() < 1e-12);
        }
    }

    #[test]
    fn train_run_then_load_run() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mf-run");
        let config = RunConfig {
            model: ModelConfig::Mf(mf_config(&train, MfOutput::Linear)),
            train: train_config(4),
            backend: BackendKind::Flex,
            device_index: 0,
            rating_scale: [1.0, 5.0],
            task: Task::Rating,
            data: [("source".to_string(), "synthetic".to_string())].into(),
        };
        let summary = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
        for f in [
            "config.toml",
            "idmap.json",
            "metrics.jsonl",
            "model-best.bpk",
            "model-last.bpk",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let loaded = load_run(&dir, Checkpoint::Best, None).unwrap();
        assert_eq!(loaded.ids.user("u3").unwrap(), 3);
        assert_eq!(loaded.evaluate(&valid), summary.best_valid.unwrap());
        let last = load_run(&dir, Checkpoint::Last, Some((BackendKind::Ndarray, 0))).unwrap();
        let m = last.evaluate(&valid);
        let want = summary.history.last().unwrap().valid.unwrap();
        assert!(
            (m.rmse - want.rmse).abs() < 1e-4,
            "{} vs {}",
            m.rmse,
            want.rmse
        );
        let scores = loaded.score_all(&[0, 5]);
        assert_eq!(scores.len(), 2 * loaded.n_items());
        let pairs = loaded.predict(&[5], &[7]);
        assert!((scores[20 + 7] - pairs[0]).abs() < 1e-5);
        let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(text.contains("family = \"mf\""), "{text}");
    }

    fn run_config(model: ModelConfig, epochs: usize) -> RunConfig {
        RunConfig {
            model,
            train: train_config(epochs),
            backend: BackendKind::Flex,
            device_index: 0,
            rating_scale: [1.0, 5.0],
            task: Task::Rating,
            data: BTreeMap::new(),
        }
    }

    fn baseline(train: &Interactions, valid: &Interactions) -> f64 {
        let mean = train.mean_rating() as f32;
        crate::metrics::rmse(&vec![mean; valid.len()], &valid.ratings)
    }

    #[test]
    fn autorec_both_bases_learn_save_and_load() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        for base in [AutoRecBase::Item, AutoRecBase::User] {
            let dir = tmp.path().join(format!("{base:?}"));
            let model = AutoRecConfig::new(30, 20)
                .with_base(base)
                .with_hidden(vec![16])
                // No dropout: tests run concurrently and Burn's CPU generator is process-wide,
                // so random draws here would depend on the other tests.
                .with_dropout(0.0)
                .with_input_dropout(0.0)
                .with_l2(1.0);
            let mut config = run_config(ModelConfig::AutoRec(model), 60);
            config.train.batch_size = 4;
            config.train.optimizer.lr = 0.01;
            let s = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
            let rmse = s.best_valid.unwrap().rmse;
            assert!(rmse < 0.95 * baseline(&train, &valid), "{base:?}: {rmse}");
            let loaded = load_run(&dir, Checkpoint::Best, None).unwrap();
            assert_eq!(loaded.evaluate(&valid), s.best_valid.unwrap());
            let scores = loaded.score_all(&[3]);
            let pair = loaded.predict(&[3], &[11]);
            assert!((scores[11] - pair[0]).abs() < 1e-5);
        }
    }

    #[test]
    fn recommender_net_learns() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let model = RecommenderNetConfig::new(30, 20)
            .with_embedding_dim(8)
            .with_hidden(vec![16])
            .with_dropout(0.1)
            .with_input_dropout(0.0);
        let config = run_config(ModelConfig::RecommenderNet(model), 40);
        let s = train_run(
            &tmp.path().join("rn"),
            &config,
            &ids(30, 20),
            &train,
            Some(&valid),
            true,
        )
        .unwrap();
        let (first, last) = (
            s.history[0].train_loss,
            s.history.last().unwrap().train_loss,
        );
        assert!(last < 0.7 * first, "loss {first} -> {last}");
        assert!(s.best_valid.unwrap().rmse < 0.95 * baseline(&train, &valid));
    }

    #[test]
    fn regressor_reads_frozen_mf_embeddings() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let mf_dir = tmp.path().join("mf");
        let mf = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 20);
        train_run(&mf_dir, &mf, &ids(30, 20), &train, Some(&valid), true).unwrap();
        let regressor = regressor_config_for_mf_run(&mf_dir)
            .unwrap()
            .with_hidden(vec![8, 4]);
        assert_eq!((regressor.n_users, regressor.embedding_dim), (30, 4));
        let config = run_config(
            ModelConfig::Regressor(RegressorRun {
                mf_run: mf_dir.clone(),
                regressor: regressor.clone(),
            }),
            30,
        );
        let dir = tmp.path().join("regressor");
        let s = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
        let (first, last) = (
            s.history[0].train_loss,
            s.history.last().unwrap().train_loss,
        );
        assert!(last < first, "loss {first} -> {last}");
        // The tables after training are exactly the MF's.
        let table = |run: &LoadedRun| match &run.model {
            AnyModel::Mf(m) => (m.user_embedding.table(), m.item_embedding.table()),
            AnyModel::Regressor(m) => (m.user_embedding.table(), m.item_embedding.table()),
            _ => unreachable!(),
        };
        let want = table(&load_run(&mf_dir, Checkpoint::Best, None).unwrap());
        let got = table(&load_run(&dir, Checkpoint::Last, None).unwrap());
        assert_eq!(want.0.into_data(), got.0.into_data());
        assert_eq!(want.1.into_data(), got.1.into_data());
        // Another id map is refused, naming the difference.
        let device = device(BackendKind::Flex, 0).unwrap();
        let mut other = ids(30, 20);
        other.items = Vocab::from_raw((0..20).map(|k| format!("j{k}")).collect()).unwrap();
        let err = regressor_from_mf_run(&mf_dir, &other, &regressor, &device).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("items") && text.contains("\"i0\"") && text.contains("\"j0\""),
            "{text}"
        );
    }

    #[test]
    fn resume_continues_and_appends() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let config = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 3);
        let ids = ids(30, 20);
        train_run(&dir, &config, &ids, &train, Some(&valid), true).unwrap();
        for f in ["optimizer-last.bpk", "loss.svg", "rmse.svg"] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let s = resume_run(&dir, Some("mf"), 2, &ids, &train, Some(&valid), true).unwrap();
        let epochs: Vec<usize> = RunDir::open(&dir)
            .unwrap()
            .read_metrics()
            .unwrap()
            .iter()
            .map(|r| r.epoch)
            .collect();
        assert_eq!(epochs, vec![1, 2, 3, 4, 5]);
        assert_eq!(s.history.len(), 5);
        let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(text.contains("epochs = 5"), "{text}");
        // Resuming continues where the run stopped: equal to 5 epochs in one go.
        let straight = tmp.path().join("straight");
        let config5 = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 5);
        let t = train_run(&straight, &config5, &ids, &train, Some(&valid), true).unwrap();
        let (a, b) = (s.history[4].train_loss, t.history[4].train_loss);
        assert!((a - b).abs() < 1e-3 * b, "resumed {a} vs straight {b}");

        let err = resume_run(&dir, Some("autorec"), 1, &ids, &train, None, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot resume a `mf` run as `autorec`"),
            "{err}"
        );
        let err =
            resume_run(&tmp.path().join("nope"), None, 1, &ids, &train, None, true).unwrap_err();
        assert!(err.to_string().contains("not a run directory"), "{err}");
        std::fs::write(dir.join("optimizer-last.bpk"), b"garbage").unwrap();
        let err = resume_run(&dir, None, 1, &ids, &train, None, true).unwrap_err();
        assert!(err.to_string().contains("optimizer-last.bpk"), "{err}");
        std::fs::remove_file(dir.join("model-last.bpk")).unwrap();
        let err = resume_run(&dir, None, 1, &ids, &train, None, true).unwrap_err();
        assert!(err.to_string().contains("model-last.bpk"), "{err}");
    }

    #[test]
    fn refit_trains_on_train_and_valid_for_the_best_epoch_count() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let mut config = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 8);
        config.train.optimizer.schedule = crate::optim::LrSchedule::Cosine { min_lr: 0.0 };
        config.train.optimizer.lr = 0.2;
        config.train.refit = true;
        let ids = ids(30, 20);
        let s = train_run(&dir, &config, &ids, &train, Some(&valid), true).unwrap();
        let selection = RunDir::open(dir.join(SELECTION_DIR))
            .unwrap()
            .read_metrics()
            .unwrap();
        assert_eq!(selection.len(), 8);
        let best = selection.iter().rfind(|r| r.best).unwrap();
        assert_eq!(s.best_epoch, best.epoch);
        let (a, b) = (s.best_valid.unwrap().rmse, best.valid.unwrap().rmse);
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        // The refit run: the best epoch's number of epochs, no validation, and the selection
        // run's learning rates (the schedule laid out over all 8 epochs, stopped there; the
        // rates are per step, and the refit run has more steps per epoch, so they agree closely).
        let refit = RunDir::open(&dir).unwrap().read_metrics().unwrap();
        assert_eq!(refit.len(), best.epoch);
        assert_eq!(s.history.len(), best.epoch);
        for (a, b) in refit.iter().zip(&selection) {
            assert!((a.lr - b.lr).abs() < 0.01 * 0.2, "{} vs {}", a.lr, b.lr);
            assert!(a.valid.is_none());
        }
        // Its weights are those of a plain run on both parts stopped at the best epoch, and
        // differ from the selection run's.
        let both = Interactions::concat(&[&train, &valid]);
        let mut plain = config.clone();
        plain.train.refit = false;
        let want_dir = tmp.path().join("want");
        train_once(&want_dir, &plain, &ids, &both, None, true, Some(best.epoch)).unwrap();
        let got = load_run(&dir, Checkpoint::Best, None).unwrap();
        let want = load_run(&want_dir, Checkpoint::Best, None).unwrap();
        let chosen = load_run(&dir.join(SELECTION_DIR), Checkpoint::Best, None).unwrap();
        let p = got.predict(&valid.users, &valid.items);
        assert_eq!(p, want.predict(&valid.users, &valid.items));
        assert_ne!(p, chosen.predict(&valid.users, &valid.items));
        // Having seen the validation ratings, the refit model fits them better.
        assert!(got.evaluate(&valid).rmse < chosen.evaluate(&valid).rmse);

        let err = resume_run(&dir, None, 2, &ids, &train, Some(&valid), true).unwrap_err();
        assert!(err.to_string().contains("cannot be resumed"), "{err}");
        let err = train_run(&tmp.path().join("x"), &config, &ids, &train, None, true).unwrap_err();
        assert!(
            err.to_string().contains("refit needs a validation part"),
            "{err}"
        );
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn neumf_starts_its_gmf_branch_from_an_mf_run() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let ids = ids(30, 20);
        let train_dir = |name: &str, model| {
            let dir = tmp.path().join(name);
            train_run(
                &dir,
                &run_config(model, 2),
                &ids,
                &train,
                Some(&valid),
                true,
            )
            .unwrap();
            dir
        };
        let mf_dir = train_dir("mf", ModelConfig::Mf(mf_config(&train, MfOutput::Linear)));
        let mlp_dir = train_dir(
            "mlp",
            ModelConfig::Ncf(NcfRun {
                ncf: NcfConfig::new(30, 20)
                    .with_kind(NcfKind::Mlp)
                    .with_mlp_layers(vec![8, 4]),
                pretrained: None,
            }),
        );
        let pretrained = Pretrained {
            gmf: mf_dir.clone(),
            mlp: mlp_dir,
        };
        let neumf = |gmf_dim: usize| {
            let config = NcfConfig::new(30, 20)
                .with_gmf_dim(gmf_dim)
                .with_mlp_layers(vec![8, 4])
                .with_alpha(1.0);
            let device = device(BackendKind::Flex, 0).unwrap();
            ncf_from_pretrained(&config, &pretrained, &ids, &device)
        };
        // With alpha 1 the MLP branch is weighted 0: NeuMF's logits are the MF's.
        let m = neumf(4 + 2).unwrap();
        let mf = match load_run(&mf_dir, Checkpoint::Best, None).unwrap().model {
            AnyModel::Mf(m) => m,
            _ => unreachable!(),
        };
        let d = Device::flex();
        let (users, items) = (
            Tensor::from_ints([0, 7, 29, 3], &d),
            Tensor::from_ints([0, 19, 5, 5], &d),
        );
        let want: Vec<f32> = mf
            .logits(users.clone(), items.clone())
            .into_data()
            .try_into_vec_as()
            .unwrap();
        let (users, items) = (
            Tensor::from_data(users.into_data(), &m.output.weight.device()),
            Tensor::from_data(items.into_data(), &m.output.weight.device()),
        );
        let got: Vec<f32> = m
            .logits_with_penalty(users, items, false)
            .0
            .into_data()
            .try_into_vec_as()
            .unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        // The GMF width must be the MF's factors + 2.
        let err = neumf(4).unwrap_err();
        assert!(err.to_string().contains("factors + 2"), "{err}");
    }

    #[test]
    fn refit_starts_selection_runs_from_the_source_runs_selection_runs() {
        let (train, valid) = synthetic();
        let tmp = tempfile::tempdir().unwrap();
        let ids = ids(30, 20);
        let ncf = |kind| {
            NcfConfig::new(30, 20)
                .with_kind(kind)
                .with_gmf_dim(4)
                .with_mlp_layers(vec![8, 4])
                .with_output(MfOutput::Linear)
                .with_global_mean(train.mean_rating() as f32)
        };
        let run = |name: &str, kind, pretrained| {
            let mut c = run_config(
                ModelConfig::Ncf(NcfRun {
                    ncf: ncf(kind),
                    pretrained,
                }),
                3,
            );
            c.train.refit = true;
            let dir = tmp.path().join(name);
            train_run(&dir, &c, &ids, &train, Some(&valid), true).unwrap();
            dir
        };
        let pretrained = Pretrained {
            gmf: run("gmf", NcfKind::Gmf, None),
            mlp: run("mlp", NcfKind::Mlp, None),
        };
        let neumf = run("neumf", NcfKind::Neumf, Some(pretrained.clone()));
        let pre = |dir: &Path| match RunDir::open(dir).unwrap().read_config::<RunConfig>() {
            Ok(RunConfig {
                model:
                    ModelConfig::Ncf(NcfRun {
                        pretrained: Some(p),
                        ..
                    }),
                ..
            }) => p,
            _ => panic!("not a pretrained NeuMF run"),
        };
        let p = pre(&neumf.join(SELECTION_DIR));
        assert_eq!(p.gmf, pretrained.gmf.join(SELECTION_DIR));
        assert_eq!(p.mlp, pretrained.mlp.join(SELECTION_DIR));
        assert_eq!(pre(&neumf).gmf, pretrained.gmf);

        // A regressor on a refit MF run: its selection run reads the MF selection run's tables,
        // the regressor itself the refit MF's.
        let mut mf = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 3);
        mf.train.refit = true;
        let mf_dir = tmp.path().join("mf");
        train_run(&mf_dir, &mf, &ids, &train, Some(&valid), true).unwrap();
        let mut reg = run_config(
            ModelConfig::Regressor(RegressorRun {
                mf_run: mf_dir.clone(),
                regressor: regressor_config_for_mf_run(&mf_dir).unwrap(),
            }),
            2,
        );
        reg.train.refit = true;
        let reg_dir = tmp.path().join("reg");
        train_run(&reg_dir, &reg, &ids, &train, Some(&valid), true).unwrap();
        let users = |dir: &Path| match load_run(dir, Checkpoint::Best, None).unwrap().model {
            AnyModel::Mf(m) => m.user_embedding.table().into_data(),
            AnyModel::Regressor(m) => m.user_embedding.table().into_data(),
            _ => unreachable!(),
        };
        let (mf_select, mf_refit) = (users(&mf_dir.join(SELECTION_DIR)), users(&mf_dir));
        assert_ne!(mf_select, mf_refit);
        assert_eq!(users(&reg_dir.join(SELECTION_DIR)), mf_select);
        assert_eq!(users(&reg_dir), mf_refit);
    }

    #[test]
    fn hidden_ratings_check_reports_on_hidden_entries() {
        let (train, valid) = synthetic();
        let device = device(BackendKind::Flex, 0).unwrap();
        let m = AutoRecConfig::new(30, 20)
            .with_hidden(vec![8])
            .init(&device)
            .unwrap();
        let plain = device.without_autodiff();
        let m = m.valid();
        let known = Interactions::concat(&[&train, &valid]);
        let h = crate::trainer::hidden_ratings_check(&m, &known, 25, 1, Some((1.0, 5.0)), &plain);
        assert_eq!(h.n, 25);
        assert!(h.rmse.is_finite() && h.rmse > 0.0);
    }
}
