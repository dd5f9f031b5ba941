//! `recsys train`, `recsys eval`, `recsys predict`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use recsys_data::{Interactions, TestNegatives, UserHistory};
use recsys_models::{
    AutoRecConfig, MfConfig, MfOutput, NcfConfig, NcfKind, RecommenderNetConfig, TwoTowerConfig,
};
use recsys_train::{
    BackendKind, Checkpoint, ImplicitTask, LoadedRun, ModelConfig, NcfRun, RankingMetrics,
    RankingTask, RatingMetrics, RegressorRun, RunConfig, Task, TrainConfig, load_run,
    regressor_config_for_mf_run, resume_run, train_run,
};
use serde_json::{Value, json};
use toml::Table;

use crate::data_cmd::SourceArgs;
use crate::prep::{RunArgs, SplitArgs, from_recipe, prepare};

/// Which device to run on.
#[derive(Args, Clone)]
pub struct BackendArgs {
    /// ndarray, flex (fast CPU) or wgpu (GPU through Vulkan, Metal or DX12).
    #[arg(long)]
    pub backend: Option<String>,
    /// Which wgpu adapter (0 = the first discrete GPU, else the first integrated one).
    #[arg(long)]
    pub device_index: Option<usize>,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Model family: mf, recnet (Keras RecommenderNet), regressor (on a trained MF run's frozen
    /// embeddings, see --embeddings), autorec, gmf, mlp, neumf (neural collaborative
    /// filtering), or two-tower (retrieval with an in-batch softmax).
    /// [default: mf]
    #[arg(long)]
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
    /// Hidden activation of AutoRec: sigmoid, relu or identity.
    #[arg(long)]
    activation: Option<String>,
    /// What to learn: rating (predict ratings) or implicit (rank items: every rated pair is a
    /// positive, unseen items are sampled as negatives).
    #[arg(long)]
    task: Option<String>,
    /// Negatives sampled per positive for implicit bce (resampled every epoch).
    #[arg(long)]
    negatives: Option<usize>,
    /// Validation ranking of implicit runs: sampled (each held-out pair among 99 fixed
    /// negatives) or full (all items, training items excluded).
    #[arg(long)]
    protocol: Option<String>,
    /// The validation metric that picks the best epoch: rmse, mae, ... or hr@10, ndcg@10, ...
    #[arg(long)]
    metric: Option<String>,
    /// NCF inputs: ids (embedding tables) or rating-vectors (the user's row and the item's
    /// column of the training rating matrix, projected by dense layers).
    #[arg(long)]
    input: Option<String>,
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
    #[arg(long)]
    lr: Option<f64>,
    /// adam, adamw, rmsprop, adagrad or sgd.
    #[arg(long)]
    optimizer: Option<String>,
    /// Weight decay (L2 on all parameters, or decoupled for adamw).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Seed of initialisation, shuffling and the split.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many epochs without a better validation metric.
    #[arg(long)]
    patience: Option<usize>,
    /// Embedding width.
    #[arg(long)]
    embedding_dim: Option<usize>,
    /// Learn user and item biases (and the global mean).
    #[arg(long)]
    bias: bool,
    /// Squash the output into the rating range with a scaled sigmoid.
    #[arg(long)]
    rating_range: bool,
    /// Ratings: mse, or bce (mf: on min-max normalised ratings, through a sigmoid: Keras
    /// version 4). Implicit: bce (pointwise, with --negatives) or bpr (pairwise).
    #[arg(long)]
    loss: Option<String>,
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

/// Sets `table[path] = value`, creating tables on the way.
fn set(table: &mut Table, path: &[&str], value: toml::Value) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut t = table;
    for p in parents {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Table::new()))
            .as_table_mut()
            .expect("a table");
    }
    t.insert(last.to_string(), value);
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

