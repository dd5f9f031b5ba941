//! A run's data again: its [`DataRecipe`] replayed (the same source, split and seed), for
//! what needs the training part of a trained run at inference time (seen items, popularity,
//! titles) outside the command line.

use std::path::Path;

use recsys_data::load::LoadOptions;
use recsys_data::{Dataset, Duplicates, Format, Interactions};

use crate::config::DataRecipe;
use crate::error::{Result, TrainError};

/// A data set and the parts of its split.
pub struct RunData {
    pub dataset: Dataset,
    pub train: Interactions,
    pub valid: Interactions,
    pub test: Interactions,
}

/// The data and split of `recipe`, from `data` instead of the recorded source if given.
pub fn replay(recipe: &DataRecipe, data: Option<&str>) -> Result<RunData> {
    let source = match data {
        Some(d) => d,
        None if recipe.source.is_empty() => {
            return Err(TrainError::Config(
                "the run's config.toml records no data source".into(),
            ));
        }
        None => recipe.source.as_str(),
    };
    let format = recipe
        .format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()?;
    let options = LoadOptions {
        format,
        duplicates: Duplicates::Error,
    };
    let mut dataset = recsys_data::open(source, &options)?;
    if let Some(t) = recipe.positives_above {
        dataset = dataset.implicit(t);
    }
    if recipe.items_by_title {
        dataset = dataset.items_by_title()?;
    }
    let (train, valid, test) = if let Some(k) = recipe.split.fold() {
        let (base, test) = recsys_data::ml100k_fold(Path::new(source), k, &dataset.ids)?;
        let m = recipe.split.method(&recipe.valid, "0")?;
        let s = recsys_data::split(&base, &m, recipe.split_seed)?;
        (s.train, s.valid, test)
    } else {
        let m = recipe.split.method(&recipe.valid, &recipe.test)?;
        let s = recsys_data::split(&dataset.interactions, &m, recipe.split_seed)?;
        (s.train, s.valid, s.test)
    };
    Ok(RunData {
        dataset,
        train,
        valid,
        test,
    })
}
