//! Entry points for the fuzzers (`fuzz/`, run by `cargo xtask fuzz`) and the smoke test that
//! feeds them seeds and mutations in `cargo test` (`tests/fuzz_smoke.rs`).
//!
//! Each target takes arbitrary bytes, lays them out as the files its parser reads (several files
//! are cut at `\0` bytes, in the order of [`Target::files`]) in a scratch folder of the thread, and
//! runs the same public loader a command runs. A target may return any error; it must never
//! panic, hang or allocate without bound. [`Target::seeds`] makes valid inputs from synthetic
//! fixtures (never real data) for the fuzzer's starting corpus.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use crate::fetch::Release;
use crate::history::TestNegatives;
use crate::interactions::IdMap;
use crate::load::{DelimitedSpec, Format, LoadOptions, load, ml100k_fold};

/// One fuzz target: a name for `--target`, the function the fuzzer calls and its seeds.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// The files one input is cut into, for documentation.
    pub files: &'static str,
    pub run: fn(&[u8]),
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// The targets of this crate's parsers.
pub const TARGETS: &[Target] = &[
    Target {
        name: "ml-100k",
        files: "u.data \\0 u.item \\0 u1.base \\0 u1.test",
        run: ml100k,
        seeds: ml100k_seeds,
    },
    Target {
        name: "ml-1m",
        files: "ratings.dat \\0 movies.dat (read as ML-10M, then as ML-1M with a users.dat)",
        run: ml1m,
        seeds: ml1m_seeds,
    },
    Target {
        name: "ml-csv",
        files: "ratings.csv \\0 movies.csv (ML-20M, ML-25M, ml-latest, ml-latest-small)",
        run: ml_csv,
        seeds: ml_csv_seeds,
    },
    Target {
        name: "delimited",
        files: "one byte of options, then the file",
        run: delimited,
        seeds: delimited_seeds,
    },
    Target {
        name: "negative",
        files: "NCF .test.negative file",
        run: negative,
        seeds: negative_seeds,
    },
    Target {
        name: "idmap",
        files: "idmap.json",
        run: idmap,
        seeds: idmap_seeds,
    },
    Target {
        name: "zip",
        files: "a release zip",
        run: zip,
        seeds: zip_seeds,
    },
];

