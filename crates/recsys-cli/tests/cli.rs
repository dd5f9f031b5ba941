//! The command-line contract: exit codes, messages naming file and line, JSON on stdout.

use std::path::Path;

mod common;
mod crash;
mod runs;

use common::*;

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

#[test]
fn stats_json_on_synthetic_default() {
    let o = recsys(&["data", "stats", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["users"], 943);
    assert_eq!(v["items"], 1682);
    assert_eq!(v["ratings"], 100_000);
    assert!(v["top_items"][0]["title"].is_string());
}

#[test]
fn stats_table_and_real_ml100k() {
    let Some(dir) = std::env::var_os("RECSYS_DATA_DIR").map(|d| Path::new(&d).join("ml-100k"))
    else {
        eprintln!("SKIP stats_table_and_real_ml100k: RECSYS_DATA_DIR is not set");
        return;
    };
    let d = dir.display().to_string();
    let o = recsys(&["data", "stats", "--data", &d, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (
            v["users"].as_u64(),
            v["items"].as_u64(),
            v["ratings"].as_u64()
        ),
        (Some(943), Some(1682), Some(100_000))
    );
    assert_eq!(v["top_items"][0]["title"], "Star Wars (1977)");
    assert_eq!(v["top_items"][0]["count"], 583);
    let o = recsys(&["data", "stats", "--data", &d]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Star Wars (1977)") && out.contains("943"),
        "{out}"
    );
}

#[test]
fn split_filter_synth_write_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let o = recsys(&[
        "data", "synth", "--preset", "100k", "--seed", "3", "--out", &d, "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["ratings"], 100_000);
    let out = dir.path().join("split").display().to_string();
    let o = recsys(&[
        "data",
        "split",
        "--data",
        &d,
        "--method",
        "stratified",
        "--valid",
        "0.1",
        "--test",
        "0.2",
        "--out",
        &out,
        "--test-negatives",
        "99",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["train"].as_u64().unwrap() + v["valid"].as_u64().unwrap() + v["test"].as_u64().unwrap(),
        100_000
    );
    // The written parts load back as generic CSV files with a header.
    let train = dir.path().join("split/train.csv").display().to_string();
    let o = recsys(&[
        "data",
        "stats",
        "--data",
        &train,
        "--header",
        "--columns",
        "0,1,2,3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["ratings"], v["train"]);
    let filtered = dir.path().join("f.csv").display().to_string();
    let o = recsys(&[
        "data",
        "filter",
        "--data",
        &d,
        "--min-item-ratings",
        "20",
        "--out",
        &filtered,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(json(&o)["after"]["items"].as_u64().unwrap() < 1682);
}

#[test]
fn bad_input_fails_cleanly_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // Missing file.
    assert_fails_with(
        &recsys(&["data", "stats", "--data", "/no/such/u.data"]),
        &["/no/such/u.data"],
    );
    // Unknown format.
    let f = write(p, "r.xyz", b"1 2 3\n");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["r.xyz", "unknown format"],
    );
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f, "--format", "ml-99"]),
        &["unknown format \"ml-99\""],
    );
    // Wrong column count, non-numeric field, rating outside the scale.
    let f = write(p, "u.data", b"1\t2\t3\t4\n1\t3\t4\n");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["u.data:2:", "expected 4 fields"],
    );
    let f = write(p, "u.data", b"1\t2\t3\t4\n1\tx\t4\t5\n");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["u.data:2:", "item id"],
    );
    let f = write(p, "u.data", b"1\t2\t9\t4\n");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["u.data:1:", "outside the declared scale"],
    );
    // Empty, header only.
    let f = write(p, "u.data", b"");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["u.data", "empty"],
    );
    let f = write(p, "ratings.csv", b"userId,movieId,rating,timestamp\n");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["ratings.csv", "header only"],
    );
    // Invalid UTF-8 in a UTF-8 file.
    let release = tempfile::tempdir().unwrap();
    write(
        release.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,1,4,1\n",
    );
    write(
        release.path(),
        "movies.csv",
        b"movieId,title,genres\n1,T\xff,Drama\n",
    );
    let d = release.path().display().to_string();
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &d]),
        &["movies.csv:2:", "UTF-8"],
    );
    // Duplicate pairs.
    let f = write(p, "u.data", b"1\t2\t3\t4\n1\t2\t4\t5\n");
    assert_fails_with(
        &recsys(&["data", "stats", "--data", &f]),
        &["u.data:2:", "again"],
    );
    assert!(
        recsys(&["data", "stats", "--data", &f, "--duplicates", "last"])
            .status
            .success()
    );
    // A fold naming an id absent from the data.
    let fold = tempfile::tempdir().unwrap();
    write(fold.path(), "u.data", b"1\t1\t3\t1\n2\t1\t4\t2\n");
    write(fold.path(), "u1.base", b"1\t1\t3\t1\n");
    write(fold.path(), "u1.test", b"7\t1\t4\t2\n");
    let d = fold.path().display().to_string();
    assert_fails_with(
        &recsys(&["data", "split", "--data", &d, "--method", "u1"]),
        &["\"7\"", "u1.test:1"],
    );
    // Bad arguments.
    assert_fails_with(
        &recsys(&["data", "split", "--method", "sideways"]),
        &["invalid value 'sideways'", "--method"],
    );
    assert_fails_with(
        &recsys(&["data", "split", "--valid", "0.7", "--test", "0.6"]),
        &["larger than"],
    );
    assert_fails_with(&recsys(&["data", "fetch", "ml-30m"]), &["ml-30m"]);
}

