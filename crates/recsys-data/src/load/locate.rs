//! Finding a data set's files and format, and the parser layout of each format.

use std::path::{Path, PathBuf};

use super::{DelimitedSpec, Format};
use crate::error::{DataError, Result};
use crate::parse::{Layout, Role};

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

pub(super) fn layout_of(format: &Format, ratings: &Path) -> Result<(Layout, Option<(f32, f32)>)> {
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
