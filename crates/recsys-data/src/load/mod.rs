//! Loaders for every MovieLens release and for generic delimited files, with format detection.

mod ids;
mod items;
mod locate;

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::interactions::{Dataset, IdMap, Interactions};
use crate::parse::parse_file;
use ids::{apply_duplicates, build_vocab, map_through};
use items::read_items;
use locate::layout_of;
pub use locate::{Located, detect};

/// A ratings file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Format {
    /// ML-100K: `u.data` (tab: user, item, rating, timestamp), titles and genres in `u.item`.
    Ml100k,
    /// ML-1M: `ratings.dat` (`::`), `movies.dat`; whole stars 1..5.
    Ml1m,
    /// ML-10M: `ratings.dat` (`::`), `movies.dat`; half stars 0.5..5.
    Ml10m,
    /// ML-20M, ML-25M, ml-latest and ml-latest-small: `ratings.csv` with a header, `movies.csv`.
    MlCsv,
    /// Any delimited file with a column mapping.
    Delimited(DelimitedSpec),
}

/// A column mapping for a generic delimited ratings file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelimitedSpec {
    /// Field separator, such as `,`, `\t` or `::`.
    pub delimiter: String,
    /// The first line is a header.
    pub header: bool,
    /// Zero-based columns of user, item and rating, and of the timestamp where there is one.
    pub user_col: usize,
    pub item_col: usize,
    pub rating_col: usize,
    pub timestamp_col: Option<usize>,
    /// Number of fields on every line (checked); `None` takes it from the first line.
    pub n_cols: Option<usize>,
    /// Ids are strings (anything); otherwise integers, detected from the first line when `None`.
    pub string_ids: Option<bool>,
    /// Declared rating scale; ratings outside it are an error. `None` accepts any finite rating.
    pub scale: Option<(f32, f32)>,
}

impl Default for DelimitedSpec {
    fn default() -> Self {
        Self {
            delimiter: ",".into(),
            header: false,
            user_col: 0,
            item_col: 1,
            rating_col: 2,
            timestamp_col: None,
            n_cols: None,
            string_ids: None,
            scale: None,
        }
    }
}

impl FromStr for Format {
    type Err = DataError;

    /// `ml-100k`, `ml-1m`, `ml-10m`, `ml-20m`, `ml-25m`, `ml-latest`, `ml-latest-small`, `csv`,
    /// `tsv`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ml-100k" | "ml100k" => Format::Ml100k,
            "ml-1m" | "ml1m" => Format::Ml1m,
            "ml-10m" | "ml10m" => Format::Ml10m,
            "ml-20m" | "ml-25m" | "ml-latest" | "ml-latest-small" | "ml-csv" => Format::MlCsv,
            "csv" => Format::Delimited(DelimitedSpec::default()),
            "tsv" => Format::Delimited(DelimitedSpec {
                delimiter: "\t".into(),
                ..Default::default()
            }),
            other => {
                return Err(DataError::Invalid(format!(
                    "unknown format {other:?}: expected ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-latest, \
                     ml-latest-small, csv or tsv"
                )));
            }
        })
    }
}

/// What to do with a (user, item) pair rated more than once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Duplicates {
    /// An error naming both lines (the default: no MovieLens release has duplicates, so one
    /// means the file is not what it claims to be).
    #[default]
    Error,
    /// Keep the first rating of the pair in file order.
    #[cfg_attr(feature = "clap", value(name = "first", alias = "keep-first"))]
    KeepFirst,
    /// Keep the last rating of the pair in file order (a re-rating replaces the old one).
    #[cfg_attr(feature = "clap", value(name = "last", alias = "keep-last"))]
    KeepLast,
    /// Keep every row; no check.
    #[cfg_attr(feature = "clap", value(name = "all", alias = "keep-all"))]
    KeepAll,
}