fn default_model(family: &str, embeddings: Option<&PathBuf>) -> Result<ModelConfig> {
    Ok(match family {
        "mf" => ModelConfig::Mf(MfConfig::new(1, 1)),
        "recnet" | "recommender_net" => {
            ModelConfig::RecommenderNet(RecommenderNetConfig::new(1, 1))
        }
        "autorec" => ModelConfig::AutoRec(AutoRecConfig::new(1, 1)),
        "two-tower" | "two_tower" | "twotower" => ModelConfig::TwoTower(TwoTowerConfig::new(1, 1)),
        "regressor" => {
            let Some(mf_run) = embeddings else {
                bail!("--model regressor needs --embeddings <an mf run directory>");
            };
            ModelConfig::Regressor(RegressorRun {
                mf_run: mf_run.clone(),
                regressor: regressor_config_for_mf_run(mf_run)?,
            })
        }
        "gmf" | "mlp" | "neumf" => {
            let kind = match family {
                "gmf" => NcfKind::Gmf,
                "mlp" => NcfKind::Mlp,
                _ => NcfKind::Neumf,
            };
            ModelConfig::Ncf(NcfRun {
                ncf: NcfConfig::new(1, 1).with_kind(kind),
                pretrained: None,
            })
        }
        other => bail!(
            "unknown model {other:?}: expected mf, recnet, regressor, autorec, gmf, mlp, neumf or \
             two-tower"
        ),
    })
}

/// The TOML path of a model setting in each family, or an error for a flag the family lacks.
fn model_key(family: &str, flag: &str) -> Result<Vec<&'static str>> {
    let key = match (family, flag) {
        ("mf", "embedding-dim") => "dim",
        ("recommender_net", "embedding-dim") => "embedding_dim",
        ("mf" | "recommender_net" | "autorec", "l2") => "l2",
        ("recommender_net" | "autorec", "hidden") => "hidden",
        ("recommender_net" | "autorec", "dropout") => "dropout",
        ("autorec", "activation") => "activation",
        ("autorec", "base") => "base",
        ("regressor", "hidden") => return Ok(vec!["model", "regressor", "hidden"]),
        ("regressor", "dropout") => return Ok(vec!["model", "regressor", "dropout"]),
        ("regressor", "l2") => return Ok(vec!["model", "regressor", "l2"]),
        ("two_tower", "embedding-dim") => "dim",
        ("two_tower", "hidden") => "hidden",
        ("two_tower", "l2") => "l2",
        ("two_tower", "temperature") => "temperature",
        ("two_tower", "oov") => "oov",
        ("two_tower", "logq") => "logq",
        ("ncf", flag) => {
            let key = match flag {
                "embedding-dim" => "gmf_dim",
                "hidden" => "mlp_layers",
                "dropout" => "dropout",
                "l2" => "l2",
                "activation" => "activation",
                "input" => "input",
                _ => bail!("--{flag} does not apply to model {family}"),
            };
            return Ok(vec!["model", "ncf", key]);
        }
        _ => bail!("--{flag} does not apply to model {family}"),
    };
    Ok(vec!["model", key])
}

