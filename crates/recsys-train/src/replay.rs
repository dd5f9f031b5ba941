//! A run's data again: its [`DataRecipe`] replayed (the same source, split and seed), for
//! what needs the training part of a trained run at inference time (seen items, popularity,
//! titles) outside the command line.

use std::path::Path;

use recsys_data::{Dataset, Interactions};

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
    let mut dataset = recsys_data::open(source, &recipe.load_options()?)?;
    if let Some(t) = recipe.positives_above {
        dataset = dataset.implicit(t);
    }
    if recipe.items_by_title {
        dataset = dataset.items_by_title()?;
    }
    let (train, valid, test) = parts(&dataset, recipe, source)?;
    Ok(RunData {
        dataset,
        train,
        valid,
        test,
    })
}

/// The training, validation and test parts of `dataset` (read from `source`) under `recipe`'s
/// split and seed: the ML-100K fold files, `recsys cv`'s seeded folds, or a split of the whole.
pub fn parts(
    dataset: &Dataset,
    recipe: &DataRecipe,
    source: &str,
) -> Result<(Interactions, Interactions, Interactions)> {
    Ok(if let Some([i, k]) = recipe.fold {
        let (rest, test) = recsys_data::k_fold(&dataset.interactions, k, i, recipe.split_seed)?;
        let m = recipe.split.method(&recipe.valid, "0")?;
        let s = recsys_data::split(&rest, &m, recipe.split_seed)?;
        (s.train, s.valid, test)
    } else if let Some(k) = recipe.split.fold() {
        let (base, test) = recsys_data::ml100k_fold(Path::new(source), k, &dataset.ids)?;
        let m = recipe.split.method(&recipe.valid, "0")?;
        let s = recsys_data::split(&base, &m, recipe.split_seed)?;
        (s.train, s.valid, test)
    } else {
        let m = recipe.split.method(&recipe.valid, &recipe.test)?;
        let s = recsys_data::split(&dataset.interactions, &m, recipe.split_seed)?;
        (s.train, s.valid, s.test)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `recsys cv` fold's recipe replays that fold: its test part is the seeded fold, and the
    /// training and validation parts are the rest.
    #[test]
    fn a_seeded_folds_recipe_replays_its_fold() {
        let recipe = DataRecipe {
            source: "synthetic:100k".into(),
            valid: "0.1".into(),
            split_seed: 5,
            fold: Some([2, 3]),
            ..Default::default()
        };
        let got = replay(&recipe, None).unwrap();
        let (rest, test) = recsys_data::k_fold(&got.dataset.interactions, 3, 2, 5).unwrap();
        assert_eq!(got.test, test);
        assert_eq!(got.train.len() + got.valid.len(), rest.len());
    }
}
