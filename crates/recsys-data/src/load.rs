//! Loaders for every MovieLens release and for generic delimited files, with format detection.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::interactions::{Dataset, IdMap, Interactions, ItemInfo, Vocab};
use crate::parse::{Layout, RawColumns, Role, parse_file};

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
pub enum Duplicates {
    /// An error naming both lines (the default: no MovieLens release has duplicates, so one
    /// means the file is not what it claims to be).
    #[default]
    Error,
    /// Keep the first rating of the pair in file order.
    KeepFirst,
    /// Keep the last rating of the pair in file order (a re-rating replaces the old one).
    KeepLast,
    /// Keep every row; no check.
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

/// The files of a data set, as found by [`detect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub format: Format,
    pub ratings: PathBuf,
    /// The item metadata file (`u.item`, `movies.dat`, `movies.csv`) when present.
    pub items: Option<PathBuf>,
}

/// Finds the ratings file and the format of a folder or file.
pub fn detect(path: &Path, format: Option<&Format>) -> Result<Located> {
    if !path.exists() {
        return Err(DataError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    }
    let (dir, file) = if path.is_dir() {
        (path.to_path_buf(), None)
    } else {
        (
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Some(path.to_path_buf()),
        )
    };
    let sibling = |name: &str| {
        let p = dir.join(name);
        p.is_file().then_some(p)
    };
    let name = file
        .as_ref()
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let format = match format {
        Some(f) => f.clone(),
        None => {
            if file.is_none() {
                if sibling("u.data").is_some() {
                    Format::Ml100k
                } else if sibling("ratings.dat").is_some() {
                    if sibling("users.dat").is_some() {
                        Format::Ml1m
                    } else {
                        Format::Ml10m
                    }
                } else if sibling("ratings.csv").is_some() {
                    Format::MlCsv
                } else {
                    return Err(DataError::format(
                        path,
                        "no ratings file found (expected u.data, ratings.dat or ratings.csv); \
                         pass a file and --format for other data",
                    ));
                }
            } else if name == "u.data"
                || (name.starts_with('u') && (name.ends_with(".base") || name.ends_with(".test")))
            {
                Format::Ml100k
            } else if name.ends_with(".dat") {
                if sibling("users.dat").is_some() {
                    Format::Ml1m
                } else {
                    Format::Ml10m
                }
            } else if name == "ratings.csv" {
                Format::MlCsv
            } else if name.ends_with(".csv") {
                Format::Delimited(DelimitedSpec::default())
            } else if name.ends_with(".tsv") {
                Format::Delimited(DelimitedSpec {
                    delimiter: "\t".into(),
                    ..Default::default()
                })
            } else {
                return Err(DataError::format(
                    path,
                    "unknown format: pass --format (ml-100k, ml-1m, ml-10m, ml-20m, ml-latest, csv, tsv)",
                ));
            }
        }
    };
    let ratings_name = match &format {
        Format::Ml100k => "u.data",
        Format::Ml1m | Format::Ml10m => "ratings.dat",
        Format::MlCsv => "ratings.csv",
        Format::Delimited(_) => "",
    };
    let ratings = match (&file, &format) {
        (Some(f), _) => f.clone(),
        (None, Format::Delimited(_)) => {
            return Err(DataError::format(
                path,
                "a generic delimited format needs a file, not a folder",
            ));
        }
        (None, _) => sibling(ratings_name)
            .ok_or_else(|| DataError::format(path, format!("this folder has no {ratings_name}")))?,
    };
    let items = match &format {
        Format::Ml100k => sibling("u.item"),
        Format::Ml1m | Format::Ml10m => sibling("movies.dat"),
        Format::MlCsv => sibling("movies.csv"),
        Format::Delimited(_) => None,
    };
    Ok(Located {
        format,
        ratings,
        items,
    })
}

fn layout_of(format: &Format, ratings: &Path) -> Result<(Layout, Option<(f32, f32)>)> {
    use Role::*;
    let std4 = vec![User, Item, Rating, Timestamp];
    Ok(match format {
        Format::Ml100k => (
            Layout {
                delimiter: b"\t".to_vec(),
                columns: std4,
                header_lines: 0,
                string_ids: false,
            },
            Some((1.0, 5.0)),
        ),
        Format::Ml1m | Format::Ml10m => (
            Layout {
                delimiter: b"::".to_vec(),
                columns: std4,
                header_lines: 0,
                string_ids: false,
            },
            Some(if *format == Format::Ml1m {
                (1.0, 5.0)
            } else {
                (0.5, 5.0)
            }),
        ),
        Format::MlCsv => {
            let header = first_line(ratings)?;
            let names: Vec<&str> = header.split(',').map(|s| s.trim()).collect();
            let columns = names
                .iter()
                .map(|n| match *n {
                    "userId" => User,
                    "movieId" => Item,
                    "rating" => Rating,
                    "timestamp" => Timestamp,
                    _ => Skip,
                })
                .collect::<Vec<_>>();
            if !columns.contains(&User) || !columns.contains(&Item) || !columns.contains(&Rating) {
                return Err(DataError::parse(
                    ratings,
                    1,
                    format!("header {header:?} lacks userId, movieId and rating"),
                ));
            }
            (
                Layout {
                    delimiter: b",".to_vec(),
                    columns,
                    header_lines: 1,
                    string_ids: false,
                },
                Some((0.5, 5.0)),
            )
        }
        Format::Delimited(spec) => {
            if spec.delimiter.is_empty() {
                return Err(DataError::Invalid("the delimiter is empty".into()));
            }
            let probe = first_data_line(ratings, spec.header)?;
            let fields: Vec<&str> = probe.split(spec.delimiter.as_str()).collect();
            let n_cols = spec.n_cols.unwrap_or(fields.len());
            let mut columns = vec![Skip; n_cols];
            let mut set = |col: usize, role: Role| -> Result<()> {
                if col >= n_cols {
                    return Err(DataError::format(
                        ratings,
                        format!("the {role:?} column {col} is beyond the file's {n_cols} columns"),
                    ));
                }
                columns[col] = role;
                Ok(())
            };
            set(spec.user_col, User)?;
            set(spec.item_col, Item)?;
            set(spec.rating_col, Rating)?;
            if let Some(t) = spec.timestamp_col {
                set(t, Timestamp)?;
            }
            let is_int = |col: usize| {
                fields
                    .get(col)
                    .is_some_and(|f| f.trim_matches('"').parse::<u32>().is_ok())
            };
            let string_ids = spec
                .string_ids
                .unwrap_or(!(is_int(spec.user_col) && is_int(spec.item_col)));
            (
                Layout {
                    delimiter: spec.delimiter.as_bytes().to_vec(),
                    columns,
                    header_lines: spec.header as u64,
                    string_ids,
                },
                spec.scale,
            )
        }
    })
}

fn first_line(path: &Path) -> Result<String> {
    first_data_line(path, false)
}

/// The first line (after the header when `skip_header`), without its line break.
fn first_data_line(path: &Path, skip_header: bool) -> Result<String> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    for k in 0..=(skip_header as u64) {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            let detail = if k == 0 {
                " (the file is empty)"
            } else {
                " (header only)"
            };
            return Err(DataError::Empty {
                path: path.to_path_buf(),
                detail: detail.into(),
            });
        }
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| DataError::parse(path, 1 + skip_header as u64, "invalid UTF-8"))
}

