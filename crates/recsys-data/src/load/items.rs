//! Reading item titles and genres from each MovieLens release's item file.

use std::path::Path;

use super::Format;
use crate::error::{DataError, Result};
use crate::interactions::{ItemInfo, Vocab};

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
pub(super) fn read_items(
    path: &Path,
    format: &Format,
    vocab: &Vocab,
) -> Result<Vec<Option<ItemInfo>>> {
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
