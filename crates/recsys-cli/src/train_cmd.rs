//! `recsys train`, `recsys eval`, `recsys predict`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use recsys_models::{AutoRecConfig, MfConfig, MfOutput, RecommenderNetConfig};
use recsys_train::{
    BackendKind, Checkpoint, ModelConfig, RatingMetrics, RegressorRun, RunConfig, TrainConfig,
    load_run, regressor_config_for_mf_run, resume_run, train_run,
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
    /// embeddings, see --embeddings) or autorec.
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
    /// Hidden layer widths, e.g. 1500,500,1500 (recnet, regressor, autorec).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Dropout rate (recnet, regressor, autorec).
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
    /// mse, or bce (on min-max normalised ratings, through a sigmoid: Keras version 4).
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
        "regressor" => {
            let Some(mf_run) = embeddings else {
                bail!("--model regressor needs --embeddings <an mf run directory>");
            };
            ModelConfig::Regressor(RegressorRun {
                mf_run: mf_run.clone(),
                regressor: regressor_config_for_mf_run(mf_run)?,
            })
        }
        other => bail!("unknown model {other:?}: expected mf, recnet, regressor or autorec"),
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
            other => bail!("unknown activation {other:?}: expected sigmoid, relu or identity"),
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
    if family != "mf" && (args.bias || args.rating_range || args.loss.is_some()) {
        bail!("--bias, --rating-range and --loss apply to model mf");
    }
    if args.bias {
        set(&mut table, &["model", "bias"], toml::Value::Boolean(true));
    }
    let output = match (args.loss.as_deref(), args.rating_range) {
        (Some("bce"), _) => Some(MfOutput::Logit),
        (Some("mse") | None, true) => Some(MfOutput::ScaledSigmoid),
        (Some("mse") | None, false) => None,
        (Some(other), _) => bail!("unknown loss {other:?}: expected mse or bce"),
    };
    if let Some(o) = output {
        set(&mut table, &["model", "output"], toml::Value::try_from(o)?);
    }

    // Data, then what only the data knows.
    let seed = table["train"]["seed"].as_integer().unwrap_or(42) as u64;
    let prep = prepare(&args.source, &args.split, seed)?;
    let ds = &prep.dataset;
    let model_table: &[&str] = if family == "regressor" {
        &["model", "regressor"]
    } else {
        &["model"]
    };
    let at = |k: &'static str| [model_table, &[k]].concat();
    set(&mut table, &at("n_users"), i(ds.interactions.n_users));
    set(&mut table, &at("n_items"), i(ds.interactions.n_items));
    if family != "autorec" {
        set(&mut table, &at("rating_max"), v(ds.scale.1 as f64));
    }
    if family == "mf" || family == "recommender_net" {
        set(&mut table, &at("rating_min"), v(ds.scale.0 as f64));
    }
    set(
        &mut table,
        &["rating_scale"],
        toml::Value::Array(vec![v(ds.scale.0 as f64), v(ds.scale.1 as f64)]),
    );
    let mean = prep.train.mean_rating();
    if table["model"].get("bias").and_then(|b| b.as_bool()) == Some(true) {
        set(&mut table, &["model", "global_mean"], v(mean));
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
fn resume(args: &TrainArgs, dir: &std::path::Path) -> Result<()> {
    let started = Instant::now();
    let run = recsys_train::RunDir::open(dir)?;
    let config: RunConfig = run.read_config()?;
    let (source, split, seed) = from_recipe(&config.data)?;
    let prep = prepare(&source, &split, seed)?;
    let family = args.model.as_deref().map(|f| match f {
        "recnet" => "recommender_net",
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

/// Scores the best weights on the test part and prints the outcome.
fn report(
    args: &TrainArgs,
    dir: &std::path::Path,
    prep: &crate::prep::Prepared,
    summary: recsys_train::TrainSummary,
    started: Instant,
) -> Result<()> {
    let run = load_run(dir, Checkpoint::Best, None)?;
    let config = &run.config;
    let test = if prep.test.is_empty() {
        &prep.valid
    } else {
        &prep.test
    };
    let metrics = run.evaluate(test);
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({
                "run_dir": dir.display().to_string(),
                "model": config.model.family(),
                "backend": config.backend.to_string(),
                "adapter": summary.adapter,
                "metrics": metrics_json(&metrics),
                "valid_metrics": summary.best_valid.as_ref().map(metrics_json),
                "best_epoch": summary.best_epoch,
                "epochs": summary.history.len(),
                "seconds": seconds,
            })
        );
    } else {
        println!(
            "{} on {} ({}): best epoch {} of {}",
            config.model.family(),
            config.backend,
            summary.adapter,
            summary.best_epoch,
            summary.history.len()
        );
        print_metrics("test", &metrics);
        println!("run directory: {}", dir.display());
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
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let run = args.run.load()?;
    let prep = args.run.open_data(&run)?;
    let part = match args.part.as_str() {
        "test" => &prep.test,
        "valid" => &prep.valid,
        "train" => &prep.train,
        other => bail!("unknown part {other:?}: expected test, valid or train"),
    };
    let m = run.evaluate(part);
    if args.json {
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(), "model": run.config.model.family(),
                   "backend": run.config.backend.to_string(), "part": args.part, "metrics": metrics_json(&m)})
        );
    } else {
        print_metrics(&args.part, &m);
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
