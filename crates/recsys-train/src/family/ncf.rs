//! Neural collaborative filtering ([`Ncf`]): GMF, MLP and NeuMF, on id embeddings or on rating
//! vectors; NeuMF can start from pretrained GMF (or MF) and MLP runs.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use recsys_data::{IdMap, Interactions};
use recsys_models::{Activation, EmbeddingInit, MfOutput, Ncf, NcfConfig, NcfInput, NcfKind};
use serde::{Deserialize, Serialize};

use super::{DataShape, Family, Fit, ModelConfig, ModelOverrides, pairs_task, take, take_f32};
use crate::error::{Result, TrainError};
use crate::optim::LrSchedule;
use crate::record::TrainSummary;
use crate::run_dir::{Checkpoint, RunDir, check_same_ids};
use crate::task::{Task, TaskKind};
use crate::trainer::TrainConfig;

/// The `[model]` table of an NCF model: its settings, and the runs NeuMF starts from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NcfSetup {
    pub ncf: NcfConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<Pretrained>,
}

/// Trained GMF and MLP runs (same data) whose weights a NeuMF model starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pretrained {
    pub gmf: PathBuf,
    pub mlp: PathBuf,
}

/// This family's `[model]` table (the registry names it `ncf::Config`).
pub type Config = NcfSetup;