pub fn train(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    // Defaults, then the config file, then flags.
    if let Some(dir) = &args.resume {
        return resume(&args, dir);
    }
    let model_name = args.model.as_deref().unwrap_or("mf");
    let model = default_model(model_name, args.embeddings.as_ref())?;
    let family = model.family();
    let defaults = RunConfig {
        model,
        train: TrainConfig::default(),
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [1.0, 5.0],
        task: Default::default(),
        data: Default::default(),
    };
    let mut table: Table = toml::from_str(&toml::to_string(&defaults)?)?;
    let mut file_table = None;
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let t: Table = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        if let Some(f) = t
            .get("model")
            .and_then(|m| m.get("family"))
            .and_then(|f| f.as_str())
            && f != family
        {
            bail!(
                "{} configures model {f:?}, but --model {} was given",
                path.display(),
                model_name
            );
        }
        merge(&mut table, t.clone());
        file_table = Some((path.clone(), t));
    }
    let v = |x: f64| toml::Value::Float(x);
    let i = |x: usize| toml::Value::Integer(x as i64);
    if let Some(b) = &args.backend.backend {
        let kind: BackendKind = b.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        set(&mut table, &["backend"], toml::Value::try_from(kind)?);
    }
    if let Some(d) = args.backend.device_index {
        set(&mut table, &["device_index"], i(d));
    }
    if let Some(e) = args.epochs {
        set(&mut table, &["train", "epochs"], i(e));
    }
    if let Some(b) = args.batch_size {
        set(&mut table, &["train", "batch_size"], i(b));
    }
    if let Some(r) = args.readback_steps {
        set(&mut table, &["train", "loss_readback_steps"], i(r));
    }
    if args.profile {
        set(
            &mut table,
            &["train", "profile"],
            toml::Value::Boolean(true),
        );
    }
    if args.refit {
        set(&mut table, &["train", "refit"], toml::Value::Boolean(true));
    }
    if let Some(s) = args.seed {
        set(&mut table, &["train", "seed"], i(s as usize));
        set(&mut table, &["model", "seed"], i(s as usize));
    }
    if let Some(p) = args.patience {
        set(&mut table, &["train", "patience"], i(p));
    }
    if let Some(lr) = args.lr {
        set(&mut table, &["train", "optimizer", "lr"], v(lr));
    }
    if let Some(wd) = args.weight_decay {
        set(&mut table, &["train", "optimizer", "weight_decay"], v(wd));
    }
    if let Some(o) = &args.optimizer {
        let name = match o.as_str() {
            "adam" | "adamw" | "rmsprop" | "adagrad" | "sgd" => o.clone(),
            other => {
                bail!("unknown optimizer {other:?}: expected adam, adamw, rmsprop, adagrad or sgd")
            }
        };
        let mut alg = Table::new();
        alg.insert("name".into(), toml::Value::String(name));
        set(
            &mut table,
            &["train", "optimizer", "algorithm"],
            toml::Value::Table(alg),
        );
    }
    if let Some(d) = args.embedding_dim {
        set(&mut table, &model_key(family, "embedding-dim")?, i(d));
    }
    if let Some(l2) = args.l2 {
        set(&mut table, &model_key(family, "l2")?, v(l2));
    }
    if let Some(h) = &args.hidden {
        let widths = h.iter().map(|&w| i(w)).collect();
        set(
            &mut table,
            &model_key(family, "hidden")?,
            toml::Value::Array(widths),
        );
    }
    if let Some(d) = args.dropout {
        set(&mut table, &model_key(family, "dropout")?, v(d));
    }
    if let Some(a) = &args.activation {
        let a = match a.as_str() {
            "sigmoid" | "relu" | "identity" => a.clone(),
            "leaky-relu" | "leaky_relu" => "leaky_relu".to_string(),
            other => bail!(
                "unknown activation {other:?}: expected sigmoid, relu, leaky-relu or identity"
            ),
        };
        set(
            &mut table,
            &model_key(family, "activation")?,
            toml::Value::String(a),
        );
    }
    if args.item_based || args.user_based {
        let base = if args.user_based { "user" } else { "item" };
        set(
            &mut table,
            &model_key(family, "base")?,
            toml::Value::String(base.into()),
        );
    }
    if let Some(t) = args.temperature {
        set(&mut table, &model_key(family, "temperature")?, v(t));
    }
    for (on, flag) in [(args.logq, "logq"), (args.oov, "oov")] {
        if on {
            set(
                &mut table,
                &model_key(family, flag)?,
                toml::Value::Boolean(true),
            );
        }
    }
    if let Some(input) = &args.input {
        let input = match input.as_str() {
            "ids" => "ids",
            "rating-vectors" | "rating_vectors" => "rating_vectors",
            other => bail!("unknown input {other:?}: expected ids or rating-vectors"),
        };
        set(
            &mut table,
            &model_key(family, "input")?,
            toml::Value::String(input.into()),
        );
    }
    if let (Some(gmf), Some(mlp)) = (&args.pretrained_gmf, &args.pretrained_mlp) {
        if model_name != "neumf" {
            bail!("--pretrained-gmf and --pretrained-mlp apply to model neumf");
        }
        let mut p = Table::new();
        p.insert("gmf".into(), toml::Value::String(gmf.display().to_string()));
        p.insert("mlp".into(), toml::Value::String(mlp.display().to_string()));
        set(&mut table, &["model", "pretrained"], toml::Value::Table(p));
    }
    // The task: ratings, or implicit feedback with its loss and validation ranking.
    let task = args.task.as_deref().unwrap_or_else(|| {
        match table
            .get("task")
            .and_then(|t| t.get("kind"))
            .and_then(|k| k.as_str())
        {
            Some("implicit") => "implicit",
            // The two-tower model learns from implicit feedback only.
            _ if family == "two_tower" => "implicit",
            _ => "rating",
        }
    });
    let implicit = match task {
        "rating" => false,
        "implicit" => true,
        other => bail!("unknown task {other:?}: expected rating or implicit"),
    };
    if !implicit && (args.negatives.is_some() || args.protocol.is_some()) {
        bail!("--negatives and --protocol apply to --task implicit");
    }
    if implicit {
        if !matches!(family, "mf" | "recommender_net" | "ncf" | "two_tower") {
            bail!(
                "--task implicit trains mf, recnet, gmf, mlp, neumf or two-tower, not {model_name}"
            );
        }
        let mut t = match table.get("task") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => Table::new(),
        };
        t.insert("kind".into(), toml::Value::String("implicit".into()));
        let defaults = if family == "two_tower" {
            // The TFRS retrieval task: in-batch softmax, factorized top-K accuracy.
            ImplicitTask {
                loss: "softmax".into(),
                protocol: "factorized".into(),
                ks: vec![1, 5, 10, 50, 100],
                ..ImplicitTask::default()
            }
        } else {
            ImplicitTask::default()
        };
        let known: Table = toml::from_str(&toml::to_string(&defaults)?)?;
        for (k, v) in known {
            t.entry(k).or_insert(v);
        }
        if let Some(l) = &args.loss {
            match l.as_str() {
                "bce" | "bpr" | "softmax" => {
                    t.insert("loss".into(), toml::Value::String(l.clone()));
                }
                other => bail!("unknown implicit loss {other:?}: expected bce, bpr or softmax"),
            }
        }
        if let Some(n) = args.negatives {
            t.insert("negatives".into(), i(n));
        }
        if let Some(p) = &args.protocol {
            match p.as_str() {
                "sampled" | "full" | "factorized" => {
                    t.insert("protocol".into(), toml::Value::String(p.clone()));
                }
                other => {
                    bail!("unknown protocol {other:?}: expected sampled, full or factorized")
                }
            }
        }
        let first_k = t
            .get("ks")
            .and_then(|k| k.as_array())
            .and_then(|k| k.last())
            .and_then(|k| k.as_integer())
            .unwrap_or(10);
        table.insert("task".into(), toml::Value::Table(t));
        if args.metric.is_none()
            && !table["train"]
                .get("metric")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.contains('@'))
        {
            set(
                &mut table,
                &["train", "metric"],
                toml::Value::String(format!("hr@{first_k}")),
            );
        }
    }
    if let Some(m) = &args.metric {
        let metric: recsys_train::Metric = m.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        set(
            &mut table,
            &["train", "metric"],
            toml::Value::String(metric.to_string()),
        );
    }
    if family != "mf" && (args.bias || args.rating_range) {
        bail!("--bias and --rating-range apply to model mf");
    }
    if family != "mf" && !implicit && args.loss.is_some() {
        bail!("--loss applies to model mf, or to --task implicit");
    }
    if args.bias {
        set(&mut table, &["model", "bias"], toml::Value::Boolean(true));
    }
    let output = match (implicit, args.loss.as_deref(), args.rating_range) {
        (true, _, _) => Some(MfOutput::Logit),
        (false, Some("bce"), _) => Some(MfOutput::Logit),
        (false, Some("mse") | None, true) => Some(MfOutput::ScaledSigmoid),
        (false, Some("mse") | None, false) => None,
        (false, Some(other), _) => bail!("unknown loss {other:?}: expected mse or bce"),
    };
    if let Some(o) = output
        && family == "mf"
    {
        set(&mut table, &["model", "output"], toml::Value::try_from(o)?);
    }

    // Data, then what only the data knows.
    let seed = table["train"]["seed"].as_integer().unwrap_or(42) as u64;
    let prep = prepare(&args.source, &args.split, seed)?;
    let ds = &prep.dataset;
    let model_table: &[&str] = match family {
        "regressor" => &["model", "regressor"],
        "ncf" => &["model", "ncf"],
        _ => &["model"],
    };
    let at = |k: &'static str| [model_table, &[k]].concat();
    set(&mut table, &at("n_users"), i(ds.interactions.n_users));
    set(&mut table, &at("n_items"), i(ds.interactions.n_items));
    let (lo, hi) = if implicit {
        (0.0, 1.0)
    } else {
        (ds.scale.0 as f64, ds.scale.1 as f64)
    };
    if !matches!(family, "autorec" | "two_tower") {
        set(&mut table, &at("rating_max"), v(hi));
    }
    if matches!(family, "mf" | "recommender_net" | "ncf") {
        set(&mut table, &at("rating_min"), v(lo));
    }
    let file_sets_output = file_table
        .as_ref()
        .and_then(|(_, t)| t.get("model")?.get("ncf")?.get("output"))
        .is_some();
    if family == "ncf" && !file_sets_output {
        let o = if implicit {
            MfOutput::Logit
        } else {
            MfOutput::ScaledSigmoid
        };
        set(&mut table, &at("output"), toml::Value::try_from(o)?);
    }
    set(
        &mut table,
        &["rating_scale"],
        toml::Value::Array(vec![v(ds.scale.0 as f64), v(ds.scale.1 as f64)]),
    );
    let mean = prep.train.mean_rating();
    if implicit {
        // The share of positives among the training examples.
        let positives = match table["task"]["loss"].as_str() {
            Some("bce") => {
                1.0 / (1.0 + table["task"]["negatives"].as_integer().unwrap_or(4) as f64)
            }
            _ => 0.5,
        };
        if matches!(family, "mf" | "ncf") {
            set(&mut table, &at("global_mean"), v(positives));
        }
    } else if family == "ncf" || table["model"].get("bias").and_then(|b| b.as_bool()) == Some(true)
    {
        set(&mut table, &at("global_mean"), v(mean));
    }
    let mut config: RunConfig = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {}", e.message()))?;
    if let Some((path, given)) = &file_table {
        let known: Table = toml::from_str(&toml::to_string(&config)?)?;
        let mut unknown = Vec::new();
        unknown_keys(given, &known, "", &mut unknown);
        if !unknown.is_empty() {
            bail!(
                "{}: unknown configuration key(s): {}",
                path.display(),
                unknown.join(", ")
            );
        }
    }
    config.data = prep.recipe.clone();

    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("{model_name}-{stamp}"))
    });
    let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
    let summary = train_run(
        &dir,
        &config,
        &ds.ids,
        &prep.train,
        valid,
        args.quiet || args.json,
    )?;
    report(&args, &dir, &prep, summary, started)
}

