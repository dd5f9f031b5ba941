//! `recsys train`: flags to [`Overrides`], then `recsys_train::setup` and `train_run`; printing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use recsys_models::{Activation, AutoRecBase, NcfInput};
use recsys_train::{
    Checkpoint, ConfigFile, DirState, LossName, Metric, ModelConfig, ModelOverrides, OptimizerName,
    Overrides, Pretrained, Protocol, ResumeOptions, RunDir, TaskKind, TrainSummary, load_run,
    resume_run, setup, train_run,
};
use serde_json::json;

use crate::args::BackendArgs;
use crate::data_cmd::SourceArgs;
use crate::eval_cmd::{Metrics, heldout_metrics, rating_json};
use crate::prep::{Prepared, SplitArgs, prepare};

#[derive(Args)]
pub struct TrainArgs {
    /// Model: mf, recnet (Keras RecommenderNet), regressor (on a trained MF run's frozen
    /// embeddings, see --embeddings), autorec, gmf, mlp, neumf (neural collaborative
    /// filtering), or two-tower (retrieval with an in-batch softmax).
    /// [default: mf]
    #[arg(long, value_parser = model_name)]
    pub(crate) model: Option<String>,
    /// Continue the run in this directory from its last committed epoch (weights and optimizer
    /// state), on the data and split it was trained on: --epochs more epochs, or without
    /// --epochs the epochs it still had planned (as many again when it finished). --backend,
    /// --device-index, --readback-steps, --profile and --patience may change; a flag that
    /// contradicts the run (its data, model or training settings) is an error.
    #[arg(long)]
    pub(crate) resume: Option<PathBuf>,
    /// The MF run whose embeddings a regressor reads (frozen).
    #[arg(long)]
    pub(crate) embeddings: Option<PathBuf>,
    /// Hidden layer widths, e.g. 1500,500,1500 (recnet, regressor, autorec, two-tower; mlp and
    /// neumf: the MLP tower, the first width being `[user ; item]`).
    #[arg(long, value_delimiter = ',')]
    pub(crate) hidden: Option<Vec<usize>>,
    /// Dropout rate (recnet, regressor, autorec; mlp and neumf: after each MLP layer).
    #[arg(long)]
    pub(crate) dropout: Option<f64>,
    /// AutoRec reconstructs items' rating vectors (I-AutoRec, the default).
    #[arg(long, conflicts_with = "user_based")]
    pub(crate) item_based: bool,
    /// AutoRec reconstructs users' rating vectors (U-AutoRec, as in the AutoRec notebook).
    #[arg(long)]
    pub(crate) user_based: bool,
    /// Hidden activation of AutoRec and the NCF MLP.
    #[arg(long, value_enum)]
    pub(crate) activation: Option<Activation>,
    /// What to learn: rating (predict ratings) or implicit (rank items: every rated pair is a
    /// positive, unseen items are sampled as negatives).
    #[arg(long, value_enum)]
    pub(crate) task: Option<TaskKind>,
    /// Negatives sampled per positive for implicit bce (resampled every epoch).
    #[arg(long)]
    pub(crate) negatives: Option<usize>,
    /// Validation ranking of implicit runs: sampled (each held-out pair among 99 fixed
    /// negatives), full (all items, training items excluded) or factorized (all items).
    #[arg(long, value_enum)]
    pub(crate) protocol: Option<Protocol>,
    /// The validation metric that picks the best epoch: rmse, mae, ... or hr@10, ndcg@10, ...
    #[arg(long)]
    pub(crate) metric: Option<Metric>,
    /// NCF inputs: ids (embedding tables) or rating-vectors (the user's row and the item's
    /// column of the training rating matrix, projected by dense layers).
    #[arg(long, value_enum)]
    pub(crate) input: Option<NcfInput>,
    /// NeuMF starts from this trained gmf run (with --pretrained-mlp), or from an mf run: MF is
    /// GMF with h = 1, and its d factors and biases make a GMF branch of width d + 2 (so
    /// --embedding-dim d+2).
    #[arg(long, requires = "pretrained_mlp")]
    pub(crate) pretrained_gmf: Option<PathBuf>,
    /// NeuMF starts from this trained mlp run (with --pretrained-gmf).
    #[arg(long, requires = "pretrained_gmf")]
    pub(crate) pretrained_mlp: Option<PathBuf>,
    /// Softmax temperature of the two-tower retrieval task.
    #[arg(long)]
    pub(crate) temperature: Option<f64>,
    /// Correct the two-tower's in-batch softmax for item popularity (logQ); on by default,
    /// `--logq false` turns it off.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) logq: Option<bool>,
    /// Keep an out-of-vocabulary row in the two-tower's tables (unknown ids map to it).
    #[arg(long)]
    pub(crate) oov: bool,
    /// A TOML config (the layout of a run's config.toml); flags override it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
    #[command(flatten)]
    pub(crate) split: SplitArgs,
    #[command(flatten)]
    pub(crate) backend: BackendArgs,
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Steps between two read-backs of the training loss (default 0: automatic, 64 on a GPU
    /// and 1 elsewhere). More lets a GPU queue work ahead; a non-finite loss is then noticed up
    /// to N steps late (and still named by its step).
    #[arg(long)]
    pub(crate) readback_steps: Option<usize>,
    /// Time each phase of a training step (batch, forward, backward, optimizer, read-back),
    /// waiting for the device after each; each epoch's line in metrics.jsonl gets a `profile`.
    #[arg(long)]
    pub(crate) profile: bool,
    /// After training, train a fresh model on the training and validation parts together for
    /// the best epoch's number of epochs (the first run is kept in <run>/selection). On by
    /// default for mf (off without a validation part); `--refit false` turns it off.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) refit: Option<bool>,
    /// Learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) lr: Option<f64>,
    #[arg(long, value_enum)]
    pub(crate) optimizer: Option<OptimizerName>,
    /// Weight decay (L2 on all parameters, or decoupled for adamw).
    #[arg(long)]
    pub(crate) weight_decay: Option<f64>,
    /// Seed of initialisation, shuffling and the split.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Stop after this many epochs without a better validation metric.
    #[arg(long)]
    pub(crate) patience: Option<usize>,
    /// Embedding width (NCF: of the GMF branch).
    #[arg(long)]
    pub(crate) embedding_dim: Option<usize>,
    /// Learn user and item biases (and the global mean): on by default for mf; `--bias false`
    /// gives the plain dot product.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub(crate) bias: Option<bool>,
    /// Squash the output into the rating range with a scaled sigmoid.
    #[arg(long)]
    pub(crate) rating_range: bool,
    /// Ratings: mse, or bce (mf: on min-max normalised ratings, through a sigmoid: Keras
    /// version 4). Implicit: bce (pointwise, with --negatives), bpr (pairwise) or softmax
    /// (in-batch, two-tower).
    #[arg(long, value_enum)]
    pub(crate) loss: Option<LossName>,
    /// item-knn: neighbours per prediction (the most similar items the user rated).
    #[arg(long)]
    pub(crate) neighbours: Option<usize>,
    /// item-knn: shrinkage of similarities from few common users; popularity: pseudo-ratings
    /// at the global mean added to each item's ratings.
    #[arg(long)]
    pub(crate) shrinkage: Option<f64>,
    /// item-knn: pearson (of baseline residuals) or cosine (of ratings).
    #[arg(long, value_enum)]
    pub(crate) similarity: Option<recsys_models::Similarity>,
    /// baseline: biases by gradient descent (sgd, with the optimiser flags) or alternating
    /// least squares in closed form (als, as Surprise's BaselineOnly).
    #[arg(long, value_enum)]
    pub(crate) algo: Option<recsys_models::BaselineFit>,
    /// Rating normalisation the model learns with (rating tasks): none, max (divide by the top
    /// of the scale), minmax (into [0, 1]) or center (the training mean subtracted). Recorded in
    /// the run; predictions are mapped back to the rating scale.
    #[arg(long, value_enum)]
    pub(crate) normalize: Option<recsys_data::NormalizeKind>,
    /// L2 penalty on the looked-up embeddings (and biases).
    #[arg(long)]
    pub(crate) l2: Option<f64>,
    /// Run directory (default: runs/<model>-<time>): a new or empty folder; an existing run
    /// is refused unless --overwrite.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Replace the run in --out: its files are removed first (other files in the folder stay).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) overwrite: bool,
    /// No progress output.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--model`: one of the registry's model names.
pub fn model_name(s: &str) -> Result<String, String> {
    match ModelConfig::canonical(s) {
        Some(name) => Ok(name.to_string()),
        None => Err(format!(
            "unknown model {s:?}: expected {}",
            ModelConfig::model_names().join(", ")
        )),
    }
}

impl TrainArgs {
    pub(crate) fn overrides(&self) -> Overrides {
        let base = match (self.user_based, self.item_based) {
            (true, _) => Some(AutoRecBase::User),
            (_, true) => Some(AutoRecBase::Item),
            _ => None,
        };
        let pretrained = match (&self.pretrained_gmf, &self.pretrained_mlp) {
            (Some(gmf), Some(mlp)) => Some(Pretrained {
                gmf: gmf.clone(),
                mlp: mlp.clone(),
            }),
            _ => None,
        };
        Overrides {
            backend: self.backend.backend,
            device_index: self.backend.device_index,
            epochs: self.epochs,
            batch_size: self.batch_size,
            readback_steps: self.readback_steps,
            profile: self.profile,
            refit: self.refit,
            seed: self.seed,
            patience: self.patience,
            lr: self.lr,
            weight_decay: self.weight_decay,
            optimizer: self.optimizer,
            metric: self.metric,
            task: self.task,
            loss: self.loss,
            negatives: self.negatives,
            protocol: self.protocol,
            normalize: self.normalize,
            model: ModelOverrides {
                embedding_dim: self.embedding_dim,
                hidden: self.hidden.clone(),
                dropout: self.dropout,
                l2: self.l2,
                activation: self.activation,
                base,
                input: self.input,
                temperature: self.temperature,
                logq: self.logq,
                oov: self.oov,
                bias: self.bias,
                rating_range: self.rating_range,
                rating_loss: None,
                pretrained,
                embeddings: self.embeddings.clone(),
                neighbours: self.neighbours,
                shrinkage: self.shrinkage,
                similarity: self.similarity,
                baseline_fit: self.algo,
            },
        }
    }

    pub(crate) fn model(&self) -> &str {
        self.model.as_deref().unwrap_or("mf")
    }

    pub(crate) fn quiet(&self) -> bool {
        self.quiet || self.json
    }
}

/// The flags given on the command line (not defaulted), by argument id.
#[derive(Default)]
pub struct Given(Vec<String>);

impl From<&ArgMatches> for Given {
    fn from(m: &ArgMatches) -> Self {
        Given(
            m.ids()
                .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.as_str().to_string())
                .collect(),
        )
    }
}

impl Given {
    fn has(&self, id: &str) -> bool {
        self.0.iter().any(|g| g == id)
    }
}

pub fn train(args: TrainArgs, given: &Given) -> Result<()> {
    let started = Instant::now();
    if let Some(dir) = &args.resume {
        return resume(&args, dir, given);
    }
    let file = args.config.as_deref().map(ConfigFile::read).transpose()?;
    let mut config = setup::draft(args.model(), file.as_ref(), args.overrides())?;
    let prep = prepare(&args.source, &args.split, config.train.seed)?;
    let ds = &prep.dataset;
    prep.size(&mut config)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("{}-{stamp}", args.model()))
    });
    check_out(&dir, args.overwrite)?;
    let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
    let summary = train_run(&dir, &config, &ds.ids, &prep.train, valid, args.quiet())?;
    report(&args, &dir, &prep, summary, started)
}

