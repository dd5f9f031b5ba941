//! Scoring a trained run on data other than its own: `eval --data` on a file of other ids,
//! `predict --pairs`, the hidden-ratings protocol, normalised runs and scores shown on the
//! rating scale. Small MF runs on a tiny CSV fixture.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

mod common;

use common::*;

const USERS: u32 = 40;
const ITEMS: u32 = 25;

/// The rating of user `u` for item `i`: a user and an item effect, on 1..5.
fn rating(u: u32, i: u32) -> u32 {
    1 + (u % 3 + (i * 7) % 5 + (u * i) % 2) % 5
}

/// A ratings CSV (user,item,rating): every user rates 15 items; ids are `u<k>`, `i<k>`.
fn write_fixture(path: &Path) {
    let mut text = String::new();
    for u in 0..USERS {
        for k in 0..15 {
            let i = (u * 3 + k) % ITEMS;
            text.push_str(&format!("u{u},i{i},{}\n", rating(u, i)));
        }
    }
    std::fs::write(path, text).unwrap();
}

fn tmp() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn fixture() -> String {
    static F: OnceLock<String> = OnceLock::new();
    F.get_or_init(|| {
        let p = tmp().join("fixture.csv");
        write_fixture(&p);
        p.display().to_string()
    })
    .clone()
}

/// A biased MF run on the fixture (trained once per test binary).
fn mf_run() -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let d = tmp().join("mf").display().to_string();
        let data = fixture();
        let o = recsys(&[
            "train",
            "--model",
            "mf",
            "--bias",
            "--data",
            &data,
            "--epochs",
            "3",
            "--backend",
            "flex",
            "--out",
            &d,
            "--json",
        ]);
        json_ok(&o);
        d
    })
    .clone()
}

/// `predict --pairs` on `pairs` (a file), as JSON: line -> clamped prediction.
fn predictions(run: &str, pairs: &Path) -> (serde_json::Value, HashMap<u64, f64>) {
    let p = pairs.display().to_string();
    let v = json_ok(&recsys(&[
        "predict", "--run", run, "--pairs", &p, "--format", "json",
    ]));
    let map = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["line"].as_u64()?, r["prediction"].as_f64()?)))
        .collect();
    (v, map)
}

#[test]
fn eval_scores_a_file_of_other_ids_through_the_run_id_map() {
    let run = mf_run();
    // Another file: users in reverse order (other dense indices), known pairs, plus a pair of
    // an unknown user and one of an unknown item.
    let mut text = String::new();
    let mut truth = Vec::new();
    for u in (0..USERS).rev().step_by(3) {
        for i in [u % ITEMS, (u + 11) % ITEMS] {
            text.push_str(&format!("u{u},i{i},{}\n", rating(u, i)));
            truth.push(rating(u, i) as f64);
        }
    }
    text.push_str("stranger,i1,3\nu1,new-item,4\n");
    let other = tmp().join("other.csv");
    std::fs::write(&other, &text).unwrap();
    let o = other.display().to_string();
    let v = json_ok(&recsys(&["eval", "--run", &run, "--data", &o, "--json"]));
    assert_eq!(v["part"], "all");
    assert_eq!(v["metrics"]["n"].as_u64(), Some(truth.len() as u64));
    assert_eq!(v["unknown"]["pairs"], 2);
    assert_eq!(v["unknown"]["users"], 1);
    assert_eq!(v["unknown"]["items"], 1);
    assert_eq!(v["unknown"]["first_users"][0], "stranger");
    // The same pairs predicted one by one through the run's ids give the same RMSE.
    let (_, pred) = predictions(&run, &other);
    let mse: f64 = truth
        .iter()
        .enumerate()
        .map(|(k, t)| (pred[&(k as u64 + 1)] - t).powi(2))
        .sum::<f64>()
        / truth.len() as f64;
    let rmse = v["metrics"]["rmse"].as_f64().unwrap();
    assert!((rmse - mse.sqrt()).abs() < 1e-5, "{rmse} vs {}", mse.sqrt());
    // The table names the pairs left out; a part of the run's split does not apply.
    let t = recsys(&["eval", "--run", &run, "--data", &o]);
    let out = String::from_utf8_lossy(&t.stdout).into_owned();
    assert!(
        out.contains("2 pairs left out") && out.contains("stranger"),
        "{out}"
    );
    let bad = recsys(&["eval", "--run", &run, "--data", &o, "--part", "valid"]);
    assert_fails_with(&bad, &["--part valid", "every rating of it is scored"]);
    // No known pair at all: a clear error.
    let none = tmp().join("none.csv");
    std::fs::write(&none, "x,y,3\n").unwrap();
    let bad = recsys(&["eval", "--run", &run, "--data", &none.display().to_string()]);
    assert_fails_with(&bad, &["none of its 1 ratings"]);
    // The run's own file still replays its split.
    let own = json_ok(&recsys(&[
        "eval",
        "--run",
        &run,
        "--data",
        &fixture(),
        "--json",
    ]));
    assert_eq!(own["part"], "test");
}