/// Loads a data set from a MovieLens folder, a ratings file, or a delimited file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Dataset> {
    let located = detect(path, options.format.as_ref())?;
    let (layout, scale) = layout_of(&located.format, &located.ratings)?;
    let raw = parse_file(&located.ratings, &layout, scale)?;
    let raw = apply_duplicates(raw, options.duplicates)?;
    let (interactions, ids) = build_vocab(raw);
    let items = match &located.items {
        Some(p) => read_items(p, &located.format, &ids.items)?,
        None => Vec::new(),
    };
    let scale = scale.unwrap_or_else(|| interactions.rating_range());
    Ok(Dataset {
        interactions,
        ids,
        items,
        scale,
        source: path.display().to_string(),
    })
}

/// Loads a ratings file in the layout of `format`, mapping its ids through an existing `ids`
/// (for predefined folds and held-out files): an id the map lacks is an error naming the file,
/// line and id.
pub fn load_with_ids(path: &Path, format: &Format, ids: &IdMap) -> Result<Interactions> {
    let (layout, scale) = layout_of(format, path)?;
    let raw = parse_file(path, &layout, scale)?;
    map_through(&raw, ids)
}

fn map_through(raw: &RawColumns, ids: &IdMap) -> Result<Interactions> {
    let lookup = |vocab: &Vocab,
                  names: &Option<Vec<String>>,
                  col: &[u32],
                  kind: &'static str|
     -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(col.len());
        let mut cache = std::collections::HashMap::new();
        for (row, &code) in col.iter().enumerate() {
            let idx = match cache.get(&code) {
                Some(&i) => i,
                None => {
                    let raw_id = match names {
                        Some(n) => n[code as usize].clone(),
                        None => code.to_string(),
                    };
                    let i = vocab
                        .index_of(&raw_id)
                        .ok_or_else(|| DataError::UnknownId {
                            kind,
                            id: raw_id,
                            context: format!(
                                " in {}:{} (the id is absent from the data set)",
                                raw.path.display(),
                                raw.line_of(row)
                            ),
                        })?;
                    cache.insert(code, i);
                    i
                }
            };
            out.push(idx);
        }
        Ok(out)
    };
    let users = lookup(&ids.users, &raw.user_names, &raw.users, "user")?;
    let items = lookup(&ids.items, &raw.item_names, &raw.items, "item")?;
    Interactions::new(
        users,
        items,
        raw.ratings.clone(),
        raw.timestamps.clone(),
        ids.n_users(),
        ids.n_items(),
    )
}