/// `--out`: a new or empty folder, or with `--overwrite` a run to replace.
fn check_out(dir: &Path, overwrite: bool) -> Result<()> {
    let shown = dir.display();
    match RunDir::probe(dir)? {
        DirState::Missing | DirState::Empty => Ok(()),
        DirState::Run if overwrite => Ok(()),
        DirState::Run => bail!(
            "--out {shown} is a run directory already: continue it with --resume {shown}, or \
             replace it with --overwrite"
        ),
        DirState::Other(name) => bail!(
            "--out {shown} is not empty and is not a run directory (it holds {name:?}): give a \
             new or empty folder"
        ),
        DirState::NotAFolder => bail!("--out {shown} is a file, not a folder"),
    }
}

/// `--resume DIR`: more epochs of an existing run, on the data and split it recorded.
fn resume(args: &TrainArgs, dir: &Path, given: &Given) -> Result<()> {
    let started = Instant::now();
    let run = RunDir::open(dir)?;
    let config: recsys_train::RunConfig = run.read_config()?;
    check_resume_flags(args, dir, &config, given)?;
    let mut overrides = args.overrides();
    overrides.epochs = None;
    // Fails fast, before the data is read, on a flag that contradicts the run.
    recsys_train::resume_config(&config, overrides.clone())?;
    let prep = crate::prep::replay(&config.data, None)?;
    let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
    let options = ResumeOptions {
        model: args.model.clone(),
        more_epochs: args.epochs,
        overrides,
        quiet: args.quiet(),
    };
    let summary = resume_run(dir, &options, &prep.dataset.ids, &prep.train, valid)?;
    report(args, dir, &prep, summary, started)
}