#[test]
fn predict_pairs_writes_csv_or_json_and_reports_unknown_ids_per_line() {
    let run = mf_run();
    let pairs = tmp().join("pairs.csv");
    std::fs::write(
        &pairs,
        "user,item\nu3,i4\nghost,i4\nu5\ti7\tignored\nu3,nothing\n",
    )
    .unwrap();
    let p = pairs.display().to_string();
    let o = recsys(&["predict", "--run", &run, "--pairs", &p]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "line,user,item,prediction,unclamped,error");
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[1].starts_with("2,u3,i4,") && lines[1].ends_with(','),
        "{out}"
    );
    assert_eq!(lines[2], "3,ghost,i4,,,unknown user ghost");
    assert!(lines[3].starts_with("4,u5,i7,"), "{out}");
    assert_eq!(lines[4], "5,u3,nothing,,,unknown item nothing");
    assert!(stderr(&o).contains("2 of 4 pairs"), "{}", stderr(&o));
    // The single-pair command gives the same prediction.
    let one = json_ok(&recsys(&[
        "predict", "--run", &run, "--user", "u3", "--item", "i4", "--json",
    ]));
    let csv_pred: f64 = lines[1].split(',').nth(3).unwrap().parse().unwrap();
    assert!((one["prediction"].as_f64().unwrap() - csv_pred).abs() < 1e-5);
    // JSON by the output file's extension.
    let out = tmp().join("pred.json");
    let s = json_ok(&recsys(&[
        "predict",
        "--run",
        &run,
        "--pairs",
        &p,
        "--out",
        &out.display().to_string(),
        "--json",
    ]));
    assert_eq!(
        (s["pairs"].as_u64(), s["unknown"].as_u64()),
        (Some(4), Some(2))
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["predicted"], 2);
    assert_eq!(v["predictions"][1]["error"], "unknown user ghost");
    assert!(v["predictions"][0]["prediction"].is_f64());
    // A line without an item: an error naming the file and line.
    std::fs::write(&pairs, "u1,i1\nu2\n").unwrap();
    let bad = recsys(&["predict", "--run", &run, "--pairs", &p]);
    assert_fails_with(&bad, &["pairs.csv:2", "expected user,item"]);
}

