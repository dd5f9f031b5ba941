//! `recsys cv` and `recsys tune` on tiny synthetic data; their real-data targets behind
//! `RECSYS_DATA_DIR` and `RECSYS_QUALITY_SLOW=1`.

mod common;

use std::path::{Path, PathBuf};

use common::{json_ok, recsys, slow_real_data, stderr};

/// A small rating file in the ML-100K `u.data` layout: 60 users, 40 items, ratings from a
/// rank-3 pattern plus rounding (about 1,200 ratings).
fn tiny_data(dir: &Path) -> String {
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as f64) / (1u64 << 31) as f64
    };
    let factors = |n: usize, next: &mut dyn FnMut() -> f64| -> Vec<[f64; 3]> {
        (0..n)
            .map(|_| [next() - 0.5, next() - 0.5, next() - 0.5])
            .collect()
    };
    let users = factors(60, &mut next);
    let items = factors(40, &mut next);
    let mut text = String::new();
    for (u, p) in users.iter().enumerate() {
        for (i, q) in items.iter().enumerate() {
            if next() < 0.5 {
                let dot: f64 = p.iter().zip(q).map(|(a, b)| a * b).sum();
                let r = (3.0 + 8.0 * dot).round().clamp(1.0, 5.0);
                text += &format!("{}\t{}\t{r}\t{}\n", u + 1, i + 1, u * 100 + i);
            }
        }
    }
    let path = dir.join("u.data");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn cv_on_three_seeded_folds() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = dir.path().join("cv");
    let o = recsys(&[
        "cv",
        "--data",
        &data,
        "--folds",
        "3",
        "--bias",
        "--epochs",
        "3",
        "--out",
        &s(&out),
        "--json",
    ]);
    let v = json_ok(&o);
    let folds = v["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3, "{v}");
    let rmse: Vec<f64> = folds
        .iter()
        .map(|f| f["metrics"]["rmse"].as_f64().unwrap())
        .collect();
    let mean = rmse.iter().sum::<f64>() / 3.0;
    let std = (rmse.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    assert!(
        (v["mean"]["rmse"].as_f64().unwrap() - mean).abs() < 1e-12,
        "{v}"
    );
    assert!(
        (v["std"]["rmse"].as_f64().unwrap() - std).abs() < 1e-12,
        "{v}"
    );
    // Other test folds give other figures.
    assert!(std > 0.0, "{v}");
    assert!(rmse.iter().all(|r| (0.3..2.0).contains(r)), "{rmse:?}");
    // Each fold is a normal run directory: eval replays its fold and gets its figure.
    for (i, f) in folds.iter().enumerate() {
        let run = out.join(format!("fold-{}", i + 1));
        assert_eq!(f["run_dir"].as_str().unwrap(), s(&run));
        let e = json_ok(&recsys(&["eval", "--run", &s(&run), "--json"]));
        assert!(
            (e["metrics"]["rmse"].as_f64().unwrap() - rmse[i]).abs() < 1e-9,
            "fold {}: {e} vs {}",
            i + 1,
            rmse[i]
        );
    }
    // The table names every fold, the mean and the standard deviation.
    let o = recsys(&[
        "cv",
        "--data",
        &data,
        "--folds",
        "2",
        "--epochs",
        "1",
        "--out",
        &s(&dir.path().join("cv2")),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    for word in ["fold-1", "fold-2", "mean", "std", "rmse"] {
        assert!(table.contains(word), "{table}");
    }
    let o = recsys(&[
        "cv",
        "--data",
        &data,
        "--folds",
        "1",
        "--out",
        &s(&dir.path().join("x")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("at least 2 folds"), "{}", stderr(&o));
}

fn tune(data: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "tune",
        "--data",
        data,
        "--bias",
        "--epochs",
        "4",
        "--param",
        "lr=log:1e-3:0.1",
        "--param",
        "embedding-dim=choice:4,8,16",
        "--startup-trials",
        "2",
        "--out",
    ];
    let out = s(out);
    args.push(&out);
    args.extend_from_slice(extra);
    args.push("--json");
    recsys(&args)
}

fn log_lines(study: &Path) -> Vec<String> {
    std::fs::read_to_string(study.join("study.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A 4-trial study, run as 2 trials and then resumed to 4: the first two trials are not run
/// again, the sampler's draws repeat with the seed, the best configuration is a reusable
/// `--config`, and only the refit of the best is scored on the test part.
#[test]
fn tune_study_resumes_and_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let study = dir.path().join("study");
    let first = json_ok(&tune(&data, &study, &["--trials", "2"]));
    assert_eq!(
        (first["trials"].as_u64(), first["new_trials"].as_u64()),
        (Some(2), Some(2))
    );
    let before = log_lines(&study);
    assert_eq!(before.len(), 2);
    // A trial interrupted before its line was logged left its run directory: it is run again.
    let orphan = study.join("trial-0002");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("metrics.jsonl"), "not a record\n").unwrap();
    let second = json_ok(&tune(&data, &study, &["--trials", "4"]));
    let m = std::fs::read_to_string(orphan.join("metrics.jsonl")).unwrap();
    assert!(m.starts_with("{\"epoch\":1"), "{m}");
    assert_eq!(
        (second["trials"].as_u64(), second["new_trials"].as_u64()),
        (Some(4), Some(2))
    );
    let after = log_lines(&study);
    assert_eq!(after.len(), 4);
    assert_eq!(after[..2], before[..], "finished trials were run again");
    for t in 0..4 {
        let trial = study.join(format!("trial-{t:04}"));
        let config = std::fs::read_to_string(trial.join("config.toml")).unwrap();
        // Trials train on the training part and score on validation: no refit.
        assert!(config.contains("refit = false"), "{config}");
        assert!(trial.join("metrics.jsonl").exists());
    }
    for line in &after {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let lr = r["params"]["lr"].as_f64().unwrap();
        assert!((1e-3..=0.1).contains(&lr), "{r}");
        assert!(
            [4, 8, 16].contains(&r["params"]["embedding_dim"].as_i64().unwrap()),
            "{r}"
        );
        assert!(r["value"].as_f64().is_some() && !r["curve"].as_array().unwrap().is_empty());
    }
    // The best trial is the lowest validation RMSE among the complete ones.
    let best = after
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["state"] == "complete")
        .min_by(|a, b| {
            a["value"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["value"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(second["best_trial"], best["trial"], "{second}");
    assert_eq!(second["part"], "test", "{second}");
    let test_rmse = second["metrics"]["rmse"].as_f64().unwrap();
    // The same study in one go, in another folder, draws the same trials.
    let again = dir.path().join("again");
    json_ok(&tune(&data, &again, &["--trials", "4"]));
    let params = |lines: &[String]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["params"].clone())
            .collect()
    };
    assert_eq!(params(&log_lines(&again)), params(&after));
    // best.toml is a --config for recsys train: it refits the best trial's settings and gets
    // the study's test figure.
    let best_toml = study.join("best.toml");
    let text = std::fs::read_to_string(&best_toml).unwrap();
    assert!(text.starts_with("# The best of 4 trials"), "{text}");
    assert!(text.contains("# Found by: recsys tune"), "{text}");
    let run = dir.path().join("from-best");
    let t = json_ok(&recsys(&[
        "train",
        "--model",
        "mf",
        "--data",
        &data,
        "--config",
        &s(&best_toml),
        "--out",
        &s(&run),
        "--json",
    ]));
    assert_eq!(t["refit"], true, "{t}");
    assert!(
        (t["metrics"]["rmse"].as_f64().unwrap() - test_rmse).abs() < 1e-9,
        "{t} vs {second}"
    );
    // Another space for the same folder is refused before anything runs.
    let o = recsys(&[
        "tune",
        "--data",
        &data,
        "--param",
        "lr=log:1e-4:0.1",
        "--trials",
        "5",
        "--out",
        &s(&study),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("study.toml"), "{}", stderr(&o));
    assert_eq!(log_lines(&study).len(), 4);
}

/// With a learning rate that barely moves the model among the choices, median pruning stops
/// such trials once others finished.
#[test]
fn tune_prunes_trials_behind_the_median() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let study = dir.path().join("study");
    let v = json_ok(&recsys(&[
        "tune",
        "--data",
        &data,
        "--bias",
        "--epochs",
        "6",
        "--patience",
        "6",
        "--param",
        "lr=choice:0.05,0.00001",
        "--sampler",
        "random",
        "--trials",
        "8",
        "--prune-startup",
        "1",
        "--prune-warmup",
        "2",
        "--out",
        &s(&study),
        "--json",
    ]));
    let records: Vec<serde_json::Value> = log_lines(&study)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pruned: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["state"] == "pruned").collect();
    assert!(!pruned.is_empty(), "{records:?}");
    assert_eq!(v["pruned"].as_u64().unwrap() as usize, pruned.len());
    for r in pruned {
        assert_eq!(r["params"]["lr"].as_f64(), Some(0.00001), "{r}");
        assert!(r["curve"].as_array().unwrap().len() < 6, "{r}");
    }
    assert_eq!(v["best_params"]["lr"].as_f64(), Some(0.05), "{v}");
}

#[test]
fn tune_bad_input_exits_2_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let space = dir.path().join("space.toml");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--param".into(), "nope=range:0:1".into()],
            "unknown search space key nope",
        ),
        (
            vec!["--param".into(), "lr=range:0.1:0.1".into()],
            "is empty",
        ),
        (
            vec!["--param".into(), "lr=range:0.2:0.1".into()],
            "is empty",
        ),
        (
            vec!["--param".into(), "lr=log:0:0.1".into()],
            "positive bounds",
        ),
        (
            vec!["--param".into(), "embedding_dim=choice:".into()],
            "the choice is empty",
        ),
        (
            vec![
                "--param".into(),
                "lr=log:1e-3:0.1".into(),
                "--metric".into(),
                "hr@10".into(),
            ],
            "a rating task reports",
        ),
        (
            vec![
                "--param".into(),
                "lr=log:1e-3:0.1".into(),
                "--lr".into(),
                "0.01".into(),
            ],
            "fixed to 0.01 by a command-line flag",
        ),
        (
            vec!["--param".into(), "embedding_dim=range:0.5:8.5".into()],
            "invalid configuration",
        ),
        (vec![], "no search space"),
        (vec!["--space".into(), s(&space)], "space.toml"),
    ];
    std::fs::write(&space, "lr = { log = [0.0, 0.1] }\n").unwrap();
    for (extra, needle) in cases {
        let out = dir.path().join("study");
        let mut args: Vec<String> = ["tune", "--data", &data, "--trials", "2", "--out", &s(&out)]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = recsys(&refs);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(needle),
            "{extra:?}: stderr lacks {needle:?}: {err}"
        );
        assert!(!out.exists(), "{extra:?} started a study");
    }
}

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs")
}

