//! Streaming the synthetic data set to disk in the ML-20M `ratings.csv` and `movies.csv` formats.

use std::io::Write;
use std::path::Path;

use super::SynthConfig;
use super::meta::item_meta;
use super::plan::{Plan, Scratch};
use crate::error::Result;

/// Streams the data set of [`generate`] to `path` in the ML-20M `ratings.csv` format: a
/// `userId,movieId,rating,timestamp` header, then one `\n`-terminated line per rating such as
/// `17,2571,3.5,1112486027` (raw ids, ratings with one decimal, Unix seconds). The `20m` preset
/// gives a file of about 530 MB, like the real one.
///
/// When [`SynthConfig::write_movies`] is set, `movies.csv` (see [`write_movies_csv`]) is written
/// into the same folder as well.
///
/// Memory stays at the size of the model (a few bytes per user and item): no rating is held as a
/// string beyond the current user's lines. Files are written to a temporary name and renamed
/// into place, so an interrupted run leaves no partial file behind.
///
/// Returns the number of ratings written (`cfg.n_ratings`).
///
/// [`generate`]: super::generate
pub fn write_ml20m_csv(cfg: &SynthConfig, path: &Path) -> Result<u64> {
    cfg.validate()?;
    let plan = Plan::new(cfg);
    let rows = crate::io::write_atomic_with(path, |w| {
        w.write_all(b"userId,movieId,rating,timestamp\n")?;

        let mut scratch = Scratch::new(cfg.n_items);
        let most = plan.counts.iter().copied().max().unwrap_or(0) as usize;
        let (mut items, mut ratings, mut times) =
            (vec![0u32; most], vec![0f32; most], vec![0i64; most]);
        let mut line = Vec::with_capacity(most * 32);
        for u in 0..cfg.n_users {
            let k = plan.counts[u] as usize;
            plan.fill_user(
                u,
                &mut scratch,
                &mut items[..k],
                &mut ratings[..k],
                &mut times[..k],
            );
            line.clear();
            for j in 0..k {
                push_uint(&mut line, u as u64 + 1);
                line.push(b',');
                push_uint(&mut line, items[j] as u64 + 1);
                line.push(b',');
                line.extend_from_slice(half_star_text(ratings[j]).as_bytes());
                line.push(b',');
                push_uint(&mut line, times[j] as u64);
                line.push(b'\n');
            }
            w.write_all(&line)?;
        }
        Ok(cfg.n_ratings as u64)
    })?;
    if cfg.write_movies {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        write_movies_csv(cfg, &dir.join("movies.csv"))?;
    }
    Ok(rows)
}

/// Writes the item metadata of [`generate`] to `path` in the ML-20M `movies.csv` format:
/// a `movieId,title,genres` header, titles such as `Synthetic movie 17 (1998)` (every tenth title
/// has a comma, `Synthetic movie 10, The (1994)`, and is quoted as RFC 4180 requires) and genres
/// joined by `|`. Returns the number of movies written (`cfg.n_items`).
///
/// [`generate`]: super::generate
pub fn write_movies_csv(cfg: &SynthConfig, path: &Path) -> Result<u64> {
    cfg.validate()?;
    let meta = item_meta(cfg);
    crate::io::write_atomic_with(path, |w| {
        let mut line = String::with_capacity(128);
        line.push_str("movieId,title,genres\n");
        for i in 0..cfg.n_items {
            line.push_str(&(i + 1).to_string());
            line.push(',');
            push_csv_field(&mut line, &meta.title(i));
            line.push(',');
            for (k, g) in meta.genres(i).into_iter().enumerate() {
                if k > 0 {
                    line.push('|');
                }
                line.push_str(g);
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
            line.clear();
        }
        Ok(cfg.n_items as u64)
    })
}

/// Appends a CSV field, quoted (RFC 4180) when it holds a comma, a quote or a line break.
pub(super) fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Appends the decimal digits of `v`.
pub(super) fn push_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[k..]);
}

/// `3.5` -> `"3.5"`, `4.0` -> `"4.0"`, as ML-20M writes ratings.
pub(super) fn half_star_text(r: f32) -> &'static str {
    const TEXT: [&str; 11] = [
        "0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0",
    ];
    TEXT[((r * 2.0).round() as usize).min(10)]
}