/// The data flags of a resumed run: each one given must say what the run's `[data]` recipe
/// says (a resumed run replays it), `--out` must be the run itself, and a config file cannot
/// be given.
fn check_resume_flags(
    args: &TrainArgs,
    dir: &Path,
    config: &recsys_train::RunConfig,
    given: &Given,
) -> Result<()> {
    let recipe = &config.data;
    let contradicts = |flag: &str, value: &dyn std::fmt::Debug| -> anyhow::Error {
        anyhow::anyhow!(
            "--{flag} contradicts the run being resumed, whose config.toml records {value:?}; a \
             resumed run keeps its data and split (train a new run to change them)"
        )
    };
    let same_path = |a: &str, b: &str| {
        a == b
            || matches!(
                (Path::new(a).canonicalize(), Path::new(b).canonicalize()),
                (Ok(x), Ok(y)) if x == y
            )
    };
    let src = &args.source;
    if given.has("data") && !same_path(&src.data, &recipe.source) {
        return Err(contradicts("data", &recipe.source));
    }
    if given.has("format") && src.format != recipe.format {
        return Err(contradicts("format", &recipe.format));
    }
    if given.has("split") && args.split.split != recipe.split {
        return Err(contradicts("split", &recipe.split));
    }
    if given.has("valid") && args.split.valid != recipe.valid {
        return Err(contradicts("valid", &recipe.valid));
    }
    if given.has("test") && args.split.test != recipe.test {
        return Err(contradicts("test", &recipe.test));
    }
    if given.has("positives_above") && src.positives_above != recipe.positives_above {
        return Err(contradicts("positives-above", &recipe.positives_above));
    }
    if given.has("items_by_title") && src.items_by_title != recipe.items_by_title {
        return Err(contradicts("items-by-title", &recipe.items_by_title));
    }
    for (id, flag) in [
        ("delimiter", "--delimiter"),
        ("header", "--header"),
        ("columns", "--columns"),
        ("scale", "--scale"),
        ("duplicates", "--duplicates"),
    ] {
        if given.has(id) {
            bail!(
                "{flag} cannot be given with --resume: a resumed run reads its data as its \
                 config.toml records it (source {:?})",
                recipe.source
            );
        }
    }
    if given.has("config") {
        bail!("--config cannot be given with --resume: a resumed run keeps its own config.toml");
    }
    if let Some(out) = &args.out
        && !same_path(&out.to_string_lossy(), &dir.to_string_lossy())
    {
        bail!(
            "--out {} contradicts --resume {}: a resumed run is written where it is",
            out.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The best weights of the run in `dir` scored on the test part (or the validation part without
/// one): rating metrics, or for implicit runs the ranking metrics of the run's protocol.
pub(crate) fn score(
    dir: &Path,
    prep: &Prepared,
) -> Result<(recsys_train::LoadedRun, recsys_train::Part, Metrics)> {
    let run = load_run(dir, Checkpoint::Best, None)?;
    let part = if prep.test.is_empty() {
        recsys_train::Part::Valid
    } else {
        recsys_train::Part::Test
    };
    let metrics = match run.config.task.implicit() {
        Some(t) => heldout_metrics(dir, &run, prep, part, t.protocol, &t.ks.clone(), None)?,
        None => Metrics::Rating(run.evaluate(prep.parts().get(part))),
    };
    Ok((run, part, metrics))
}

/// Scores the best weights on the test part (or the validation part without one) and prints
/// the outcome: rating metrics, or for implicit runs the ranking metrics of the run's protocol.
fn report(
    args: &TrainArgs,
    dir: &Path,
    prep: &Prepared,
    summary: TrainSummary,
    started: Instant,
) -> Result<()> {
    let (run, part, metrics) = score(dir, prep)?;
    let config = &run.config;
    if args.json {
        println!(
            "{}",
            json!({
                "run_dir": dir.display().to_string(),
                "model": config.model.name(),
                "backend": config.backend.to_string(),
                "adapter": summary.adapter,
                "metrics": metrics.json(),
                "valid_metrics": summary.best_valid.as_ref().map(rating_json)
                    .or_else(|| summary.best_ranking.as_ref().map(|r| json!(r))),
                "best_epoch": summary.best_epoch,
                "epochs": summary.history.len(),
                "refit": config.train.refit,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
    } else {
        let refit = if config.train.refit {
            " (refit on the training and validation parts)"
        } else {
            ""
        };
        println!(
            "{} on {} ({}): best epoch {} of {}{refit}",
            config.model.name(),
            config.backend,
            summary.adapter,
            summary.best_epoch,
            summary.history.len()
        );
        metrics.print(part.name());
        println!("run directory: {}", dir.display());
    }
    Ok(())
}
