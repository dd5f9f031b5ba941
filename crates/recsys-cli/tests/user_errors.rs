//! Mistakes a careful user makes, and what the binary must say: a clean message naming the
//! flag, file or key, exit code 1, never a panic, an abort or a score that is not one.

use std::path::Path;

mod common;

use common::*;

/// A small plain CSV (no header): 8 users x 6 items, ratings 1..5.
fn plain_csv(dir: &Path) -> String {
    let mut text = String::new();
    for u in 1..=8 {
        for i in 1..=6 {
            if (u + i) % 3 != 0 {
                text += &format!("{u},{i},{}\n", 1 + (u * 7 + i * 3) % 5);
            }
        }
    }
    let p = dir.join("ratings.txt.csv");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn train(dir: &Path, data: &str, extra: &[&str]) -> (String, std::process::Output) {
    let run = dir.join("run").display().to_string();
    let mut args = vec![
        "train", "--model", "mf", "--data", data, "--epochs", "1", "--out", &run, "--quiet",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = recsys(&args);
    (run, o)
}

#[test]
fn predict_with_an_id_map_of_more_items_than_the_weights_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain_csv(dir.path());
    let (run, o) = train(dir.path(), &data, &["--scale", "1,5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let path = Path::new(&run).join("idmap.json");
    let mut ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    ids["items"]["raw"]
        .as_array_mut()
        .unwrap()
        .push("999".into());
    std::fs::write(&path, ids.to_string()).unwrap();
    let o = recsys(&["predict", "--run", &run, "--user", "1", "--item", "999"]);
    assert_fails_with(&o, &["idmap.json", "7 items", "weights hold 6"]);
}

#[test]
fn an_empty_evaluation_part_has_no_score() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain_csv(dir.path());
    let (run, o) = train(
        dir.path(),
        &data,
        &["--scale", "1,5", "--valid", "0", "--test", "0"],
    );
    let v = json_ok(&o);
    assert_eq!(v["metrics"]["n"], 0, "{v}");
    assert!(v["metrics"]["rmse"].is_null(), "{v}");
    assert!(
        v["metrics"]["note"]
            .as_str()
            .unwrap()
            .contains("no ratings"),
        "{v}"
    );
    let o = recsys(&["eval", "--run", &run, "--part", "valid"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("valid: no ratings"), "{out}");
    assert!(!out.contains("rmse 0.0000"), "{out}");
}

#[test]
fn a_huge_embedding_dim_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain_csv(dir.path());
    let (_, o) = train(
        dir.path(),
        &data,
        &["--scale", "1,5", "--embedding-dim", "1000000000000"],
    );
    assert_fails_with(&o, &["--embedding-dim 1000000000000", "TB", "available"]);
    assert!(!dir.path().join("run").join("model-best.bpk").exists());
}

#[test]
fn header_scale_and_split_mistakes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain_csv(dir.path());
    // A header without --header.
    let text = std::fs::read_to_string(&data).unwrap();
    let headed = dir.path().join("headed.csv");
    std::fs::write(&headed, format!("user,item,rating\n{text}")).unwrap();
    let o = recsys(&["data", "stats", "--data", &headed.display().to_string()]);
    assert_fails_with(&o, &["headed.csv:1", "pass --header"]);
    // No --scale: one note naming the inferred scale, recorded in the run.
    let (run, o) = train(dir.path(), &data, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("inferred 1..5").count(), 1, "{err}");
    let config = std::fs::read_to_string(Path::new(&run).join("config.toml")).unwrap();
    let recorded = config.split("inferred_scale").nth(1).unwrap_or("");
    assert!(
        recorded.contains("1.0") && recorded.contains("5.0"),
        "{config}"
    );
    // A scale that is not one.
    let o = recsys(&["data", "stats", "--data", &data, "--scale", "NaN,5"]);
    assert_fails_with(&o, &["--scale NaN,5", "finite"]);
    // ML-100K folds of a folder that has none.
    let o = recsys(&[
        "train",
        "--data",
        &data,
        "--split",
        "u1",
        "--epochs",
        "1",
        "--out",
        &dir.path().join("u1").display().to_string(),
    ]);
    assert_fails_with(&o, &["--split u1", "u1.base"]);
}

#[test]
fn config_values_of_the_wrong_type_name_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain_csv(dir.path());
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[train]\nepochs = \"three\"\n").unwrap();
    let (_, o) = train(
        dir.path(),
        &data,
        &["--config", &config.display().to_string()],
    );
    assert_fails_with(&o, &["bad.toml", "train.epochs", "a number", "a string"]);
}

#[test]
fn messages_do_not_repeat_and_negative_values_reach_their_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain_csv(dir.path());
    let (run, o) = train(dir.path(), &data, &["--scale", "1,5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(Path::new(&run).join("checkpoints")).unwrap();
    let o = recsys(&["predict", "--run", &run, "--user", "1", "--item", "1"]);
    assert_fails_with(&o, &["model-e", "named by the run's manifest.json"]);
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "{}",
        stderr(&o)
    );
    // `--lr -0.01` is read as a value, and checked as one.
    let other = tempfile::tempdir().unwrap();
    let (_, o) = train(other.path(), &data, &["--lr", "-0.01"]);
    assert_fails_with(&o, &["learning rate", "-0.01"]);
}

#[test]
fn a_missing_item_file_is_noted_once() {
    let dir = tempfile::tempdir().unwrap();
    let ml = dir.path().join("ml");
    std::fs::create_dir(&ml).unwrap();
    let mut text = String::new();
    for u in 1..=5 {
        for i in 1..=4 {
            text += &format!("{u}\t{i}\t{}\t88000{u}{i}\n", 1 + (u + i) % 5);
        }
    }
    std::fs::write(ml.join("u.data"), text).unwrap();
    let o = recsys(&[
        "data",
        "stats",
        "--data",
        &ml.display().to_string(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("u.item").count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("titles"), "{}", stderr(&o));
    std::fs::write(ml.join("u.item"), "").unwrap();
    let o = recsys(&[
        "data",
        "stats",
        "--data",
        &ml.display().to_string(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("u.item").count(), 1, "{}", stderr(&o));
}
