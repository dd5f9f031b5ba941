//! The defaults' targets on ML-100K (flex, seed 42), as a new user runs them: `recsys train`
//! with `--model`, `--data` and `--split` (and the task) only. Behind `RECSYS_DATA_DIR` and
//! `RECSYS_QUALITY_SLOW=1`; CI checks the same defaults through the library's quality tests.

mod common;

use common::{json_ok, recsys, slow_real_data};

/// `recsys train --data ML-100K ARGS --json`: the test metrics of its report.
fn train(data: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run").display().to_string();
    let data = data.display().to_string();
    let mut all = vec!["train", "--data", &data, "--out", &out, "--quiet", "--json"];
    all.extend_from_slice(args);
    let v = json_ok(&recsys(&all));
    eprintln!("recsys train {}: {}", args.join(" "), v["metrics"]);
    v["metrics"].clone()
}

fn metric(m: &serde_json::Value, key: &str) -> f64 {
    m[key].as_f64().unwrap_or_else(|| panic!("no {key} in {m}"))
}

#[test]
fn rating_defaults_on_u1() {
    let Some(data) = slow_real_data("rating_defaults_on_u1") else {
        return;
    };
    let mf = metric(&train(&data, &["--split", "u1", "--model", "mf"]), "rmse");
    assert!(mf <= 0.925, "mf: u1 RMSE {mf:.4} > 0.925");
    let autorec = metric(
        &train(&data, &["--split", "u1", "--model", "autorec"]),
        "rmse",
    );
    assert!(autorec <= 0.905, "autorec: u1 RMSE {autorec:.4} > 0.905");
}

#[test]
fn ranking_defaults() {
    let Some(data) = slow_real_data("ranking_defaults") else {
        return;
    };
    let neumf = train(
        &data,
        &[
            "--split",
            "leave-last-out",
            "--valid",
            "1",
            "--model",
            "neumf",
            "--task",
            "implicit",
        ],
    );
    let hr = metric(&neumf, "hr@10");
    assert!(hr >= 0.67, "neumf: leave-last-out HR@10 {hr:.4} < 0.67");
    let tt = train(
        &data,
        &[
            "--split",
            "per-user",
            "--valid",
            "0.05",
            "--test",
            "0.25",
            "--model",
            "two-tower",
        ],
    );
    let ndcg = metric(&tt, "ndcg@10");
    assert!(
        ndcg >= 0.44,
        "two-tower: full-ranking NDCG@10 {ndcg:.4} < 0.44"
    );
}
