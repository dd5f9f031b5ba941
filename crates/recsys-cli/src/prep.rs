//! Data preparation shared by `train` and `eval`: open the source, split it, and remember the
//! recipe in the run's config so `eval` can rebuild the same parts.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use recsys_data::{Dataset, Format, Interactions, Remapped, SplitKind};
use recsys_train::{Checkpoint, DataRecipe, LoadedRun, Parts, check_same_ids, load_run};

use crate::args::BackendArgs;
use crate::data_cmd::SourceArgs;

/// How to split the data for training.
#[derive(Args, Clone)]
pub struct SplitArgs {
    /// How to split: user is whole users per part, per-user each user's ratings in the
    /// ratios, u1..u5 the ML-100K folds (the validation part is then carved from the fold's base
    /// file).
    #[arg(long, value_enum, default_value_t = SplitKind::Random)]
    pub split: SplitKind,
    /// Validation size: a ratio (0.1) or a count.
    #[arg(long, default_value = "0.1")]
    pub valid: String,
    /// Test size: a ratio (0.1) or a count (ignored for folds and leave-out splits).
    #[arg(long, default_value = "0.1")]
    pub test: String,
    /// `[i, k]`: fold `i` of `k` seeded folds is the test part (`recsys cv`); `--split` then
    /// carves the validation part from the other folds.
    #[arg(skip)]
    pub fold: Option<[usize; 2]>,
}

/// The parts a run trains and is scored on.
pub struct Prepared {
    pub dataset: Dataset,
    pub train: Interactions,
    pub valid: Interactions,
    pub test: Interactions,
    /// The recipe, stored in the run's config.
    pub recipe: DataRecipe,
}

impl Prepared {
    /// Sizes `config` for training on this data (ids, rating scale, training mean; the recipe
    /// recorded in the run), then checks that the model fits in memory before anything is
    /// allocated.
    pub fn size(&self, config: &mut recsys_train::RunConfig) -> Result<()> {
        let ds = &self.dataset;
        recsys_train::setup::size(
            config,
            ds.interactions.n_users,
            ds.interactions.n_items,
            ds.scale,
            (self.train.len(), self.train.mean_rating()),
            self.recipe.clone(),
        )?;
        recsys_train::memory::check_memory(config, true)?;
        Ok(())
    }

    pub fn parts(&self) -> Parts<'_> {
        Parts {
            train: &self.train,
            valid: &self.valid,
            test: &self.test,
        }
    }
}

pub fn prepare(source: &SourceArgs, split: &SplitArgs, seed: u64) -> Result<Prepared> {
    prepare_opened(source.open()?, source, split, seed)
}

/// [`prepare`] of a data set already opened from `source`.
fn prepare_opened(
    dataset: Dataset,
    source: &SourceArgs,
    split: &SplitArgs,
    seed: u64,
) -> Result<Prepared> {
    let options = source.options()?;
    let recipe = DataRecipe {
        source: source.data.clone(),
        format: source.format.clone(),
        split: split.split,
        valid: split.valid.clone(),
        test: split.test.clone(),
        split_seed: seed,
        positives_above: source.positives_above,
        items_by_title: source.items_by_title,
        fold: split.fold,
        inferred_scale: dataset
            .scale_inferred
            .then_some([dataset.scale.0, dataset.scale.1]),
        delimited: match options.format {
            Some(Format::Delimited(spec)) => Some(spec),
            _ => None,
        },
        duplicates: options.duplicates,
    };
    let (train, valid, test) = recsys_train::replay::parts(&dataset, &recipe, &source.data)?;
    if train.is_empty() {
        bail!("the training part of the split is empty");
    }
    Ok(Prepared {
        dataset,
        train,
        valid,
        test,
        recipe,
    })
}

/// The data and split of a run's recipe, from `data` instead of the recorded source if given.
pub fn replay(recipe: &DataRecipe, data: Option<&str>) -> Result<Prepared> {
    let source = recipe_source(recipe, data)?;
    prepare(&source, &recipe_split(recipe), recipe.split_seed)
}

fn recipe_split(recipe: &DataRecipe) -> SplitArgs {
    SplitArgs {
        split: recipe.split,
        valid: recipe.valid.clone(),
        test: recipe.test.clone(),
        fold: recipe.fold,
    }
}

/// How a run's recipe reads its data, from `data` instead of the recorded source if given.
fn recipe_source(recipe: &DataRecipe, data: Option<&str>) -> Result<SourceArgs> {
    let source = match data {
        Some(d) => d.to_string(),
        None if recipe.source.is_empty() => {
            bail!("the run's config.toml records no data source; pass --data")
        }
        None => recipe.source.clone(),
    };
    Ok(SourceArgs {
        data: source,
        format: recipe.format.clone(),
        delimiter: None,
        header: false,
        columns: None,
        scale: None,
        duplicates: recipe.duplicates,
        positives_above: recipe.positives_above,
        items_by_title: recipe.items_by_title,
        recorded: Some(recipe.load_options()?),
    })
}

/// What `eval` scores: the run's own data and split, or another file's ratings.
pub enum EvalData {
    Run(Box<Prepared>),
    /// Data whose ids are not the run's: its ratings mapped through the run's id map.
    Other {
        source: String,
        data: Remapped,
    },
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
    /// Weights: best or last.
    #[arg(long, value_enum, default_value_t = Checkpoint::Best)]
    pub checkpoint: Checkpoint,
    #[command(flatten)]
    pub backend: BackendArgs,
}

impl RunArgs {
    /// Loads the run's weights, on its own backend or `--backend`.
    pub fn load(&self) -> Result<LoadedRun> {
        Ok(load_run(&self.run, self.checkpoint, self.backend.chosen())?)
    }

    /// Rebuilds the run's data and split, checked against the run's id map.
    pub fn open_data(&self, run: &LoadedRun) -> Result<Prepared> {
        let prep = replay(&run.config.data, self.data.as_deref())?;
        check_same_ids(&self.run, &run.ids, &prep.dataset.ids)?;
        Ok(prep)
    }

    /// The run's data and split, or with `--data` naming data of other ids (another file of
    /// ratings, a part of the data, new users), that data's ratings in the run's ids.
    pub fn open_for_eval(&self, run: &LoadedRun) -> Result<EvalData> {
        let Some(data) = self.data.as_deref() else {
            return Ok(EvalData::Run(Box::new(self.open_data(run)?)));
        };
        let recipe = &run.config.data;
        let source = recipe_source(recipe, Some(data))?;
        let dataset = source.open()?;
        if check_same_ids(&self.run, &run.ids, &dataset.ids).is_ok() {
            let prep = prepare_opened(dataset, &source, &recipe_split(recipe), recipe.split_seed)?;
            return Ok(EvalData::Run(Box::new(prep)));
        }
        Ok(EvalData::Other {
            source: data.to_string(),
            data: dataset.remap(&run.ids),
        })
    }
}