impl FromStr for Duplicates {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "error" => Duplicates::Error,
            "first" | "keep-first" => Duplicates::KeepFirst,
            "last" | "keep-last" => Duplicates::KeepLast,
            "all" | "keep-all" => Duplicates::KeepAll,
            other => {
                return Err(DataError::Invalid(format!(
                    "unknown duplicate policy {other:?}: expected error, first, last or all"
                )));
            }
        })
    }
}

/// Options of [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The format; detected from the path when `None`.
    pub format: Option<Format>,
    pub duplicates: Duplicates,
}

/// Loads a data set from a MovieLens folder, a ratings file, or a delimited file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Dataset> {
    let located = detect(path, options.format.as_ref())?;
    let (layout, scale) = layout_of(&located.format, &located.ratings)?;
    let raw = parse_file(&located.ratings, &layout, scale)?;
    let raw = apply_duplicates(raw, options.duplicates)?;
    let (interactions, ids) = build_vocab(raw);
    let mut notes = Vec::new();
    let items = match &located.items {
        Some(p) => read_items(p, &located.format, &ids.items)?,
        None => Vec::new(),
    };
    if let Some(name) = items_file_name(&located.format)
        && items.iter().all(Option::is_none)
    {
        let why = if located.items.is_some() {
            "holds no title of a rated item"
        } else {
            "is missing"
        };
        notes.push(format!(
            "{name} next to {} {why}: item titles and genres are unavailable",
            located.ratings.display()
        ));
    }
    let scale_inferred = scale.is_none();
    let scale = scale.unwrap_or_else(|| interactions.rating_range());
    if scale_inferred {
        notes.push(format!(
            "{}: no rating scale declared; inferred {}..{} from the ratings (pass --scale min,max \
             to declare it and reject ratings outside)",
            located.ratings.display(),
            scale.0,
            scale.1
        ));
    }
    Ok(Dataset {
        interactions,
        ids,
        items,
        scale,
        source: path.display().to_string(),
        scale_inferred,
        notes,
    })
}

/// The item file a MovieLens format keeps its titles in.
fn items_file_name(format: &Format) -> Option<&'static str> {
    match format {
        Format::Ml100k => Some("u.item"),
        Format::Ml1m | Format::Ml10m => Some("movies.dat"),
        Format::MlCsv => Some("movies.csv"),
        Format::Delimited(_) => None,
    }
}

/// Loads a ratings file in the layout of `format`, mapping its ids through an existing `ids`
/// (for predefined folds and held-out files): an id the map lacks is an error naming the file,
/// line and id.
pub fn load_with_ids(path: &Path, format: &Format, ids: &IdMap) -> Result<Interactions> {
    let (layout, scale) = layout_of(format, path)?;
    let raw = parse_file(path, &layout, scale)?;
    map_through(&raw, ids)
}

/// The predefined ML-100K folds: `u{k}.base` and `u{k}.test` of the folder of `data`, mapped
/// through the full data set's ids. Returns (train, test).
pub fn ml100k_fold(dir: &Path, fold: usize, ids: &IdMap) -> Result<(Interactions, Interactions)> {
    if !(1..=5).contains(&fold) {
        return Err(DataError::Invalid(format!(
            "ML-100K has folds u1..u5, not u{fold}"
        )));
    }
    let dir = if dir.is_file() {
        dir.parent().unwrap_or(Path::new("."))
    } else {
        dir
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    for file in [format!("u{fold}.base"), format!("u{fold}.test")] {
        if !dir.join(&file).is_file() {
            return Err(DataError::format(
                dir,
                format!(
                    "the ML-100K fold u{fold} (--split u{fold}) needs {file} beside u.data, and \
                     this folder has none: use an ML-100K folder (`recsys data fetch ml-100k`) or \
                     another --split"
                ),
            ));
        }
    }
    let base = load_with_ids(&dir.join(format!("u{fold}.base")), &Format::Ml100k, ids)?;
    let test = load_with_ids(&dir.join(format!("u{fold}.test")), &Format::Ml100k, ids)?;
    Ok((base, test))
}