#[test]
fn hidden_protocol_hides_ratings_of_the_part() {
    let run = mf_run();
    let v = json_ok(&recsys(&[
        "eval",
        "--run",
        &run,
        "--protocol",
        "hidden",
        "--hide",
        "7",
        "--seed",
        "3",
        "--json",
    ]));
    assert_eq!(v["protocol"], "hidden");
    assert_eq!(v["metrics"]["n"], 7);
    assert_eq!(v["hidden"]["seed"], 3);
    // More than the part holds: all of it; another seed, other ratings (same count).
    let all = json_ok(&recsys(&[
        "eval",
        "--run",
        &run,
        "--protocol",
        "hidden",
        "--hide",
        "100000",
        "--json",
    ]));
    let test = json_ok(&recsys(&["eval", "--run", &run, "--json"]));
    assert_eq!(all["metrics"]["n"], test["metrics"]["n"]);
    // For MF (weights alone), hiding the whole part is scoring the whole part.
    let (a, b) = (
        all["metrics"]["rmse"].as_f64().unwrap(),
        test["metrics"]["rmse"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    let bad = recsys(&["eval", "--run", &run, "--seed", "3"]);
    assert_fails_with(&bad, &["--seed applies to --protocol hidden"]);
    let bad = recsys(&["eval", "--run", &run, "--protocol", "hidden", "--hide", "0"]);
    assert_fails_with(&bad, &["--hide must be at least 1"]);
}

#[test]
fn normalize_is_recorded_and_inverted() {
    let data = fixture();
    for kind in ["max", "minmax", "center"] {
        let d = tmp().join(format!("norm-{kind}")).display().to_string();
        let v = json_ok(&recsys(&[
            "train",
            "--model",
            "mf",
            "--bias",
            "--data",
            &data,
            "--epochs",
            "3",
            "--normalize",
            kind,
            "--out",
            &d,
            "--json",
        ]));
        let config = std::fs::read_to_string(Path::new(&d).join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("normalize = \"{kind}\"")),
            "{config}"
        );
        assert!(config.contains("[normalizer]"), "{config}");
        // Predictions are back on the rating scale: eval agrees with train's test figure.
        let e = json_ok(&recsys(&["eval", "--run", &d, "--json"]));
        let (a, b) = (
            v["metrics"]["rmse"].as_f64().unwrap(),
            e["metrics"]["rmse"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9 && a < 2.0, "{kind}: {a} vs {b}");
        let p = json_ok(&recsys(&[
            "predict", "--run", &d, "--user", "u1", "--item", "i2", "--json",
        ]));
        assert!(p["unclamped"].as_f64().unwrap() > 0.5, "{kind}: {p}");
    }
    let bad = recsys(&[
        "train",
        "--model",
        "mf",
        "--data",
        &data,
        "--task",
        "implicit",
        "--normalize",
        "center",
    ]);
    assert_fails_with(&bad, &["--normalize applies to rating tasks"]);
    let bad = recsys(&[
        "train",
        "--model",
        "mf",
        "--data",
        &data,
        "--loss",
        "bce",
        "--normalize",
        "max",
    ]);
    assert_fails_with(&bad, &["--loss bce already scales ratings"]);
}

#[test]
fn recommend_shows_scores_on_the_rating_scale() {
    // Ratings of 5 everywhere but one item: a strong lr pushes biased MF past 5.
    let mut text = String::new();
    for u in 0..12 {
        for i in 0..8 {
            if (u + i) % 3 != 0 {
                text.push_str(&format!("u{u},i{i},{}\n", if i == 7 { 1 } else { 5 }));
            }
        }
    }
    let file = tmp().join("fives.csv");
    std::fs::write(&file, text).unwrap();
    let d = tmp().join("fives").display().to_string();
    json_ok(&recsys(&[
        "train",
        "--model",
        "mf",
        "--bias",
        "--data",
        &file.display().to_string(),
        "--epochs",
        "20",
        "--lr",
        "0.05",
        "--valid",
        "0.1",
        "--test",
        "0.1",
        "--out",
        &d,
        "--json",
    ]));
    let v = json_ok(&recsys(&[
        "recommend",
        "--run",
        &d,
        "--user",
        "u0",
        "-k",
        "8",
        "--json",
    ]));
    let mut above = false;
    for r in v["recommendations"].as_array().unwrap() {
        let s = r["score"].as_f64().unwrap();
        assert!((1.0..=5.0).contains(&s), "{r}");
        let item = r["item"].as_str().unwrap();
        let p = json_ok(&recsys(&[
            "predict", "--run", &d, "--user", "u0", "--item", item, "--json",
        ]));
        assert!(
            (p["prediction"].as_f64().unwrap() - s).abs() < 1e-5,
            "{p} vs {r}"
        );
        above |= p["unclamped"].as_f64().unwrap() > 5.0;
    }
    assert!(above, "the fixture predicts above the scale somewhere");
}

#[test]
fn closed_form_baselines_train_evaluate_and_recommend() {
    let data = fixture();
    for (name, extra) in [
        ("popularity", vec!["--shrinkage", "2"]),
        ("baseline", vec!["--algo", "als"]),
        (
            "item-knn",
            vec!["--neighbours", "5", "--similarity", "cosine"],
        ),
    ] {
        let d = tmp().join(format!("cf-{name}")).display().to_string();
        let mut args = vec![
            "train", "--model", name, "--data", &data, "--out", &d, "--json",
        ];
        args.extend(&extra);
        let v = json_ok(&recsys(&args));
        assert_eq!(v["epochs"], 1, "{name}: fitted in one pass");
        let rmse = v["metrics"]["rmse"].as_f64().unwrap();
        assert!(rmse.is_finite() && rmse < 2.0, "{name}: {rmse}");
        let e = json_ok(&recsys(&["eval", "--run", &d, "--json"]));
        assert!(
            (e["metrics"]["rmse"].as_f64().unwrap() - rmse).abs() < 1e-9,
            "{name}"
        );
        let r = json_ok(&recsys(&[
            "recommend",
            "--run",
            &d,
            "--user",
            "u2",
            "-k",
            "5",
            "--exclude-seen",
            "--json",
        ]));
        assert_eq!(r["recommendations"].as_array().unwrap().len(), 5, "{name}");
        let h = json_ok(&recsys(&[
            "eval",
            "--run",
            &d,
            "--protocol",
            "hidden",
            "--hide",
            "5",
            "--json",
        ]));
        assert_eq!(h["metrics"]["n"], 5, "{name}");
        // Nothing to resume: a clear error.
        let bad = recsys(&["train", "--resume", &d, "--epochs", "2"]);
        assert_fails_with(&bad, &["closed form"]);
    }
    // Popularity ranks implicit feedback by counts.
    let d = tmp().join("cf-pop-implicit").display().to_string();
    json_ok(&recsys(&[
        "train",
        "--model",
        "popularity",
        "--task",
        "implicit",
        "--protocol",
        "full",
        "--data",
        &data,
        "--out",
        &d,
        "--json",
    ]));
    let bad = recsys(&[
        "train",
        "--model",
        "mf",
        "--data",
        &data,
        "--neighbours",
        "3",
    ]);
    assert_fails_with(&bad, &["--neighbours does not apply to model mf"]);
    let bad = recsys(&[
        "train", "--model", "baseline", "--algo", "als", "--task", "implicit", "--data", &data,
    ]);
    assert_fails_with(&bad, &["--algo als fits ratings"]);
    let bad = recsys(&[
        "train", "--model", "item-knn", "--task", "implicit", "--data", &data,
    ]);
    assert_fails_with(&bad, &["not item-knn"]);
}