/// A fresh scratch folder for this thread, emptied before each input; in memory (`/dev/shm`)
/// where the system has it, which makes a target about twenty times faster than on disk.
pub fn scratch() -> PathBuf {
    thread_local! {
        static DIR: tempfile::TempDir = {
            let shm = std::path::Path::new("/dev/shm");
            let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
            tempfile::Builder::new()
                .prefix("recsys-fuzz.")
                .tempdir_in(&base)
                .or_else(|_| tempfile::Builder::new().prefix("recsys-fuzz.").tempdir())
                .expect("a temporary folder for the fuzz target")
        };
    }
    DIR.with(|d| {
        let dir = d.path().join("in");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

/// Cuts `data` at `\0` bytes into at most `n` parts (the last part keeps any further `\0`).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

/// Writes `files` (name, bytes) into a fresh scratch folder; returns it.
pub fn lay_out(files: &[(&str, &[u8])]) -> PathBuf {
    let dir = scratch();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("scratch file");
    }
    dir
}

fn options(format: Format) -> LoadOptions {
    LoadOptions {
        format: Some(format),
        ..Default::default()
    }
}

fn ml100k(data: &[u8]) {
    let p = parts(data, 4);
    let names = ["u.data", "u.item", "u1.base", "u1.test"];
    let files: Vec<(&str, &[u8])> = names.iter().copied().zip(p).collect();
    let dir = lay_out(&files);
    if let Ok(ds) = load(&dir, &LoadOptions::default()) {
        let _ = ml100k_fold(&dir, 1, &ds.ids);
    }
}

fn ml1m(data: &[u8]) {
    let p = parts(data, 2);
    let mut files: Vec<(&str, &[u8])> = ["ratings.dat", "movies.dat"]
        .iter()
        .copied()
        .zip(p)
        .collect();
    let dir = lay_out(&files);
    let _ = load(&dir, &options(Format::Ml10m));
    files.push(("users.dat", b"1::F::1::10::48067\n"));
    let dir = lay_out(&files);
    let _ = load(&dir, &LoadOptions::default());
}

fn ml_csv(data: &[u8]) {
    let p = parts(data, 2);
    let files: Vec<(&str, &[u8])> = ["ratings.csv", "movies.csv"]
        .iter()
        .copied()
        .zip(p)
        .collect();
    let dir = lay_out(&files);
    let _ = load(&dir, &LoadOptions::default());
}

/// The option byte of the `delimited` target: delimiter (bits 0-2), header (3), string ids
/// (4-5: detect, integers, strings), a scale (6), a timestamp column (7).
pub fn delimited_spec(flags: u8) -> DelimitedSpec {
    let delimiter = [",", "\t", "::", ";", "|", " ", ",", "\t"][(flags & 7) as usize];
    DelimitedSpec {
        delimiter: delimiter.into(),
        header: flags & 8 != 0,
        string_ids: [None, Some(false), Some(true), None][((flags >> 4) & 3) as usize],
        scale: (flags & 64 != 0).then_some((0.5, 5.0)),
        timestamp_col: (flags & 128 != 0).then_some(3),
        ..Default::default()
    }
}

fn delimited(data: &[u8]) {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let dir = lay_out(&[("ratings.txt", file)]);
    let _ = load(
        &dir.join("ratings.txt"),
        &options(Format::Delimited(delimited_spec(flags))),
    );
}

fn negative(data: &[u8]) {
    let dir = lay_out(&[("test.negative", data)]);
    let _ = TestNegatives::read(&dir.join("test.negative"), 50, 100);
}

fn idmap(data: &[u8]) {
    let dir = lay_out(&[("idmap.json", data)]);
    if let Ok(ids) = IdMap::load(&dir.join("idmap.json")) {
        // What commands do with a loaded map: look ids up both ways.
        for k in 0..ids.items.len().min(4) {
            let raw = ids.items.raw_id(k as u32).to_string();
            let _ = ids.items.index_of(&raw);
        }
    }
}

fn zip(data: &[u8]) {
    let dir = lay_out(&[("release.zip", data)]);
    let cache = dir.join("cache");
    for release in [Release::Ml100k, Release::Ml10m] {
        let _ = crate::fetch::install_unverified(release, &dir.join("release.zip"), &cache);
    }
}

// --- seeds, from small synthetic fixtures ---------------------------------------------------

fn ratings_lines(sep: &str, with_ts: bool) -> String {
    let mut s = String::new();
    for u in 1..=6u32 {
        for i in 1..=5u32 {
            if (u + i) % 3 == 0 {
                continue;
            }
            let r = 1 + (u * 7 + i * 3) % 5;
            if with_ts {
                let _ = writeln!(s, "{u}{sep}{i}{sep}{r}{sep}{}", 880000000 + u * 100 + i);
            } else {
                let _ = writeln!(s, "{u}{sep}{i}{sep}{r}");
            }
        }
    }
    s
}

fn join(files: &[&[u8]]) -> Vec<u8> {
    files.join(&0u8)
}

fn ml100k_seeds() -> Vec<Vec<u8>> {
    let data = ratings_lines("\t", true);
    let mut items = String::new();
    for i in 1..=5 {
        let flags = ["0"; 19].join("|");
        let _ = writeln!(items, "{i}|Movie {i} (1995)|01-Jan-1995||http://x|{flags}");
    }
    let lines: Vec<&str> = data.lines().collect();
    let base = lines[..lines.len() - 3].join("\n") + "\n";
    let test = lines[lines.len() - 3..].join("\n") + "\n";
    vec![
        join(&[
            data.as_bytes(),
            items.as_bytes(),
            base.as_bytes(),
            test.as_bytes(),
        ]),
        data.into_bytes(),
    ]
}

fn ml1m_seeds() -> Vec<Vec<u8>> {
    let data = ratings_lines("::", true);
    let mut movies = String::new();
    for i in 1..=5 {
        let _ = writeln!(movies, "{i}::Movie {i} (1995)::Comedy|Drama");
    }
    let half = data.replace("::3::", "::3.5::");
    vec![
        join(&[data.as_bytes(), movies.as_bytes()]),
        join(&[half.as_bytes(), movies.as_bytes()]),
    ]
}

fn ml_csv_seeds() -> Vec<Vec<u8>> {
    let ratings = format!(
        "userId,movieId,rating,timestamp\n{}",
        ratings_lines(",", true)
    );
    let mut movies = String::from("movieId,title,genres\n");
    for i in 1..=5 {
        let _ = writeln!(movies, "{i},\"Movie, {i} (1995)\",Comedy|Drama");
    }
    vec![join(&[ratings.as_bytes(), movies.as_bytes()])]
}

fn delimited_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for flags in [0u8, 1, 2, 3, 4, 8, 0x20 | 8, 0x40, 0x80, 0x80 | 1] {
        let spec = delimited_spec(flags);
        let mut file = String::new();
        if spec.header {
            let d = &spec.delimiter;
            let _ = writeln!(file, "user{d}item{d}rating{d}time");
        }
        let body = ratings_lines(&spec.delimiter, true);
        let body = if spec.string_ids == Some(true) {
            body.lines().map(|l| format!("u{l}\n")).collect::<String>()
        } else {
            body
        };
        file.push_str(&body);
        let mut input = vec![flags];
        input.extend_from_slice(file.as_bytes());
        out.push(input);
    }
    out
}

fn negative_seeds() -> Vec<Vec<u8>> {
    let mut s = String::new();
    for u in 0..5 {
        let _ = write!(s, "({u},{})", u * 3);
        for n in 0..4 {
            let _ = write!(s, "\t{}", 10 + u * 4 + n);
        }
        s.push('\n');
    }
    vec![s.into_bytes()]
}

fn idmap_seeds() -> Vec<Vec<u8>> {
    let Ok(ds) = load(
        &lay_out(&[("u.data", ratings_lines("\t", true).as_bytes())]),
        &LoadOptions::default(),
    ) else {
        return Vec::new();
    };
    let path = scratch().join("idmap.json");
    ds.ids.save(&path).expect("id map");
    vec![std::fs::read(&path).expect("id map")]
}

/// A zip of `entries` (name, bytes), stored without compression, and the same deflated.
pub fn zip_bytes(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = ::zip::ZipWriter::new(&mut buf);
        let method = if deflate {
            ::zip::CompressionMethod::Deflated
        } else {
            ::zip::CompressionMethod::Stored
        };
        let opts = ::zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).expect("zip folder");
            } else {
                w.start_file(*name, opts).expect("zip entry");
                w.write_all(bytes).expect("zip entry");
            }
        }
        w.finish().expect("zip");
    }
    buf.into_inner()
}

fn zip_seeds() -> Vec<Vec<u8>> {
    let data = ratings_lines("\t", true);
    let ten = ratings_lines("::", true);
    let entries: [(&str, &[u8]); 3] = [
        ("ml-100k/", b""),
        ("ml-100k/u.data", data.as_bytes()),
        (
            "ml-100k/u.item",
            b"1|Movie 1 (1995)|01-Jan-1995||x|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
        ),
    ];
    let ml10m: [(&str, &[u8]); 3] = [
        ("ml-10M100K/ratings.dat", ten.as_bytes()),
        ("ml-10M100K/movies.dat", b"1::Movie 1 (1995)::Comedy\n"),
        ("ml-10M100K/tags.dat", b"1::1::funny::880000000\n"),
    ];
    vec![
        zip_bytes(&entries, false),
        zip_bytes(&entries, true),
        zip_bytes(&ml10m, true),
    ]
}