/// Applies the duplicate policy to raw columns.
fn apply_duplicates(raw: RawColumns, policy: Duplicates) -> Result<RawColumns> {
    if policy == Duplicates::KeepAll {
        return Ok(raw);
    }
    let Some((first, second)) = find_duplicate(&raw.users, &raw.items) else {
        return Ok(raw);
    };
    if policy == Duplicates::Error {
        let name = |names: &Option<Vec<String>>, code: u32| match names {
            Some(n) => n[code as usize].clone(),
            None => code.to_string(),
        };
        return Err(DataError::parse(
            &raw.path,
            raw.line_of(second),
            format!(
                "user {} rated item {} again (first at line {}); choose a duplicate policy \
                 (--duplicates first|last|all) to load such data",
                name(&raw.user_names, raw.users[second]),
                name(&raw.item_names, raw.items[second]),
                raw.line_of(first)
            ),
        ));
    }
    // Keep one row per pair.
    let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for row in 0..raw.len() {
        let key = Interactions::pair_key(raw.users[row], raw.items[row]);
        match policy {
            Duplicates::KeepFirst => {
                seen.entry(key).or_insert(row);
            }
            _ => {
                seen.insert(key, row);
            }
        }
    }
    let mut keep: Vec<usize> = seen.into_values().collect();
    keep.sort_unstable();
    let pick = |v: &[u32]| keep.iter().map(|&r| v[r]).collect::<Vec<_>>();
    Ok(RawColumns {
        users: pick(&raw.users),
        items: pick(&raw.items),
        ratings: keep.iter().map(|&r| raw.ratings[r]).collect(),
        timestamps: raw
            .timestamps
            .as_ref()
            .map(|t| keep.iter().map(|&r| t[r]).collect()),
        user_names: raw.user_names,
        item_names: raw.item_names,
        path: raw.path,
        first_line: raw.first_line,
    })
}

/// The rows of the first (user, item) pair that occurs twice, if any.
///
/// Files grouped by user (every MovieLens CSV) are checked in one pass with a per-item stamp;
/// others go through a sort.
fn find_duplicate(users: &[u32], items: &[u32]) -> Option<(usize, usize)> {
    let grouped = users.windows(2).all(|w| w[0] <= w[1]);
    if grouped {
        let max_item = items.iter().copied().max().unwrap_or(0) as usize;
        if max_item <= 64 << 20 {
            // stamp[item] = (user + 1, row) of the item's last sighting.
            let mut stamp = vec![(0u32, 0u32); max_item + 1];
            for row in 0..users.len() {
                let s = &mut stamp[items[row] as usize];
                if s.0 == users[row] + 1 {
                    return Some((s.1 as usize, row));
                }
                *s = (users[row] + 1, row as u32);
            }
            return None;
        }
    }
    let mut keys: Vec<(u64, u32)> = users
        .iter()
        .zip(items)
        .enumerate()
        .map(|(row, (&u, &i))| (Interactions::pair_key(u, i), row as u32))
        .collect();
    keys.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    for w in keys.windows(2) {
        if w[0].0 == w[1].0 && best.is_none_or(|b| (w[1].1 as usize) < b.1) {
            best = Some((w[0].1 as usize, w[1].1 as usize));
        }
    }
    best
}

/// Turns raw ids into dense indices in raw-id order and builds the vocabularies.
fn build_vocab(mut raw: RawColumns) -> (Interactions, IdMap) {
    let users = densify(&mut raw.users, raw.user_names.take());
    let items = densify(&mut raw.items, raw.item_names.take());
    let (n_users, n_items) = (users.len(), items.len());
    let interactions = Interactions {
        users: raw.users,
        items: raw.items,
        ratings: raw.ratings,
        timestamps: raw.timestamps,
        n_users,
        n_items,
    };
    (
        interactions,
        IdMap {
            users: Vocab::from_raw(users).expect("raw ids are distinct"),
            items: Vocab::from_raw(items).expect("raw ids are distinct"),
        },
    )
}

