//! Crash consistency of run directories: `recsys train` killed at each of its file operations
//! (`RECSYS_FAULT_AT=N` makes it kill itself with SIGKILL just before its Nth write, flush,
//! rename or removal), then `recsys eval` and `recsys train --resume` on what it left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;

/// A small ratings file in the MovieLens CSV layout: 40 users, 30 items, 12 ratings each.
pub fn ratings_csv(dir: &Path) -> PathBuf {
    let mut text = String::from("userId,movieId,rating,timestamp\n");
    let mut state: u64 = 7;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    for u in 1..=40u64 {
        let mut items: Vec<u64> = (1..=30).collect();
        for k in 0..12 {
            let j = k + next(30 - k as u64) as usize;
            items.swap(k, j);
            let rating = 1 + next(5);
            text += &format!("{u},{},{rating},{}\n", items[k], 1000 + 100 * u + items[k]);
        }
    }
    let path = dir.join("ratings.csv");
    std::fs::write(&path, text).unwrap();
    std::fs::write(dir.join(CONFIG), CONFIG_TEXT).unwrap();
    path
}

/// MF settings under which the validation RMSE of [`ratings_csv`]'s data improves, then worsens
/// (a plain dot product at a constant learning rate), without refit so that a run resumes.
const CONFIG: &str = "mf.toml";
const CONFIG_TEXT: &str = "\
[model]
bias = false
embedding_dim = 32
l2 = 0.0
l2_frequency_exponent = 0.0
init = { kind = \"normal\", std = 0.05 }

[train]
refit = false
patience = 3

[train.optimizer.schedule]
name = \"constant\"
";

/// Three epochs of MF on flex, validating (the best epoch moves, then stays), with [`CONFIG`].
pub fn train_args(data: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--data",
        &data.display().to_string(),
        "--backend",
        "flex",
        "--config",
        &data.with_file_name(CONFIG).display().to_string(),
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--lr",
        "0.1",
        "--quiet",
        "--json",
        "--out",
        &out.display().to_string(),
    ]
    .map(str::to_string)
    .to_vec()
}

pub fn run(args: &[String], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recsys"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs recsys")
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The lines of a `metrics.jsonl` text without the timing fields (which differ between runs).
fn records(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("samples_per_s");
            v
        })
        .collect()
}

fn rmse_of(record: &Value) -> f64 {
    record["valid"]["rmse"].as_f64().unwrap()
}

/// What an uninterrupted run wrote and printed.
struct Reference {
    records: Vec<Value>,
    json: Value,
}

/// Files under `dir` (relative, recursively) whose name is a temporary one.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in read.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            out.extend(temporaries(&e.path()));
        } else if name.starts_with('.') && name.contains(".tmp-") {
            out.push(e.path().display().to_string());
        }
    }
    out
}

/// Checks that what a killed run left is one of the reference's committed states: the manifest's
/// epoch, the metrics lines it commits, the best and last weights (scored by `recsys eval` on
/// the validation part, they give the validation RMSE recorded for their epoch). Returns the
/// committed epoch (0 without a manifest).
fn check_committed_state(dir: &Path, reference: &Reference, what: &str) -> usize {
    let d = dir.display().to_string();
    let manifest_path = dir.join("manifest.json");
    if !manifest_path.is_file() {
        // Nothing committed: readers refuse the run cleanly.
        let o = recsys(&["eval", "--run", &d, "--part", "valid"]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{what}: {}", stderr(&o));
        return 0;
    }
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap())
        .unwrap_or_else(|e| panic!("{what}: manifest.json is not JSON: {e}"));
    let epoch = m["epoch"].as_u64().unwrap() as usize;
    assert!((1..=3).contains(&epoch), "{what}: epoch {epoch}");
    assert_eq!(m["metrics"]["lines"].as_u64(), Some(epoch as u64), "{what}");
    // The committed lines are the reference's first `epoch` lines; lines past them are ignored.
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let committed = &text.as_bytes()[..m["metrics"]["bytes"].as_u64().unwrap() as usize];
    let got = records(std::str::from_utf8(committed).unwrap());
    assert_eq!(got, reference.records[..epoch], "{what}: committed metrics");
    // The best epoch is the reference's best among the committed epochs.
    let best_epoch = m["best"]["epoch"].as_u64().unwrap() as usize;
    let want_best = reference.records[..epoch]
        .iter()
        .rposition(|r| r["best"] == true)
        .unwrap()
        + 1;
    assert_eq!(best_epoch, want_best, "{what}: best epoch");
    for file in [&m["model"], &m["optimizer"], &m["best"]["model"]] {
        let path = dir.join(file["path"].as_str().unwrap());
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()))
            .len();
        assert_eq!(
            Some(len),
            file["bytes"].as_u64(),
            "{what}: {}",
            path.display()
        );
    }
    // The weights are those of their epochs: eval reproduces the recorded validation RMSE.
    for (checkpoint, e) in [("best", best_epoch), ("last", epoch)] {
        let o = recsys(&[
            "eval",
            "--run",
            &d,
            "--part",
            "valid",
            "--checkpoint",
            checkpoint,
            "--json",
        ]);
        let v = json_ok(&o);
        assert_eq!(
            v["metrics"]["rmse"].as_f64().unwrap(),
            rmse_of(&reference.records[e - 1]),
            "{what}: {checkpoint} weights are not epoch {e}'s"
        );
    }
    epoch
}

