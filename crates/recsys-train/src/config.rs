//! The resolved configuration of a run (`config.toml`): model, training, backend, task and the
//! data recipe.

use recsys_data::{
    DelimitedSpec, Duplicates, Format, LoadOptions, NormalizeKind, Normalizer, SplitKind,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::device::BackendKind;
use crate::family::ModelConfig;
use crate::task::Task;
use crate::trainer::TrainConfig;

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
    /// Where the data came from and how it was split, so `eval` and `--resume` rebuild it.
    #[serde(default)]
    pub data: DataRecipe,
    /// The rating normalisation asked for (`--normalize`); the model learns normalised ratings.
    #[serde(default)]
    pub normalize: NormalizeKind,
    /// That normalisation as fitted on the training part (by [`size`](crate::setup::size)):
    /// applied to the training ratings, inverted on every prediction.
    #[serde(default)]
    pub normalizer: Normalizer,
}

/// Where a run's data came from and how it was split (the `[data]` table): what `recsys eval`
/// and `--resume` replay. Older runs wrote every value as a string; both forms are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecipe {
    /// A MovieLens folder, a ratings file or `synthetic:<preset>[:seed]`; empty when unknown.
    #[serde(default)]
    pub source: String,
    /// The `--format` given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default = "default_split")]
    pub split: SplitKind,
    /// Validation size: a ratio or a count, as given.
    #[serde(default = "default_size")]
    pub valid: String,
    /// Test size: a ratio or a count, as given.
    #[serde(default = "default_size")]
    pub test: String,
    #[serde(default = "default_seed", deserialize_with = "lenient::u64")]
    pub split_seed: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_f32"
    )]
    pub positives_above: Option<f32>,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "lenient::bool"
    )]
    pub items_by_title: bool,
    /// `[i, k]`: fold `i` (1-based) of `k` seeded folds is the test part, the rest is split by
    /// `split` into training and validation (`recsys cv` on data without fold files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<[usize; 2]>,
    /// The rating scale `[min, max]` when it was inferred from the ratings (a generic file
    /// without `--scale`) rather than declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred_scale: Option<[f32; 2]>,
    /// How a generic delimited file was read (`--format csv|tsv`, `--delimiter`, `--header`,
    /// `--columns`, `--scale`); replaces `format` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimited: Option<DelimitedSpec>,
    /// `--duplicates`: what was done with (user, item) pairs rated more than once.
    #[serde(default, skip_serializing_if = "is_default")]
    pub duplicates: Duplicates,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl DataRecipe {
    /// How to read the recorded source again: its delimited layout, or its named format (or
    /// detection), and the duplicate policy.
    pub fn load_options(&self) -> Result<LoadOptions, recsys_data::DataError> {
        let format = match (&self.delimited, &self.format) {
            (Some(spec), _) => Some(Format::Delimited(spec.clone())),
            (None, Some(name)) => Some(name.parse::<Format>()?),
            (None, None) => None,
        };
        Ok(LoadOptions {
            format,
            duplicates: self.duplicates,
        })
    }
}

fn default_split() -> SplitKind {
    SplitKind::Random
}

fn default_size() -> String {
    "0.1".into()
}

fn default_seed() -> u64 {
    42
}

impl Default for DataRecipe {
    fn default() -> Self {
        Self {
            source: String::new(),
            format: None,
            split: default_split(),
            valid: default_size(),
            test: default_size(),
            split_seed: default_seed(),
            positives_above: None,
            items_by_title: false,
            fold: None,
            inferred_scale: None,
            delimited: None,
            duplicates: Duplicates::Error,
        }
    }
}

/// Values that older run directories wrote as strings.
mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Bool(bool),
        Int(i64),
        Float(f64),
        Text(String),
    }

    fn parse<T: std::str::FromStr, E: serde::de::Error>(v: Value, what: &str) -> Result<T, E> {
        let text = match v {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Text(t) => t,
        };
        text.parse()
            .map_err(|_| E::custom(format!("{text:?} is not {what}")))
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        parse(Value::deserialize(d)?, "a seed")
    }

    pub fn opt_f32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        parse(Value::deserialize(d)?, "a number").map(Some)
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        parse(Value::deserialize(d)?, "true or false")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{ImplicitLossKind, ImplicitTask, Protocol};

    #[test]
    fn older_string_recipes_still_read() {
        let old: DataRecipe = toml::from_str(
            "source = \"synthetic:100k\"\nsplit = \"u1\"\nvalid = \"0.05\"\ntest = \"0.1\"\n\
             split_seed = \"7\"\npositives_above = \"3\"\nitems_by_title = \"true\"\n",
        )
        .unwrap();
        assert_eq!(old.split, SplitKind::U1);
        assert_eq!(old.split_seed, 7);
        assert_eq!(old.positives_above, Some(3.0));
        assert!(old.items_by_title);
        let text = toml::to_string(&old).unwrap();
        assert!(text.contains("split_seed = 7"), "{text}");
        let back: DataRecipe = toml::from_str(&text).unwrap();
        assert_eq!(back, old);
        let bad = toml::from_str::<DataRecipe>("split_seed = \"x\"").unwrap_err();
        assert!(bad.to_string().contains("not a seed"), "{bad}");
    }

    #[test]
    fn older_model_tables_still_read() {
        use recsys_models::{MfConfig, NcfConfig, TwoTowerConfig};
        // Today's tables written with the older key names and family tags.
        let older = |config: ModelConfig, edit: &dyn Fn(&mut toml::Table)| {
            let mut table = toml::Table::try_from(&config).unwrap();
            edit(&mut table);
            let back: ModelConfig = toml::Value::Table(table).try_into().unwrap();
            toml::Table::try_from(&back).unwrap() == toml::Table::try_from(&config).unwrap()
        };
        let rename = |t: &mut toml::Table, old: &str, new: &str| {
            let v = t.remove(new).unwrap();
            t.insert(old.into(), v);
        };
        assert!(older(
            MfConfig::new(3, 4).with_embedding_dim(7).into(),
            &|t| rename(t, "dim", "embedding_dim")
        ));
        assert!(older(
            TwoTowerConfig::new(3, 4).with_embedding_dim(7).into(),
            &|t| {
                rename(t, "dim", "embedding_dim");
                t.insert("family".into(), "two_tower".into());
            }
        ));
        let ncf = crate::family::NcfSetup {
            ncf: NcfConfig::new(3, 4).with_embedding_dim(6),
            pretrained: None,
        };
        assert!(older(ncf.into(), &|t| {
            let inner = t.get_mut("ncf").unwrap().as_table_mut().unwrap();
            rename(inner, "gmf_dim", "embedding_dim");
        }));
        let text = toml::to_string(&ModelConfig::from(TwoTowerConfig::new(3, 4))).unwrap();
        assert!(text.contains("family = \"two-tower\""), "{text}");
    }

    #[test]
    fn task_names_are_those_of_config_files() {
        let t: ImplicitTask = toml::from_str("loss = \"bpr\"\nprotocol = \"full\"").unwrap();
        assert_eq!(
            (t.loss, t.protocol),
            (ImplicitLossKind::Bpr, Protocol::Full)
        );
        let err = toml::from_str::<ImplicitTask>("loss = \"hinge\"").unwrap_err();
        assert!(err.to_string().contains("hinge"), "{err}");
    }
}