#[test]
fn train_profile_and_readback_flags() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.display().to_string();
    let o = recsys(&[
        "train",
        "--model",
        "mf",
        "--epochs",
        "2",
        "--profile",
        "--readback-steps",
        "3",
        "--out",
        &r,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("profile: batch"), "{}", stderr(&o));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("loss_readback_steps = 3"), "{config}");
    assert!(config.contains("profile = true"), "{config}");
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for phase in ["batch", "forward", "backward", "optimizer", "readback"] {
            assert!(v["profile"][phase].as_f64().unwrap() > 0.0, "{line}");
        }
    }
}

#[test]
fn train_eval_predict_contract() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run").display().to_string();
    let o = recsys(&[
        "train", "--model", "mf", "--bias", "--epochs", "2", "--out", &run, "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    for key in [
        "run_dir", "model", "backend", "metrics", "epochs", "seconds",
    ] {
        assert!(v.get(key).is_some(), "train JSON lacks {key}: {v}");
    }
    assert_eq!(v["model"], "mf");
    assert_eq!(v["backend"], "flex");
    let rmse = v["metrics"]["rmse"].as_f64().unwrap();
    assert!(rmse > 0.0 && rmse < 1.5, "{v}");
    for f in [
        "config.toml",
        "idmap.json",
        "metrics.jsonl",
        "manifest.json",
    ] {
        assert!(dir.path().join("run").join(f).exists(), "run lacks {f}");
    }
    // eval rebuilds the same split from the recipe and gets the same test metrics.
    let o = recsys(&["eval", "--run", &run, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = json(&o);
    assert!(
        (e["metrics"]["rmse"].as_f64().unwrap() - rmse).abs() < 1e-9,
        "{e} vs {v}"
    );
    let o = recsys(&[
        "predict", "--run", &run, "--user", "1", "--item", "1", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = json(&o)["prediction"].as_f64().unwrap();
    assert!((0.5..=5.0).contains(&p), "{p}");
    // A raw id the run does not know.
    assert_fails_with(
        &recsys(&["predict", "--run", &run, "--user", "999999", "--item", "1"]),
        &["\"999999\""],
    );
    // A run directory that is not one.
    assert_fails_with(
        &recsys(&["eval", "--run", &dir.path().display().to_string()]),
        &["config.toml"],
    );
}

#[test]
fn train_rejects_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    assert_fails_with(
        &recsys(&["train", "--model", "transformer", "--epochs", "1"]),
        &["unknown model \"transformer\""],
    );
    assert_fails_with(
        &recsys(&["train", "--lr=-0.1", "--epochs", "1"]),
        &["learning rate", "-0.1"],
    );
    assert_fails_with(
        &recsys(&["train", "--embedding-dim", "0", "--epochs", "1"]),
        &["dim"],
    );
    assert_fails_with(
        &recsys(&["train", "--optimizer", "lbfgs", "--epochs", "1"]),
        &["invalid value 'lbfgs'", "--optimizer"],
    );
    let cfg = write(dir.path(), "c.toml", b"[train]\nepochz = 3\n");
    assert_fails_with(
        &recsys(&["train", "--config", &cfg, "--epochs", "1"]),
        &["c.toml", "train.epochz"],
    );
    let cfg = write(dir.path(), "d.toml", b"[train]\nepochs = \"many\"\n");
    assert_fails_with(
        &recsys(&["train", "--config", &cfg]),
        &["invalid configuration"],
    );
    // A good config file is used, and flags override it.
    let cfg = write(
        dir.path(),
        "e.toml",
        b"[model]\ndim = 8\n[train]\nepochs = 1\nbatch_size = 1024\n",
    );
    let run = dir.path().join("r").display().to_string();
    let o = recsys(&[
        "train",
        "--config",
        &cfg,
        "--batch-size",
        "2048",
        "--out",
        &run,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(dir.path().join("r/config.toml")).unwrap();
    assert!(
        written.contains("dim = 8") && written.contains("batch_size = 2048"),
        "{written}"
    );
    // The config files README's commands use stay valid.
    for (name, model) in [("cosine.toml", "autorec"), ("mf-ml100k.toml", "mf")] {
        let bias = if model == "mf" { "--bias" } else { "--quiet" };
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/configs")
            .join(name);
        let run = dir.path().join(name).display().to_string();
        let o = recsys(&[
            "train",
            "--model",
            model,
            bias,
            "--config",
            &shipped.display().to_string(),
            "--epochs",
            "1",
            "--out",
            &run,
            "--json",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let written = std::fs::read_to_string(dir.path().join(name).join("config.toml")).unwrap();
        assert!(written.contains("name = \"cosine\""), "{written}");
    }
}

#[test]
fn regressor_and_resume_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    // An MF run on synthetic 100k data (not refit, so that it can be resumed); a regressor on
    // its frozen embeddings.
    let o = recsys(&[
        "train",
        "--model",
        "mf",
        "--refit",
        "false",
        "--embedding-dim",
        "4",
        "--epochs",
        "1",
        "--out",
        &p("mf"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = recsys(&[
        "train",
        "--model",
        "regressor",
        "--embeddings",
        &p("mf"),
        "--epochs",
        "1",
        "--out",
        &p("reg"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["model"], "regressor");
    // The same MF run against other data: the id maps differ.
    let o = recsys(&[
        "train",
        "--model",
        "regressor",
        "--embeddings",
        &p("mf"),
        "--data",
        "synthetic:1m",
        "--epochs",
        "1",
        "--out",
        &p("reg2"),
    ]);
    assert_fails_with(&o, &["id map", "mf"]);
    assert_fails_with(
        &recsys(&["train", "--model", "regressor", "--epochs", "1"]),
        &["--embeddings"],
    );
    assert_fails_with(
        &recsys(&[
            "train",
            "--model",
            "regressor",
            "--embeddings",
            &p("reg"),
            "--epochs",
            "1",
        ]),
        &["mf"],
    );
    // Resume: two more epochs append to the log; another family is refused.
    let o = recsys(&["train", "--resume", &p("mf"), "--epochs", "2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["epochs"], 3);
    let log = std::fs::read_to_string(dir.path().join("mf/metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    assert_fails_with(
        &recsys(&[
            "train",
            "--resume",
            &p("mf"),
            "--model",
            "autorec",
            "--epochs",
            "1",
        ]),
        &["autorec"],
    );
    assert_fails_with(
        &recsys(&["train", "--resume", &p("nowhere"), "--epochs", "1"]),
        &["nowhere"],
    );
    // --refit: the selection run in <run>/selection, the run itself refit for its best epoch
    // count on the training and validation parts; it cannot be resumed, and needs validation.
    let o = recsys(&[
        "train",
        "--bias",
        "--epochs",
        "3",
        "--refit",
        "--out",
        &p("refit"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["refit"], true);
    let best = j["best_epoch"].as_u64().unwrap() as usize;
    assert_eq!(j["epochs"].as_u64().unwrap() as usize, best);
    let lines = |f: &str| {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        text.lines().count()
    };
    assert_eq!(lines("refit/selection/metrics.jsonl"), 3);
    assert_eq!(lines("refit/metrics.jsonl"), best);
    let config = std::fs::read_to_string(dir.path().join("refit/config.toml")).unwrap();
    assert!(config.contains("refit = true"), "{config}");
    assert_fails_with(
        &recsys(&["train", "--resume", &p("refit"), "--epochs", "1"]),
        &["refit", "cannot be resumed"],
    );
    assert_fails_with(
        &recsys(&[
            "train",
            "--refit",
            "--valid",
            "0",
            "--epochs",
            "1",
            "--out",
            &p("refit0"),
        ]),
        &["refit needs a validation part"],
    );
}

#[test]
fn fetch_offline_and_bad_zip_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache").display().to_string();
    // A zip that is not the release: rejected by its checksum, nothing left in the cache.
    let zip = write(dir.path(), "ml-100k.zip", b"PK\x05\x06not really a zip");
    assert_fails_with(
        &recsys(&["data", "fetch", "ml-100k", "--zip", &zip, "--cache", &cache]),
        &["ml-100k"],
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A run on a generic delimited file (`--delimiter`, `--header`, `--columns`, `--scale`,
/// `--duplicates`) records how the file was read: `eval`, `recommend` and `--resume` read it
/// the same way without the flags.
#[test]
fn a_generic_file_run_replays_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    // Columns: timestamp;rating;item;user, a header, one pair rated twice (the last one kept).
    let mut text = String::from("ts;stars;movie;person\n");
    let mut state = 11u64;
    for u in 0..40u64 {
        for k in 0..15u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let item = (u * 7 + k * 3) % 50;
            let rating = 1 + (state >> 33) % 5;
            text += &format!("{};{rating};m{item};p{u}\n", 1000 + u * 100 + k);
        }
    }
    text += "99999;5;m0;p0\n";
    let data = write(dir.path(), "ratings.txt", text.as_bytes());
    let run = dir.path().join("run").display().to_string();
    let layout = [
        "--delimiter",
        ";",
        "--header",
        "--columns",
        "3,2,1,0",
        "--scale",
        "1,5",
        "--duplicates",
        "last",
    ];
    let mut args = vec![
        "train", "--data", &data, "--model", "mf", "--epochs", "2", "--refit", "false", "--out",
        &run, "--json",
    ];
    args.extend_from_slice(&layout);
    let trained = json_ok(&recsys(&args));
    let config = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    assert!(
        config.contains("delimiter = \";\"") && config.contains("duplicates"),
        "{config}"
    );
    let o = recsys(&["eval", "--run", &run, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["metrics"], trained["metrics"]);
    let o = recsys(&[
        "recommend",
        "--run",
        &run,
        "--user",
        "p3",
        "-k",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = recsys(&["train", "--resume", &run, "--epochs", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["epochs"], 3);
}
