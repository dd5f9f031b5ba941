//! Data preparation shared by `train` and `eval`: open the source, split it, and remember the
//! recipe in the run's config so `eval` can rebuild the same parts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use recsys_data::{Dataset, Interactions};
use recsys_train::{Checkpoint, LoadedRun, check_same_ids, load_run};

use crate::data_cmd::{SourceArgs, split_method};
use crate::train_cmd::{BackendArgs, backend_override};

/// How to split the data for training.
#[derive(Args, Clone)]
pub struct SplitArgs {
    /// random, stratified, user (whole users), per-user (each user's ratings in the ratios),
    /// leave-last-out, leave-one-out, or u1..u5 (ML-100K folds; the validation part is then
    /// carved from the fold's base file).
    #[arg(long, default_value = "random")]
    pub split: String,
    /// Validation size: a ratio (0.1) or a count.
    #[arg(long, default_value = "0.1")]
    pub valid: String,
    /// Test size: a ratio (0.1) or a count (ignored for folds and leave-out splits).
    #[arg(long, default_value = "0.1")]
    pub test: String,
}

/// The parts a run trains and is scored on.
pub struct Prepared {
    pub dataset: Dataset,
    pub train: Interactions,
    pub valid: Interactions,
    pub test: Interactions,
    /// The recipe, stored in the run's config.
    pub recipe: BTreeMap<String, String>,
}

pub fn prepare(source: &SourceArgs, split: &SplitArgs, seed: u64) -> Result<Prepared> {
    let dataset = source.open()?;
    let (train, valid, test) = if let Some(k) = split
        .split
        .strip_prefix('u')
        .and_then(|k| k.parse::<usize>().ok())
    {
        let (base, test) = recsys_data::ml100k_fold(Path::new(&source.data), k, &dataset.ids)?;
        let m = split_method("random", &split.valid, "0")?;
        let s = recsys_data::split(&base, &m, seed)?;
        (s.train, s.valid, test)
    } else {
        let m = split_method(&split.split, &split.valid, &split.test)?;
        let s = recsys_data::split(&dataset.interactions, &m, seed)?;
        (s.train, s.valid, s.test)
    };
    if train.is_empty() {
        bail!("the training part of the split is empty");
    }
    let mut recipe = BTreeMap::new();
    recipe.insert("source".into(), source.data.clone());
    recipe.insert("split".into(), split.split.clone());
    recipe.insert("valid".into(), split.valid.clone());
    recipe.insert("test".into(), split.test.clone());
    recipe.insert("split_seed".into(), seed.to_string());
    if let Some(f) = &source.format {
        recipe.insert("format".into(), f.clone());
    }
    if let Some(t) = source.positives_above {
        recipe.insert("positives_above".into(), t.to_string());
    }
    if source.items_by_title {
        recipe.insert("items_by_title".into(), "true".into());
    }
    Ok(Prepared {
        dataset,
        train,
        valid,
        test,
        recipe,
    })
}

/// Rebuilds the source and split arguments from a run's recipe.
pub fn from_recipe(recipe: &BTreeMap<String, String>) -> Result<(SourceArgs, SplitArgs, u64)> {
    let get = |k: &str| recipe.get(k).cloned();
    let Some(data) = get("source") else {
        bail!("the run's config.toml records no data source; pass --data");
    };
    let source = SourceArgs {
        data,
        format: get("format"),
        delimiter: None,
        header: false,
        columns: None,
        scale: None,
        duplicates: "error".into(),
        positives_above: match get("positives_above") {
            Some(t) => Some(t.parse().map_err(|_| {
                anyhow::anyhow!("the run's config.toml has positives_above = {t:?}, not a number")
            })?),
            None => None,
        },
        items_by_title: get("items_by_title").is_some_and(|v| v == "true"),
    };
    let split = SplitArgs {
        split: get("split").unwrap_or_else(|| "random".into()),
        valid: get("valid").unwrap_or_else(|| "0.1".into()),
        test: get("test").unwrap_or_else(|| "0.1".into()),
    };
    let seed = get("split_seed").and_then(|s| s.parse().ok()).unwrap_or(42);
    Ok((source, split, seed))
}

/// A trained run to load, and the data it was trained on (its recipe, or `--data`).
#[derive(Args)]
pub struct RunArgs {
    /// A run directory written by `recsys train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Use other data (default: the run's own source and split).
    #[arg(long)]
    pub data: Option<String>,
    /// Weights: best (default) or last.
    #[arg(long, default_value = "best")]
    pub checkpoint: String,
    #[command(flatten)]
    pub backend: BackendArgs,
}

impl RunArgs {
    /// Loads the run's weights, on its own backend or `--backend`.
    pub fn load(&self) -> Result<LoadedRun> {
        let which = match self.checkpoint.as_str() {
            "best" => Checkpoint::Best,
            "last" => Checkpoint::Last,
            other => bail!("unknown checkpoint {other:?}: expected best or last"),
        };
        Ok(load_run(
            &self.run,
            which,
            backend_override(&self.backend)?,
        )?)
    }

    /// Rebuilds the run's data and split, checked against the run's id map.
    pub fn open_data(&self, run: &LoadedRun) -> Result<Prepared> {
        let (mut source, split, seed) = from_recipe(&run.config.data)?;
        if let Some(d) = &self.data {
            source.data = d.clone();
        }
        let prep = prepare(&source, &split, seed)?;
        check_same_ids(&self.run, &run.ids, &prep.dataset.ids)?;
        Ok(prep)
    }
}
