//! Training into run directories: `--out` never mixes two runs, and `--resume` honours or
//! refuses each flag instead of ignoring it.

use std::path::Path;

use crate::common::*;
use crate::crash::{ratings_csv, run, train_args};

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `train_args` with `extra` flags added, or replacing the value of a flag already there.
fn with(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = train_args(data, out);
    let mut k = 0;
    while k < extra.len() {
        let flag = extra[k];
        let value = extra.get(k + 1).filter(|v| !v.starts_with("--"));
        match (args.iter().position(|a| a == flag), value) {
            (Some(at), Some(v)) => args[at + 1] = v.to_string(),
            (None, Some(v)) => args.extend([flag.to_string(), v.to_string()]),
            (_, None) => args.push(flag.to_string()),
        }
        k += if value.is_some() { 2 } else { 1 };
    }
    args
}

#[test]
fn train_out_refuses_an_existing_run_unless_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ratings_csv(tmp.path());
    let dir = tmp.path().join("run");
    let d = dir.display().to_string();
    let first = json_ok(&run(&train_args(&data, &dir), &[]));
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();

    // A second run into the same folder is refused, and the first run is untouched.
    let second = with(&data, &dir, &["--epochs", "1", "--valid", "0"]);
    assert_fails_with(
        &recsys(&strs(&second)),
        &["is a run directory", "--resume", "--overwrite"],
    );
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), manifest);

    // --overwrite replaces it: the report and eval use the new weights only, and a file of the
    // user's in the folder stays.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let mut again = second.clone();
    again.push("--overwrite".into());
    let replaced = json_ok(&run(&again, &[]));
    assert_eq!(replaced["epochs"], 1);
    assert_ne!(replaced["metrics"], first["metrics"]);
    let e = json_ok(&recsys(&["eval", "--run", &d, "--json"]));
    assert_eq!(e["metrics"], replaced["metrics"]);
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    assert!(
        !dir.join("rmse.svg").exists(),
        "the old run's validation curve is left"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );

    // Another model into the same run directory.
    let mut other = with(
        &data,
        &dir,
        &["--model", "recnet", "--epochs", "1", "--overwrite"],
    );
    other.retain(|a| a != "--lr" && a != "0.1");
    // The MF settings file names keys recnet does not have.
    if let Some(at) = other.iter().position(|a| a == "--config") {
        other.drain(at..at + 2);
    }
    assert_eq!(json_ok(&run(&other, &[]))["model"], "recommender_net");

    // A folder that is not a run is refused even with --overwrite, and left as it was.
    let folder = tmp.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("x.txt"), "x").unwrap();
    for extra in [&[][..], &["--overwrite"][..]] {
        let args = with(&data, &folder, extra);
        assert_fails_with(
            &recsys(&strs(&args)),
            &["not empty", "not a run directory", "x.txt"],
        );
    }
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1);
    let file = tmp.path().join("ratings.csv");
    assert_fails_with(
        &recsys(&strs(&train_args(&data, &file))),
        &["a file, not a folder"],
    );
}

#[test]
fn resume_honours_or_refuses_each_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ratings_csv(tmp.path());
    let dir = tmp.path().join("run");
    let d = dir.display().to_string();
    json_ok(&run(
        &with(&data, &dir, &["--epochs", "1", "--embedding-dim", "8"]),
        &[],
    ));
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", &d, "--quiet", "--json"];
        args.extend_from_slice(extra);
        recsys(&args)
    };
    let other = tmp.path().join("other.csv").display().to_string();
    std::fs::copy(&data, &other).unwrap();
    let src = data.display().to_string();
    for (extra, needles) in [
        (
            &["--embedding-dim", "16"][..],
            &["--embedding-dim", "model.embedding_dim = 8"][..],
        ),
        (&["--lr", "0.5"], &["--lr", "train.optimizer.lr = 0.1"]),
        (&["--seed", "7"], &["--seed", "seed = 42"]),
        (
            &["--batch-size", "32"],
            &["--batch-size", "train.batch_size = 64"],
        ),
        (&["--data", &other], &["--data", &src]),
        (&["--valid", "0.2"], &["--valid", "\"0.1\""]),
        (&["--split", "user"], &["--split"]),
        (&["--header"], &["--header"]),
        (&["--out", "elsewhere"], &["--out elsewhere"]),
        (
            &["--model", "autorec"],
            &["cannot resume a `mf` run as `autorec`"],
        ),
        (&["--task", "implicit"], &["--task"]),
    ] {
        assert_fails_with(&resume(extra), needles);
    }
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1, "a refused resume trained");
    // Settings equal to the run's are accepted; the backend, --epochs and --patience are
    // honoured, and the new backend is recorded.
    let v = json_ok(&resume(&[
        "--embedding-dim",
        "8",
        "--data",
        &src,
        "--out",
        &d,
        "--backend",
        "ndarray",
        "--epochs",
        "1",
        "--patience",
        "5",
    ]));
    assert_eq!(
        (v["backend"].as_str(), v["epochs"].as_u64()),
        (Some("ndarray"), Some(2))
    );
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(
        config.contains("backend = \"ndarray\"") && config.contains("patience = 5"),
        "{config}"
    );
}

/// Loading a run's optimiser state used Burn's default device, which started wgpu (and Vulkan's
/// complaints about the session) on a run that asked for a CPU backend.
#[test]
fn a_flex_resume_does_not_start_vulkan() {
    let tmp = tempfile::tempdir().unwrap();
    let data = ratings_csv(tmp.path());
    let dir = tmp.path().join("run");
    let d = dir.display().to_string();
    json_ok(&run(&with(&data, &dir, &["--epochs", "1"]), &[]));
    for xdg in [None, Some("/nonexistent/runtime")] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_recsys"));
        cmd.args([
            "train",
            "--resume",
            &d,
            "--backend",
            "flex",
            "--epochs",
            "1",
            "--quiet",
        ]);
        match xdg {
            Some(v) => cmd.env("XDG_RUNTIME_DIR", v),
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
        };
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    }
}