/// Rewrites a column of raw ids (or string codes) in place as dense indices; returns the raw ids
/// in index order.
fn densify(col: &mut [u32], names: Option<Vec<String>>) -> Vec<String> {
    match names {
        Some(names) => {
            // Codes are in first-appearance order: re-rank them by the names' order.
            let mut order: Vec<u32> = (0..names.len() as u32).collect();
            order.sort_by(|&a, &b| natural_cmp(&names[a as usize], &names[b as usize]));
            let mut rank = vec![0u32; names.len()];
            for (r, &code) in order.iter().enumerate() {
                rank[code as usize] = r as u32;
            }
            remap(col, &rank);
            order
                .into_iter()
                .map(|c| names[c as usize].clone())
                .collect()
        }
        None => {
            let max = col.iter().copied().max().unwrap_or(0) as usize;
            if max < (col.len() * 4).max(1 << 20) {
                let mut rank = vec![u32::MAX; max + 1];
                for &v in col.iter() {
                    rank[v as usize] = 0;
                }
                let mut raw = Vec::new();
                for (id, r) in rank.iter_mut().enumerate() {
                    if *r == 0 {
                        *r = raw.len() as u32;
                        raw.push(id.to_string());
                    }
                }
                remap(col, &rank);
                raw
            } else {
                let mut ids: Vec<u32> = col.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let index: std::collections::HashMap<u32, u32> = ids
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| (v, k as u32))
                    .collect();
                for v in col.iter_mut() {
                    *v = index[v];
                }
                ids.into_iter().map(|v| v.to_string()).collect()
            }
        }
    }
}

fn remap(col: &mut [u32], rank: &[u32]) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = col.len().div_ceil(threads).max(1 << 16);
    std::thread::scope(|s| {
        for part in col.chunks_mut(chunk) {
            s.spawn(move || {
                for v in part {
                    *v = rank[*v as usize];
                }
            });
        }
    });
}

/// Orders ids numerically when both are numbers, else as text.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// The 19 ML-100K genres, in the order of `u.item`'s flags (as in `u.genre`).
const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Reads titles and genres for the items of `vocab` (items without a line get `None`).
fn read_items(path: &Path, format: &Format, vocab: &Vocab) -> Result<Vec<Option<ItemInfo>>> {
    let mut out: Vec<Option<ItemInfo>> = vec![None; vocab.len()];
    let mut put = |id: &str, info: ItemInfo| {
        if let Some(k) = vocab.index_of(id) {
            out[k as usize] = Some(info);
        }
    };
    match format {
        Format::Ml100k => {
            let text = crate::io::latin1(&crate::io::read(path)?);
            for (n, line) in text.lines().enumerate() {
                if line.is_empty() {
                    continue;
                }
                let f: Vec<&str> = line.split('|').collect();
                if f.len() < 5 + ML100K_GENRES.len() {
                    return Err(DataError::parse(
                        path,
                        n as u64 + 1,
                        format!(
                            "expected {} fields, found {}",
                            5 + ML100K_GENRES.len(),
                            f.len()
                        ),
                    ));
                }
                let genres = f[5..5 + ML100K_GENRES.len()]
                    .iter()
                    .zip(ML100K_GENRES)
                    .filter(|(flag, _)| **flag == "1")
                    .map(|(_, g)| g.to_string())
                    .collect();
                put(
                    f[0],
                    ItemInfo {
                        title: f[1].to_string(),
                        genres,
                    },
                );
            }
        }
        Format::Ml1m | Format::Ml10m => {
            let bytes = crate::io::read(path)?;
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => crate::io::latin1(e.as_bytes()),
            };
            for (n, line) in text.lines().enumerate() {
                if line.is_empty() {
                    continue;
                }
                let f: Vec<&str> = line.splitn(3, "::").collect();
                if f.len() != 3 {
                    return Err(DataError::parse(
                        path,
                        n as u64 + 1,
                        format!("expected 3 fields, found {}", f.len()),
                    ));
                }
                put(
                    f[0],
                    ItemInfo {
                        title: f[1].to_string(),
                        genres: split_genres(f[2]),
                    },
                );
            }
        }
        Format::MlCsv => {
            let text = crate::io::read_utf8(path)?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(text.as_bytes());
            for rec in reader.records() {
                let rec = rec.map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    DataError::parse(path, line, e.to_string())
                })?;
                let line = rec.position().map_or(0, |p| p.line());
                if rec.len() < 3 {
                    return Err(DataError::parse(
                        path,
                        line,
                        format!("expected 3 fields, found {}", rec.len()),
                    ));
                }
                put(
                    &rec[0],
                    ItemInfo {
                        title: rec[1].to_string(),
                        genres: split_genres(&rec[2]),
                    },
                );
            }
        }
        Format::Delimited(_) => {}
    }
    Ok(out)
}

fn split_genres(s: &str) -> Vec<String> {
    s.trim()
        .split('|')
        .filter(|g| !g.is_empty() && *g != "(no genres listed)")
        .map(str::to_string)
        .collect()
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
    let base = load_with_ids(&dir.join(format!("u{fold}.base")), &Format::Ml100k, ids)?;
    let test = load_with_ids(&dir.join(format!("u{fold}.test")), &Format::Ml100k, ids)?;
    Ok((base, test))
}
