//! `recsys train`: flags to [`Overrides`], then `recsys_train::setup` and `train_run`; printing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use recsys_models::{Activation, AutoRecBase, NcfInput};
use recsys_train::{
    Checkpoint, ConfigFile, LossName, Metric, ModelConfig, ModelOverrides, OptimizerName,
    Overrides, Pretrained, Protocol, TaskKind, TrainSummary, load_run, resume_run, setup,
    train_run,
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
    model: Option<String>,
    /// Continue the run in this directory from its last weights and optimizer state for
    /// --epochs more epochs, on the data and split it was trained on.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// The MF run whose embeddings a regressor reads (frozen).
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// Hidden layer widths, e.g. 1500,500,1500 (recnet, regressor, autorec, two-tower; mlp and
    /// neumf: the MLP tower, the first width being `[user ; item]`).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Dropout rate (recnet, regressor, autorec; mlp and neumf: after each MLP layer).
    #[arg(long)]
    dropout: Option<f64>,
    /// AutoRec reconstructs items' rating vectors (I-AutoRec, the default).
    #[arg(long, conflicts_with = "user_based")]
    item_based: bool,
    /// AutoRec reconstructs users' rating vectors (U-AutoRec, as in the AutoRec notebook).
    #[arg(long)]
    user_based: bool,
    /// Hidden activation of AutoRec and the NCF MLP.
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// What to learn: rating (predict ratings) or implicit (rank items: every rated pair is a
    /// positive, unseen items are sampled as negatives).
    #[arg(long, value_enum)]
    task: Option<TaskKind>,
    /// Negatives sampled per positive for implicit bce (resampled every epoch).
    #[arg(long)]
    negatives: Option<usize>,
    /// Validation ranking of implicit runs: sampled (each held-out pair among 99 fixed
    /// negatives), full (all items, training items excluded) or factorized (all items).
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// The validation metric that picks the best epoch: rmse, mae, ... or hr@10, ndcg@10, ...
    #[arg(long)]
    metric: Option<Metric>,
    /// NCF inputs: ids (embedding tables) or rating-vectors (the user's row and the item's
    /// column of the training rating matrix, projected by dense layers).
    #[arg(long, value_enum)]
    input: Option<NcfInput>,
    /// NeuMF starts from this trained gmf run (with --pretrained-mlp), or from an mf run: MF is
    /// GMF with h = 1, and its d factors and biases make a GMF branch of width d + 2 (so
    /// --embedding-dim d+2).
    #[arg(long, requires = "pretrained_mlp")]
    pretrained_gmf: Option<PathBuf>,
    /// NeuMF starts from this trained mlp run (with --pretrained-gmf).
    #[arg(long, requires = "pretrained_gmf")]
    pretrained_mlp: Option<PathBuf>,
    /// Softmax temperature of the two-tower retrieval task.
    #[arg(long)]
    temperature: Option<f64>,
    /// Correct the two-tower's in-batch softmax for item popularity (logQ).
    #[arg(long)]
    logq: bool,
    /// Keep an out-of-vocabulary row in the two-tower's tables (unknown ids map to it).
    #[arg(long)]
    oov: bool,
    /// A TOML config (the layout of a run's config.toml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    split: SplitArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Steps between two read-backs of the training loss (default 0: automatic, 64 on a GPU
    /// and 1 elsewhere). More lets a GPU queue work ahead; a non-finite loss is then noticed up
    /// to N steps late (and still named by its step).
    #[arg(long)]
    readback_steps: Option<usize>,
    /// Time each phase of a training step (batch, forward, backward, optimizer, read-back),
    /// waiting for the device after each; each epoch's line in metrics.jsonl gets a `profile`.
    #[arg(long)]
    profile: bool,
    /// After training, train a fresh model on the training and validation parts together for
    /// the best epoch's number of epochs (the first run is kept in <run>/selection).
    #[arg(long)]
    refit: bool,
    /// Learning rate.
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerName>,
    /// Weight decay (L2 on all parameters, or decoupled for adamw).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Seed of initialisation, shuffling and the split.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many epochs without a better validation metric.
    #[arg(long)]
    patience: Option<usize>,
    /// Embedding width (NCF: of the GMF branch).
    #[arg(long)]
    embedding_dim: Option<usize>,
    /// Learn user and item biases (and the global mean).
    #[arg(long)]
    bias: bool,
    /// Squash the output into the rating range with a scaled sigmoid.
    #[arg(long)]
    rating_range: bool,
    /// Ratings: mse, or bce (mf: on min-max normalised ratings, through a sigmoid: Keras
    /// version 4). Implicit: bce (pointwise, with --negatives), bpr (pairwise) or softmax
    /// (in-batch, two-tower).
    #[arg(long, value_enum)]
    loss: Option<LossName>,
    /// L2 penalty on the looked-up embeddings (and biases).
    #[arg(long)]
    l2: Option<f64>,
    /// Run directory (default: runs/<model>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
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
    fn overrides(&self) -> Overrides {
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
            },
        }
    }

    fn model(&self) -> &str {
        self.model.as_deref().unwrap_or("mf")
    }

    fn quiet(&self) -> bool {
        self.quiet || self.json
    }
}

pub fn train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    if let Some(dir) = &args.resume {
        return resume(&args, dir);
    }
    let file = args.config.as_deref().map(ConfigFile::read).transpose()?;
    let mut config = setup::draft(args.model(), file.as_ref(), args.overrides())?;
    let prep = prepare(&args.source, &args.split, config.train.seed)?;
    let ds = &prep.dataset;
    setup::size(
        &mut config,
        ds.interactions.n_users,
        ds.interactions.n_items,
        ds.scale,
        prep.train.mean_rating(),
        prep.recipe.clone(),
    );
    recsys_train::memory::check_memory(&config, true)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("{}-{stamp}", args.model()))
    });
    let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
    let summary = train_run(&dir, &config, &ds.ids, &prep.train, valid, args.quiet())?;
    report(&args, &dir, &prep, summary, started)
}

/// `--resume DIR`: more epochs of an existing run, on the data and split it recorded.
fn resume(args: &TrainArgs, dir: &Path) -> Result<()> {
    let started = Instant::now();
    let run = recsys_train::RunDir::open(dir)?;
    let config: recsys_train::RunConfig = run.read_config()?;
    let prep = crate::prep::replay(&config.data, None)?;
    let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
    let extra = args.epochs.unwrap_or(config.train.epochs);
    let summary = resume_run(
        dir,
        args.model.as_deref(),
        extra,
        &prep.dataset.ids,
        &prep.train,
        valid,
        args.quiet(),
    )?;
    report(args, dir, &prep, summary, started)
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
    let run = load_run(dir, Checkpoint::Best, None)?;
    let config = &run.config;
    let part = if prep.test.is_empty() {
        recsys_train::Part::Valid
    } else {
        recsys_train::Part::Test
    };
    let metrics = match config.task.implicit() {
        Some(t) => heldout_metrics(dir, &run, prep, part, t.protocol, &t.ks.clone(), None)?,
        None => Metrics::Rating(run.evaluate(prep.parts().get(part))),
    };
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