/// README's five-fold figure of biased MF (mean RMSE 0.9067 over u1..u5), by `recsys cv`.
#[test]
fn cv_reproduces_the_five_fold_mf_mean() {
    let Some(data) = slow_real_data("cv_reproduces_the_five_fold_mf_mean") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let v = json_ok(&recsys(&[
        "cv",
        "--data",
        &s(&data),
        "--split",
        "u1",
        "--valid",
        "0.05",
        "--model",
        "mf",
        "--bias",
        "--embedding-dim",
        "64",
        "--l2",
        "0.15",
        "--lr",
        "0.003",
        "--batch-size",
        "512",
        "--epochs",
        "40",
        "--patience",
        "40",
        "--refit",
        "--config",
        &s(&configs().join("mf-ml100k.toml")),
        "--out",
        &s(&dir.path().join("cv")),
        "--json",
    ]));
    let mean = v["mean"]["rmse"].as_f64().unwrap();
    eprintln!("recsys cv, MF u1..u5: {v}");
    assert!(
        (mean - 0.9067).abs() < 0.0005,
        "mean RMSE {mean:.4}, README 0.9067"
    );
}

/// `recsys tune` with 60 trials on u1.base (5% validation) from MF's defaults, README's command:
/// the refit of the best trial must score u1.test RMSE <= 0.918 (README: 0.9167,
/// examples/configs/mf-u1-tuned.toml).
#[test]
fn tune_finds_mf_settings_on_u1() {
    let Some(data) = slow_real_data("tune_finds_mf_settings_on_u1") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let v = json_ok(&recsys(&[
        "tune",
        "--data",
        &s(&data),
        "--split",
        "u1",
        "--valid",
        "0.05",
        "--model",
        "mf",
        "--space",
        &s(&configs().join("mf-tune-space.toml")),
        "--trials",
        "60",
        "--out",
        &s(&dir.path().join("study")),
        "--json",
    ]));
    let rmse = v["metrics"]["rmse"].as_f64().unwrap();
    eprintln!("recsys tune, MF u1: {v}");
    assert!(
        rmse <= 0.918,
        "refit u1 test RMSE {rmse:.4} > 0.918 (README: 0.9167)"
    );
}
