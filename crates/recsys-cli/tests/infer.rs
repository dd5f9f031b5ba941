//! `recsys recommend`, `recsys similar`, `recsys export` on a small MF run trained once on the
//! default synthetic data.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;

use common::*;

/// The trained MF run shared by the tests (trained once per test binary).
fn run_dir() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("infer-mf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = dir.display().to_string();
        let o = recsys(&[
            "train", "--model", "mf", "--bias", "--epochs", "2", "--out", &d, "--json",
        ]);
        assert_eq!(json_ok(&o)["model"], "mf");
        d
    })
}

fn recs(v: &serde_json::Value) -> Vec<(String, f64)> {
    v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["item"].as_str().unwrap().to_string(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn recommend_json_shape_and_k() {
    let run = run_dir();
    let v = json_ok(&recsys(&[
        "recommend",
        "--run",
        run,
        "--user",
        "1",
        "-k",
        "7",
        "--json",
    ]));
    assert_eq!(v["user"], "1");
    assert_eq!(v["k"], 7);
    let list = v["recommendations"].as_array().unwrap();
    assert_eq!(list.len(), 7);
    for (r, rec) in list.iter().enumerate() {
        assert_eq!(rec["rank"], r + 1);
        assert!(rec["item"].is_string() && rec["title"].is_string(), "{rec}");
        assert!(rec["score"].as_f64().unwrap().is_finite());
    }
    let scores: Vec<f64> = recs(&v).iter().map(|p| p.1).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let top = v["top_rated"].as_array().unwrap();
    assert!(!top.is_empty() && top.len() <= 5);
    assert!(top[0]["rating"].as_f64().unwrap() >= top[top.len() - 1]["rating"].as_f64().unwrap());

    // k beyond the catalogue is clamped with a warning.
    let o = recsys(&[
        "recommend",
        "--run",
        run,
        "--user",
        "1",
        "-k",
        "100000",
        "--json",
    ]);
    let v = json_ok(&o);
    assert_eq!(v["k"], 1682);
    assert_eq!(v["recommendations"].as_array().unwrap().len(), 1682);
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn exclude_seen_leaves_out_every_known_item() {
    let run = run_dir();
    // All items ranked: the items the run knows the user rated (training and validation parts)
    // must all be missing, and only they.
    let all = json_ok(&recsys(&[
        "recommend",
        "--run",
        run,
        "--user",
        "5",
        "-k",
        "2000",
        "--json",
    ]));
    let ex = json_ok(&recsys(&[
        "recommend",
        "--run",
        run,
        "--user",
        "5",
        "-k",
        "2000",
        "--exclude-seen",
        "--top-rated",
        "100000",
        "--json",
    ]));
    let n_seen = ex["n_known_items"].as_u64().unwrap() as usize;
    assert!(n_seen > 0);
    // The run's parts, written by `data split` with the run's split and seed: the known items
    // are the user's training and validation items.
    let parts = tempfile::tempdir().unwrap();
    let out = parts.path().display().to_string();
    let o = recsys(&[
        "data", "split", "--method", "random", "--seed", "42", "--out", &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let count = |name: &str| {
        std::fs::read_to_string(parts.path().join(name))
            .unwrap()
            .lines()
            .filter(|l| l.split(',').next() == Some("5"))
            .count()
    };
    let (n_train, n_valid) = (count("train.csv"), count("valid.csv"));
    assert!(n_valid > 0, "user 5 has validation ratings");
    assert_eq!(n_seen, n_train + n_valid);
    let seen: Vec<String> = ex["top_rated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["item"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.len(), n_seen);
    let got: Vec<String> = recs(&ex).into_iter().map(|p| p.0).collect();
    assert_eq!(got.len(), 1682 - n_seen);
    assert!(got.iter().all(|i| !seen.contains(i)));
    let want: Vec<String> = recs(&all)
        .into_iter()
        .map(|p| p.0)
        .filter(|i| !seen.contains(i))
        .collect();
    assert_eq!(got, want, "exclusion changes nothing but the seen items");
}

#[test]
fn same_top_k_from_two_processes() {
    let run = run_dir();
    let args = [
        "recommend",
        "--run",
        run,
        "--user",
        "42",
        "-k",
        "20",
        "--json",
    ];
    let (a, b) = (
        recs(&json_ok(&recsys(&args))),
        recs(&json_ok(&recsys(&args))),
    );
    assert_eq!(a.len(), 20);
    let ids = |v: &[(String, f64)]| v.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    for (x, y) in a.iter().zip(&b) {
        assert!((x.1 - y.1).abs() < 1e-6, "{x:?} vs {y:?}");
    }
}

#[test]
fn all_users_writes_csv() {
    let run = run_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("top.csv").display().to_string();
    let v = json_ok(&recsys(&[
        "recommend",
        "--run",
        run,
        "--all-users",
        "-k",
        "3",
        "--out",
        &out,
        "--json",
    ]));
    assert_eq!(v["users"], 943);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user,rank,item,score,title"));
    assert_eq!(lines.count(), 943 * 3);
    // The single-user command agrees with the file.
    let one = json_ok(&recsys(&[
        "recommend",
        "--run",
        run,
        "--user",
        "1",
        "-k",
        "3",
        "--json",
    ]));
    let first: Vec<&str> = text
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    let want: Vec<String> = recs(&one).into_iter().map(|p| p.0).collect();
    assert_eq!(first, want);
    // Only the file, no temporary left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unknown_ids_are_clear_errors() {
    let run = run_dir();
    assert_fails_with(
        &recsys(&["recommend", "--run", run, "--user", "no-such-user"]),
        &["no-such-user", "user"],
    );
    assert_fails_with(
        &recsys(&["similar", "--run", run, "--item", "no-such-item"]),
        &["no-such-item"],
    );
    assert_fails_with(
        &recsys(&["similar", "--run", run, "--title", "Not A Movie (1900)"]),
        &["Not A Movie (1900)"],
    );
}

#[test]
fn similar_returns_k_items_without_the_query() {
    let run = run_dir();
    let v = json_ok(&recsys(&[
        "similar", "--run", run, "--item", "50", "-k", "8", "--json",
    ]));
    assert_eq!(v["item"], "50");
    let list = v["similar"].as_array().unwrap();
    assert_eq!(list.len(), 8);
    let mut last = f64::INFINITY;
    for s in list {
        assert_ne!(s["item"], "50");
        let sim = s["similarity"].as_f64().unwrap();
        assert!((-1.0001..=1.0001).contains(&sim) && sim <= last, "{s}");
        last = sim;
    }
    // By title: the same answer.
    let title = v["title"].as_str().unwrap().to_string();
    let w = json_ok(&recsys(&[
        "similar", "--run", run, "--title", &title, "-k", "8", "--json",
    ]));
    assert_eq!(v["similar"], w["similar"]);
}

#[test]
fn similar_pairs_above_a_threshold() {
    let run = run_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairs.csv");
    let o = out.display().to_string();
    // The item most similar to item 50, and how similar: that pair must be listed.
    let v = json_ok(&recsys(&[
        "similar", "--run", run, "--item", "50", "-k", "1", "--json",
    ]));
    let (best, sim) = (
        v["similar"][0]["item"].as_str().unwrap().to_string(),
        v["similar"][0]["similarity"].as_f64().unwrap(),
    );
    let threshold = format!("{}", sim - 1e-4);
    let p = json_ok(&recsys(&[
        "similar",
        "--run",
        run,
        "--pairs",
        "--threshold",
        &threshold,
        "--out",
        &o,
        "--json",
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "item_a,item_b,similarity,title_a,title_b");
    assert_eq!(lines.len() - 1, p["pairs"].as_u64().unwrap() as usize);
    let mut last = f64::INFINITY;
    let mut found = false;
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let s: f64 = f[2].parse().unwrap();
        assert!(s >= sim - 1e-4 - 1e-6 && s <= last + 1e-9, "{l}");
        last = s;
        found |= (f[0] == "50" && f[1] == best) || (f[1] == "50" && f[0] == best);
    }
    assert!(found, "the pair (50, {best}) at {sim} is missing");
    assert_fails_with(
        &recsys(&["similar", "--run", run, "--pairs", "--threshold", "2"]),
        &["not a cosine similarity"],
    );
}

/// Shape of an NPY v1.0 file, after checking its header.
fn npy_shape(path: &Path) -> (usize, usize) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: Vec<usize> = shape
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let (n, d) = (dims[0], dims[1]);
    assert_eq!(b.len(), 10 + hlen + 4 * n * d, "{}", path.display());
    (n, d)
}

#[test]
fn export_npy_and_csv() {
    let run = run_dir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vectors");
    let o = out.display().to_string();
    let v = json_ok(&recsys(&["export", "--run", run, "--out", &o, "--json"]));
    let dim = v["dim"].as_u64().unwrap() as usize;
    assert_eq!(npy_shape(&out.join("users.npy")), (943, dim));
    assert_eq!(npy_shape(&out.join("items.npy")), (1682, dim));
    let items = std::fs::read_to_string(out.join("items.csv")).unwrap();
    assert_eq!(items.lines().next(), Some("index,id,title"));
    assert_eq!(items.lines().count(), 1683);
    assert_eq!(
        std::fs::read_to_string(out.join("users.csv"))
            .unwrap()
            .lines()
            .count(),
        944
    );
    // Nothing else beside it (the temporary folder is gone).
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names, vec![out.clone()]);
    // An existing export is not overwritten.
    assert_fails_with(
        &recsys(&["export", "--run", run, "--out", &o]),
        &["already exists"],
    );
    let csv_out = dir.path().join("csv").display().to_string();
    json_ok(&recsys(&[
        "export", "--run", run, "--format", "csv", "--out", &csv_out, "--json",
    ]));
    let users = std::fs::read_to_string(Path::new(&csv_out).join("users.csv")).unwrap();
    let header = users.lines().next().unwrap();
    assert_eq!(header.split(',').count(), 2 + dim);
    assert_eq!(users.lines().nth(1).unwrap().split(',').count(), 2 + dim);
    // The full score matrix of a small catalogue.
    let with_scores = dir.path().join("scores").display().to_string();
    let v = json_ok(&recsys(&[
        "export",
        "--run",
        run,
        "--scores",
        "--out",
        &with_scores,
        "--json",
    ]));
    assert!(v["files"].to_string().contains("scores.npy"), "{v}");
    assert_eq!(
        npy_shape(&Path::new(&with_scores).join("scores.npy")),
        (943, 1682)
    );
}

#[test]
fn export_to_a_bad_out_path_errors() {
    let run = run_dir();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    // Under a regular file (fails for root too, unlike a read-only folder).
    let bad = file.join("out").display().to_string();
    assert_fails_with(
        &recsys(&["export", "--run", run, "--out", &bad]),
        &["a-file"],
    );
    assert_fails_with(
        &recsys(&["export", "--run", run, "--out", &file.display().to_string()]),
        &["already exists"],
    );
    assert_fails_with(
        &recsys(&["export", "--run", run, "--format", "parquet", "--out", &bad]),
        &["parquet"],
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

/// A copy of the shared run (so that an index written into it changes no other test's run).
fn copy_of_run(name: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("infer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(Path::new(run_dir()), &dir);
    dir
}

/// `recsys index` writes an inverted file (or, asked, an HNSW graph) that `recommend` and
/// `similar` then search; scanning every list gives brute force's lists, `--exact` bypasses the
/// index, and the default settings still find most of the exact top 10.
#[test]
fn index_is_built_and_searched() {
    let dir = copy_of_run("index");
    let run = dir.to_str().unwrap();
    let recommend = |user: &str, exact: bool| {
        let mut args = vec![
            "recommend",
            "--run",
            run,
            "--user",
            user,
            "-k",
            "10",
            "--json",
        ];
        if exact {
            args.push("--exact");
        }
        json_ok(&recsys(&args))
    };
    let similar = |exact: bool| {
        let mut args = vec!["similar", "--run", run, "--item", "50", "-k", "8", "--json"];
        if exact {
            args.push("--exact");
        }
        json_ok(&recsys(&args))
    };
    let users = ["1", "2", "3", "4", "5", "6", "7", "8"];
    let exact: Vec<_> = users.iter().map(|u| recs(&recommend(u, true))).collect();
    assert!(recommend("1", true)["index"].is_null());

    let v = json_ok(&recsys(&[
        "index", "--run", run, "--probes", "100000", "--json",
    ]));
    assert_eq!(v["method"], "ivf");
    assert_eq!(v["inner_product"], true);
    assert_eq!(v["cosine"], true);
    let lists = v["lists"].as_u64().unwrap();
    assert!(lists > 1, "{v}");
    assert_eq!(v["probes"], lists);
    // The same items; scores within rounding (the device scores the exact path, the host the
    // index's).
    let ids = |l: &[(String, f64)]| l.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
    for (user, want) in users.iter().zip(&exact) {
        let got = recommend(user, false);
        assert_eq!(got["index"], "ivf");
        let got = recs(&got);
        assert_eq!(ids(&got), ids(want), "user {user}");
        for ((_, a), (_, b)) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "user {user}: {a} vs {b}");
        }
    }
    let s = similar(false);
    assert_eq!(s["index"], "ivf");
    assert_eq!(s["similar"], similar(true)["similar"]);

    // The default lists scanned: most of the exact top 10, each with its exact score.
    let v = json_ok(&recsys(&["index", "--run", run, "--json"]));
    assert!(v["probes"].as_u64().unwrap() < lists, "{v}");
    let mut hits = 0;
    for (user, want) in users.iter().zip(&exact) {
        for (item, score) in recs(&recommend(user, false)) {
            if let Some((_, s)) = want.iter().find(|(i, _)| *i == item) {
                assert!((s - score).abs() < 1e-5, "user {user}, item {item}");
                hits += 1;
            }
        }
    }
    assert!(hits >= 70, "{hits} of the exact top 10 of 8 users");

    let v = json_ok(&recsys(&[
        "index", "--run", run, "--method", "hnsw", "--json",
    ]));
    assert_eq!(v["method"], "hnsw");
    assert!(v["lists"].is_null());
    assert_eq!(recommend("1", false)["index"], "hnsw");
    assert_eq!(similar(false)["index"], "hnsw");
}