/// `--resume DIR`: more epochs of an existing run, on the data and split it recorded.
fn resume(args: &TrainArgs, dir: &Path) -> Result<()> {
    let started = Instant::now();
    let run = recsys_train::RunDir::open(dir)?;
    let config: RunConfig = run.read_config()?;
    let (source, split, seed) = from_recipe(&config.data)?;
    let prep = prepare(&source, &split, seed)?;
    let family = args.model.as_deref().map(|f| match f {
        "recnet" => "recommender_net",
        "gmf" | "mlp" | "neumf" => "ncf",
        f => f,
    });
    let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
    let extra = args.epochs.unwrap_or(config.train.epochs);
    let quiet = args.quiet || args.json;
    let summary = resume_run(
        dir,
        family,
        extra,
        &prep.dataset.ids,
        &prep.train,
        valid,
        quiet,
    )?;
    report(args, dir, &prep, summary, started)
}

/// Scores the best weights on the test part (or the validation part without one) and prints
/// the outcome: rating metrics, or for implicit runs the ranking metrics of the run's protocol.
fn report(
    args: &TrainArgs,
    dir: &Path,
    prep: &crate::prep::Prepared,
    summary: recsys_train::TrainSummary,
    started: Instant,
) -> Result<()> {
    let run = load_run(dir, Checkpoint::Best, None)?;
    let config = &run.config;
    let (part_name, part) = if prep.test.is_empty() {
        ("valid", &prep.valid)
    } else {
        ("test", &prep.test)
    };
    let metrics = match &config.task {
        Task::Implicit(t) => {
            let task = ranking_task(dir, &run, prep, part_name, &t.protocol, &t.ks, None)?;
            Metrics::Ranking(task.protocol(), run.rank(&task))
        }
        Task::Rating => Metrics::Rating(run.evaluate(part)),
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "run_dir": dir.display().to_string(),
                "model": config.model.name(),
                "backend": config.backend.to_string(),
                "adapter": summary.adapter,
                "metrics": metrics.json(),
                "valid_metrics": summary.best_valid.as_ref().map(metrics_json)
                    .or_else(|| summary.best_ranking.as_ref().map(|r| json!(r))),
                "best_epoch": summary.best_epoch,
                "epochs": summary.history.len(),
                "refit": config.train.refit,
                "seconds": seconds,
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
        metrics.print(part_name);
        println!("run directory: {}", dir.display());
    }
    Ok(())
}