impl Family for NcfSetup {
    type Model = Ncf;
    const MODELS: &'static [&'static str] = &["gmf", "mlp", "neumf"];

    fn named(name: &str, task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        let kind = match name {
            "gmf" => NcfKind::Gmf,
            "mlp" => NcfKind::Mlp,
            _ => NcfKind::Neumf,
        };
        // README's quality table: implicit feedback (leave-last-out) as logits, GMF 32 and the
        // MLP 128-64-32-16 with dropout 0.2, L2 0.0001; ratings (u1) through a linear output,
        // GMF 32 and the MLP 64-32-16, L2 0.0003.
        let ncf = NcfConfig::new(1, 1).with_kind(kind).with_embedding_dim(32);
        let ncf = match task {
            TaskKind::Rating => ncf
                .with_output(MfOutput::Linear)
                .with_mlp_layers(vec![64, 32, 16])
                .with_l2(0.0003),
            TaskKind::Implicit => ncf
                .with_output(MfOutput::Logit)
                .with_mlp_layers(vec![128, 64, 32, 16])
                .with_dropout(if kind == NcfKind::Gmf { 0.0 } else { 0.2 })
                .with_l2(0.0001),
        };
        Ok(NcfSetup {
            ncf,
            pretrained: None,
        })
    }

    const SCALES_BATCH: bool = true;

    /// Adam 0.001, batches of 256, up to 20 epochs stopping after 5 without a better validation
    /// figure, refit; ratings on a cosine schedule.
    fn train_defaults(&self, task: &Task, train: &mut TrainConfig) {
        train.refit = true;
        train.epochs = 20;
        train.batch_size = 256;
        train.patience = Some(5);
        train.optimizer.lr = 0.001;
        if *task == Task::Rating {
            train.optimizer.schedule = LrSchedule::Cosine { min_lr: 0.0 };
        }
    }

    fn name(&self) -> &'static str {
        self.ncf.kind.name()
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        pairs_task(self.name(), task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, _task: &Task) -> Result<()> {
        let c = &mut self.ncf;
        take(&mut o.embedding_dim, &mut c.embedding_dim);
        take(&mut o.hidden, &mut c.mlp_layers);
        take(&mut o.dropout, &mut c.dropout);
        take_f32(&mut o.l2, &mut c.l2);
        take(&mut o.activation, &mut c.activation);
        take(&mut o.input, &mut c.input);
        if c.kind == NcfKind::Neumf
            && let Some(p) = o.pretrained.take()
        {
            self.pretrained = Some(p);
        }
        Ok(())
    }

    fn migrate(model: &mut toml::Table) {
        if let Some(toml::Value::Table(ncf)) = model.get_mut("ncf") {
            super::rename_key(ncf, "gmf_dim", "embedding_dim");
        }
    }

    fn set_seed(&mut self, seed: u64) {
        self.ncf.seed = seed;
    }

    fn size(&mut self, data: &DataShape) {
        let c = &mut self.ncf;
        c.n_users = data.n_users;
        c.n_items = data.n_items;
        (c.rating_min, c.rating_max) = data.scale;
        c.global_mean = data.mean as f32;
    }

    fn source_runs_mut(&mut self) -> Vec<&mut PathBuf> {
        match &mut self.pretrained {
            Some(p) => vec![&mut p.gmf, &mut p.mlp],
            None => Vec::new(),
        }
    }

    fn init(&self, device: &Device) -> Result<Ncf> {
        Ok(self.ncf.init(device)?)
    }

    fn build(&self, ids: &IdMap, device: &Device) -> Result<Ncf> {
        match &self.pretrained {
            Some(p) => ncf_from_pretrained(&self.ncf, p, ids, device),
            None => self.init(device),
        }
    }

    fn fit(&self, model: Ncf, fit: &Fit<'_>) -> Result<TrainSummary> {
        if model.input() == NcfInput::RatingVectors {
            fit.keep_train_rows()?;
        }
        fit.pairs(model.with_inputs(fit.train))
    }

    fn attach(&self, model: Ncf, run: &RunDir) -> Result<Ncf> {
        Ok(match model.input() {
            NcfInput::RatingVectors => {
                model.with_inputs(&run.read_train_rows((self.ncf.n_users, self.ncf.n_items))?)
            }
            NcfInput::Ids => model,
        })
    }

    fn reading(model: &Ncf, data: &Interactions) -> Option<Ncf> {
        match model.input() {
            NcfInput::RatingVectors => Some(model.clone().with_inputs(data)),
            NcfInput::Ids => None,
        }
    }

    /// On rating vectors, a user is their row of ratings over the items, whatever the number of
    /// users: a new user's history becomes that row.
    fn folds_in_rows(&self) -> bool {
        self.ncf.input == NcfInput::RatingVectors
    }

    fn reading_user_rows(model: &Ncf, rows: &Interactions) -> Option<Ncf> {
        match model.input() {
            NcfInput::RatingVectors => Some(model.clone().with_user_rows(rows)),
            NcfInput::Ids => None,
        }
    }

    fn vectors(model: &Ncf, _n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        model.id_vectors()
    }

    fn sanity(name: &str, shape: &DataShape, seed: u64) -> Option<Self> {
        let kind = Self::named(name, TaskKind::Rating, &mut ModelOverrides::default())
            .ok()?
            .ncf
            .kind;
        Some(NcfSetup {
            ncf: NcfConfig::new(shape.n_users, shape.n_items)
                .with_kind(kind)
                .with_embedding_dim(16)
                .with_mlp_layers(vec![32, 16, 8])
                .with_activation(Activation::LeakyRelu)
                .with_output(MfOutput::ScaledSigmoid)
                .with_rating_min(shape.scale.0)
                .with_rating_max(shape.scale.1)
                .with_global_mean(shape.mean as f32)
                .with_init(EmbeddingInit::Normal { std: 0.1 })
                .with_seed(seed),
            pretrained: None,
        })
    }
}

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
        let c = match super::read_model(dir)? {
            ModelConfig::Ncf(c) if c.ncf.kind == kind => c.ncf,
            // MF is GMF with h = 1: its vectors start the GMF branch (`Ncf::gmf_from_mf`).
            ModelConfig::Mf(c) if kind == NcfKind::Gmf => {
                if config.embedding_dim != c.embedding_dim + 2 {
                    return Err(TrainError::Config(format!(
                        "{}: an mf run of {} factors starts a GMF branch of width {} (factors + 2: \
                         the biases), this model's GMF width is {}",
                        dir.display(),
                        c.embedding_dim,
                        c.embedding_dim + 2,
                        config.embedding_dim
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