/// Finishes a killed run (`--resume`, or a new `train` when not even its config was written)
/// and checks that it ends exactly as the uninterrupted reference, leaving no stray file.
fn check_recovery(dir: &Path, data: &Path, reference: &Reference, what: &str) {
    let args = if dir.join("config.toml").is_file() {
        s(&[
            "train",
            "--resume",
            &dir.display().to_string(),
            "--quiet",
            "--json",
        ])
    } else {
        train_args(data, dir)
    };
    let o = run(&args, &[]);
    let v = json_ok(&o);
    assert_eq!(
        v["metrics"], reference.json["metrics"],
        "{what}: final test metrics"
    );
    assert_eq!(v["best_epoch"], reference.json["best_epoch"], "{what}");
    assert_eq!(v["epochs"], 3, "{what}");
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(
        records(&text),
        reference.records,
        "{what}: metrics after resuming"
    );
    assert_eq!(
        temporaries(dir),
        Vec::<String>::new(),
        "{what}: temporary files"
    );
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let named: Vec<&str> = [&m["model"], &m["optimizer"], &m["best"]["model"]]
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for e in std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .flatten()
    {
        let rel = format!("checkpoints/{}", e.file_name().to_string_lossy());
        assert!(named.contains(&rel.as_str()), "{what}: {rel} is not named");
    }
}

/// Kills `recsys train` at every file operation of a short run (each write, flush, rename and
/// removal, counted by `RECSYS_FAULT_TRACE`), then checks that `eval` sees one committed state
/// of the uninterrupted run and that `--resume` ends with exactly its metrics.
#[test]
fn a_run_killed_at_any_file_operation_stays_consistent_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ratings_csv(tmp.path());
    let ref_dir = tmp.path().join("reference");
    let o = run(
        &train_args(&data, &ref_dir),
        &[("RECSYS_FAULT_TRACE", "1".into())],
    );
    let json = json_ok(&o);
    let points = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("fault point "))
        .count();
    let reference = Reference {
        records: records(&std::fs::read_to_string(ref_dir.join("metrics.jsonl")).unwrap()),
        json,
    };
    // The fixture exercises a best epoch that moves (1, then 2) and one that stays (3).
    let best: Vec<bool> = reference
        .records
        .iter()
        .map(|r| r["best"] == true)
        .collect();
    assert_eq!(best, [true, true, false], "{:?}", reference.records);
    assert!(points > 50, "only {points} fault points");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let per_epoch: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (data, reference, root) = (&data, &reference, tmp.path());
                scope.spawn(move || {
                    let mut committed = Vec::new();
                    for k in (1..=points).filter(|k| k % threads == t) {
                        let what = format!("killed at fault point {k}");
                        let dir = root.join(format!("k{k}"));
                        let o = run(
                            &train_args(data, &dir),
                            &[("RECSYS_FAULT_AT", k.to_string())],
                        );
                        assert!(!o.status.success(), "{what}: the run was not killed");
                        assert_eq!(o.status.code(), None, "{what}: {}", stderr(&o));
                        let epoch = check_committed_state(&dir, reference, &what);
                        // With all 3 epochs committed the run is complete (a --resume would
                        // train more); before that it is finished by --resume.
                        if epoch < 3 {
                            check_recovery(&dir, data, reference, &what);
                        }
                        committed.push(epoch);
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    committed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let committed: Vec<usize> = per_epoch.into_iter().flatten().collect();
    let states = |e: usize| committed.iter().filter(|&&c| c == e).count();
    eprintln!(
        "crash consistency: {points} kill points, {} consistent states (committed epoch 0: {}, \
         1: {}, 2: {}, 3: {}), {} unfinished runs resumed to the uninterrupted run's metrics",
        committed.len(),
        states(0),
        states(1),
        states(2),
        states(3),
        committed.len() - states(3)
    );
    assert_eq!(committed.len(), points);
    assert!((0..=3).all(|e| states(e) > 0), "{committed:?}");
}

/// A run directory in the layout before manifests (`model-best.bpk`, `model-last.bpk`,
/// `optimizer-last.bpk` at the top, every line of `metrics.jsonl` counting) still loads and
/// resumes, and resuming moves it to the manifest layout.
#[test]
fn runs_without_a_manifest_still_load_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ratings_csv(tmp.path());
    let dir = tmp.path().join("old");
    let o = run(&train_args(&data, &dir), &[]);
    let trained = json_ok(&o);
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let file = |v: &Value| dir.join(v["path"].as_str().unwrap());
    std::fs::copy(file(&m["best"]["model"]), dir.join("model-best.bpk")).unwrap();
    std::fs::copy(file(&m["model"]), dir.join("model-last.bpk")).unwrap();
    std::fs::copy(file(&m["optimizer"]), dir.join("optimizer-last.bpk")).unwrap();
    std::fs::remove_dir_all(dir.join("checkpoints")).unwrap();
    std::fs::remove_file(dir.join("manifest.json")).unwrap();

    let d = dir.display().to_string();
    let o = recsys(&["eval", "--run", &d, "--json"]);
    assert_eq!(json_ok(&o)["metrics"], trained["metrics"]);
    let o = recsys(&[
        "train", "--resume", &d, "--epochs", "1", "--quiet", "--json",
    ]);
    assert_eq!(json_ok(&o)["epochs"], 4);
    assert!(dir.join("manifest.json").is_file());
    for old in ["model-best.bpk", "model-last.bpk", "optimizer-last.bpk"] {
        assert!(!dir.join(old).exists(), "{old} is left after the move");
    }
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 4);
}