/// Rating or ranking metrics of one evaluation.
enum Metrics {
    Rating(RatingMetrics),
    Ranking(&'static str, RankingMetrics),
}

impl Metrics {
    fn json(&self) -> Value {
        match self {
            Metrics::Rating(m) => metrics_json(m),
            Metrics::Ranking(_, m) => json!(m),
        }
    }

    fn print(&self, label: &str) {
        match self {
            Metrics::Rating(m) => print_metrics(label, m),
            Metrics::Ranking(protocol, m) => {
                let mut ks: Vec<usize> =
                    m.0.keys()
                        .filter_map(|k| k.strip_prefix("hr@")?.parse().ok())
                        .collect();
                ks.sort_unstable();
                println!("{label} ({protocol} ranking, {} lists):", m.n());
                for k in ks {
                    let g = |name: &str| m.get(&format!("{name}@{k}")).unwrap_or(f64::NAN);
                    println!(
                        "  @{k:<4} hr {:.4}  ndcg {:.4}  recall {:.4}  precision {:.4}  map {:.4}  mrr {:.4}",
                        g("hr"),
                        g("ndcg"),
                        g("recall"),
                        g("precision"),
                        g("map"),
                        g("mrr")
                    );
                }
                if let (Some(mrr), Some(auc)) = (m.get("mrr"), m.get("auc")) {
                    println!("  mrr {mrr:.4}  auc {auc:.4}");
                }
            }
        }
    }
}

/// The ranking evaluation of `part` (named `part_name`) for `run`: `full` (all items, the
/// user's other known items excluded), `factorized` (all items) or `sampled` among fixed
/// negatives, read from
/// `negatives` (an NCF `.test.negative` file), else from `<part>.negative` in the run
/// directory, else drawn once from the run's seed and stored there.
pub fn ranking_task(
    dir: &Path,
    run: &LoadedRun,
    prep: &crate::prep::Prepared,
    part_name: &str,
    protocol: &str,
    ks: &[usize],
    negatives: Option<&Path>,
) -> Result<RankingTask> {
    let part = match part_name {
        "test" => &prep.test,
        "valid" => &prep.valid,
        "train" => &prep.train,
        other => bail!("unknown part {other:?}: expected test, valid or train"),
    };
    if part.is_empty() {
        bail!("the {part_name} part of the run's split is empty");
    }
    // Everything known about the users except the part itself.
    let others: Vec<&Interactions> = [
        ("train", &prep.train),
        ("valid", &prep.valid),
        ("test", &prep.test),
    ]
    .into_iter()
    .filter(|(name, p)| *name != part_name && !p.is_empty())
    .map(|(_, p)| p)
    .collect();
    Ok(match protocol {
        "full" => RankingTask::full(part, &Interactions::concat(&others), ks)?,
        "factorized" => RankingTask::factorized(part, ks)?,
        "sampled" => {
            let (n_users, n_items) = (run.ids.users.len(), run.ids.items.len());
            let stored = dir.join(format!("{part_name}.negative"));
            let (cases, path) = match negatives {
                Some(p) => (TestNegatives::read(p, n_users, n_items)?, p.to_path_buf()),
                None if stored.is_file() => {
                    (TestNegatives::read(&stored, n_users, n_items)?, stored)
                }
                None => {
                    let k = match &run.config.task {
                        Task::Implicit(t) => t.eval_negatives,
                        Task::Rating => ImplicitTask::default().eval_negatives,
                    };
                    let mut all = others.clone();
                    all.push(part);
                    let seen = UserHistory::new(&Interactions::concat(&all));
                    let cases = TestNegatives::sample(part, &seen, k, run.config.train.seed)?;
                    cases.write(&stored)?;
                    (cases, stored)
                }
            };
            check_cases(&cases, part, part_name, &path)?;
            RankingTask::sampled(cases, ks).with_context(|| format!("{}", path.display()))?
        }
        other => bail!("unknown protocol {other:?}: expected sampled, full or factorized"),
    })
}

/// `Err` unless the held-out pairs of `cases` are exactly the pairs of `part`.
fn check_cases(
    cases: &TestNegatives,
    part: &Interactions,
    part_name: &str,
    path: &Path,
) -> Result<()> {
    let pairs: std::collections::HashSet<(u32, u32)> = part
        .users
        .iter()
        .copied()
        .zip(part.items.iter().copied())
        .collect();
    for (line, c) in cases.cases.iter().enumerate() {
        if !pairs.contains(&(c.user, c.item)) {
            bail!(
                "{}:{}: the pair ({},{}) is not in the {part_name} part of the run's split \
                 (negatives for other data?)",
                path.display(),
                line + 1,
                c.user,
                c.item
            );
        }
    }
    if cases.cases.len() != pairs.len() {
        bail!(
            "{}: {} held-out pairs, but the {part_name} part has {}",
            path.display(),
            cases.cases.len(),
            pairs.len()
        );
    }
    Ok(())
}

fn metrics_json(m: &RatingMetrics) -> Value {
    json!({"rmse": m.rmse, "mae": m.mae, "mse": m.mse, "mape": m.mape, "r2": m.r2, "n": m.n})
}

fn print_metrics(label: &str, m: &RatingMetrics) {
    println!(
        "{label}: rmse {:.4}  mae {:.4}  mse {:.4}  mape {:.2}%  r2 {:.4}  ({} ratings)",
        m.rmse, m.mae, m.mse, m.mape, m.r2, m.n
    );
}

pub fn backend_override(b: &BackendArgs) -> Result<Option<(BackendKind, usize)>> {
    Ok(match &b.backend {
        Some(s) => Some((
            s.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            b.device_index.unwrap_or(0),
        )),
        None => None,
    })
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Which part: test (default), valid or train.
    #[arg(long, default_value = "test")]
    part: String,
    /// Rank instead of rating metrics: sampled (each held-out pair among fixed negatives, NCF),
    /// full (all items, the user's other known items excluded) or factorized (each held-out
    /// pair among all items: TFRS' top-K accuracy). Implicit runs default to their own
    /// protocol.
    #[arg(long)]
    protocol: Option<String>,
    /// Cutoffs of the ranking metrics.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
    k: Vec<usize>,
    /// Negatives for the sampled protocol, in the NCF `.test.negative` format (default: the
    /// run's `<part>.negative`, drawn once from its seed).
    #[arg(long)]
    negatives: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let run = args.run.load()?;
    let prep = args.run.open_data(&run)?;
    let protocol = args.protocol.clone().or_else(|| match &run.config.task {
        Task::Implicit(t) => Some(t.protocol.clone()),
        Task::Rating => None,
    });
    if protocol.is_none() && args.negatives.is_some() {
        bail!("--negatives applies to --protocol sampled");
    }
    let m = match &protocol {
        Some(p) => {
            let task = ranking_task(
                &args.run.run,
                &run,
                &prep,
                &args.part,
                p,
                &args.k,
                args.negatives.as_deref(),
            )?;
            Metrics::Ranking(task.protocol(), run.rank(&task))
        }
        None => {
            let part = match args.part.as_str() {
                "test" => &prep.test,
                "valid" => &prep.valid,
                "train" => &prep.train,
                other => bail!("unknown part {other:?}: expected test, valid or train"),
            };
            Metrics::Rating(run.evaluate(part))
        }
    };
    if args.json {
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(), "model": run.config.model.name(),
                   "backend": run.config.backend.to_string(), "part": args.part,
                   "protocol": protocol, "metrics": m.json()})
        );
    } else {
        m.print(&args.part);
    }
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    run: PathBuf,
    /// Raw user id, as in the data file.
    #[arg(long)]
    user: String,
    /// Raw item id, as in the data file.
    #[arg(long)]
    item: String,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long)]
    json: bool,
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let run = load_run(
        &args.run,
        Checkpoint::Best,
        backend_override(&args.backend)?,
    )?;
    let u = run.ids.user(&args.user)?;
    let i = run.ids.item(&args.item)?;
    let raw = run.predict(&[u], &[i])[0];
    let (lo, hi) = run.rating_scale();
    let rating = raw.clamp(lo, hi);
    if args.json {
        println!(
            "{}",
            json!({"user": args.user, "item": args.item, "prediction": rating, "unclamped": raw})
        );
    } else {
        println!(
            "user {} item {}: predicted rating {rating:.3}",
            args.user, args.item
        );
    }
    Ok(())
}
