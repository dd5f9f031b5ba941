//! Command-line contract of the NCF models, implicit-feedback training, ranking evaluation and
//! the sanity checks, on the default synthetic data (no download).

mod common;

use common::{assert_fails_with, json_ok, recsys, stderr};

const LLO: [&str; 4] = ["--split", "leave-last-out", "--valid", "1"];

fn train(out: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["train", "--out", out, "--json", "--epochs", "2"];
    args.extend(extra.iter().skip_while(|a| **a == "train"));
    json_ok(&recsys(&args))
}

fn metric(v: &serde_json::Value, key: &str) -> f64 {
    v["metrics"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn implicit_training_and_ranking_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("gmf").display().to_string();
    let mut args = vec!["--model", "gmf", "--task", "implicit", "--lr", "0.01"];
    args.extend_from_slice(&LLO);
    let v = train(&run, &args);
    assert_eq!(v["model"], "gmf");
    let hr = metric(&v, "hr@10");
    // Random ranking among 100 candidates gives HR@10 = 0.1.
    assert!(hr > 0.2, "{v}");
    assert!(metric(&v, "ndcg@10") <= hr);
    assert!(v["valid_metrics"]["hr@10"].as_f64().is_some(), "{v}");
    let negatives = dir.path().join("gmf").join("test.negative");
    let text = std::fs::read_to_string(&negatives).unwrap();
    assert_eq!(text.lines().next().unwrap().split('\t').count(), 100);

    // eval rebuilds the split, reads the stored negatives and gets the same figures.
    let e = json_ok(&recsys(&["eval", "--run", &run, "--k", "10", "--json"]));
    assert_eq!(e["protocol"], "sampled");
    assert!((metric(&e, "hr@10") - hr).abs() < 1e-12, "{e} vs {v}");
    let f = json_ok(&recsys(&[
        "eval",
        "--run",
        &run,
        "--protocol",
        "full",
        "--k",
        "5,10",
        "--json",
    ]));
    for key in [
        "hr@5",
        "ndcg@10",
        "recall@10",
        "precision@5",
        "map@10",
        "mrr@10",
    ] {
        assert!(f["metrics"][key].as_f64().is_some(), "{key} missing: {f}");
    }
    assert!(metric(&f, "hr@10") < hr, "full ranking is harder: {f}");
    // Rating metrics of a rating run still work, and a rating run can be ranked too.
    let mf = dir.path().join("mf").display().to_string();
    train(&mf, &["--model", "mf", "--bias"]);
    let r = json_ok(&recsys(&[
        "eval",
        "--run",
        &mf,
        "--protocol",
        "sampled",
        "--k",
        "10",
        "--json",
    ]));
    assert!(metric(&r, "hr@10") > 0.0);

    // Bad input: each a clear message and exit code 1.
    assert_fails_with(
        &recsys(&["eval", "--run", &run, "--k", "0"]),
        &["K must be at least 1"],
    );
    assert_fails_with(
        &recsys(&["eval", "--run", &run, "--k", "101"]),
        &["K = 101 is larger than the 100"],
    );
    assert_fails_with(
        &recsys(&["eval", "--run", &run, "--protocol", "full", "--k", "99999"]),
        &["larger than the", "items of the catalogue"],
    );
    let bad = dir.path().join("bad.negative");
    std::fs::write(&bad, "(0,1)\t5\t6\n(1,2)\tseven\t8\n").unwrap();
    let bad_s = bad.display().to_string();
    assert_fails_with(
        &recsys(&["eval", "--run", &run, "--negatives", &bad_s]),
        &["bad.negative:2:", "\"seven\""],
    );
    std::fs::write(&bad, "(0,1)\t5\t6\n").unwrap();
    assert_fails_with(
        &recsys(&["eval", "--run", &run, "--negatives", &bad_s]),
        &["bad.negative:1:", "(0,1)", "not in the test part"],
    );
    let never = dir.path().join("never").display().to_string();
    let mut args = vec![
        "train",
        "--model",
        "neumf",
        "--task",
        "implicit",
        "--negatives",
        "5000",
        "--out",
        &never,
    ];
    args.extend_from_slice(&LLO);
    assert_fails_with(&recsys(&args), &["fewer than the 5000 negatives"]);
    // A configuration error leaves no run directory behind.
    assert!(!dir.path().join("never").exists());
    assert_fails_with(
        &recsys(&["train", "--model", "autorec", "--task", "implicit"]),
        &["--task implicit trains"],
    );
    assert_fails_with(
        &recsys(&["train", "--model", "gmf", "--negatives", "3"]),
        &["--negatives and --protocol apply to --task implicit"],
    );
}

#[test]
fn bpr_mf_and_pretrained_neumf() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let mut base = vec!["--task", "implicit"];
    base.extend_from_slice(&LLO);
    let with = |extra: &[&str]| -> Vec<String> {
        ["train"]
            .iter()
            .chain(&base)
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let bpr = train(
        &path("bpr"),
        &args(&with(&["--model", "mf", "--loss", "bpr", "--lr", "0.01"])),
    );
    assert!(metric(&bpr, "hr@10") > 0.2, "{bpr}");
    let gmf = train(
        &path("gmf"),
        &args(&with(&["--model", "gmf", "--lr", "0.01"])),
    );
    train(
        &path("mlp"),
        &args(&with(&["--model", "mlp", "--lr", "0.01"])),
    );
    let (g, m) = (path("gmf"), path("mlp"));
    let neumf = train(
        &path("neumf"),
        &args(&with(&[
            "--model",
            "neumf",
            "--pretrained-gmf",
            &g,
            "--pretrained-mlp",
            &m,
            "--optimizer",
            "sgd",
            "--lr",
            "0.001",
        ])),
    );
    // Starting from the pretrained branches, NeuMF is at least near the better of them at once.
    assert!(
        metric(&neumf, "hr@10") > 0.8 * metric(&gmf, "hr@10"),
        "{neumf} vs {gmf}"
    );
    // Pretrained runs of other sizes, or of the wrong kind, are refused.
    let g4 = path("gmf4");
    train(
        &g4,
        &args(&with(&["--model", "gmf", "--embedding-dim", "4"])),
    );
    let o = recsys(&args(&with(&[
        "--model",
        "neumf",
        "--pretrained-gmf",
        &g4,
        "--pretrained-mlp",
        &m,
        "--out",
        &path("x"),
    ])));
    assert_fails_with(&o, &["the gmf run has factors Some(4)"]);
    let o = recsys(&args(&with(&[
        "--model",
        "neumf",
        "--pretrained-gmf",
        &m,
        "--pretrained-mlp",
        &m,
        "--out",
        &path("y"),
    ])));
    assert_fails_with(&o, &["needs a `gmf` run (or `mf`), this is a `mlp` run"]);
}

#[test]
fn explicit_ncf_on_ids_and_rating_vectors() {
    let dir = tempfile::tempdir().unwrap();
    for input in ["ids", "rating-vectors"] {
        let run = dir.path().join(input).display().to_string();
        let v = train(
            &run,
            &[
                "--model",
                "neumf",
                "--input",
                input,
                "--activation",
                "leaky-relu",
                "--l2",
                "0.0001",
                "--lr",
                "0.002",
            ],
        );
        let rmse = metric(&v, "rmse");
        assert!(rmse > 0.5 && rmse < 1.3, "{input}: {v}");
        // Loaded in a new process (rating vectors read the stored training rows).
        let e = json_ok(&recsys(&["eval", "--run", &run, "--json"]));
        assert!((metric(&e, "rmse") - rmse).abs() < 1e-9, "{e} vs {v}");
        let o = recsys(&[
            "recommend",
            "--run",
            &run,
            "--user",
            "1",
            "-k",
            "3",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

#[test]
fn sanity_checks_print_pass_or_fail() {
    let o = recsys(&["sanity", "overfit"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("PASS: overfit 64 ratings"), "{out}");
    let o = recsys(&["sanity", "noise", "--size", "20000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("PASS: noise"));
    // A learning rate too small to learn anything fails the overfit check.
    let o = recsys(&["sanity", "overfit", "--lr", "0.0000001", "--epochs", "3"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("FAIL: overfit"));
    assert_fails_with(&o, &["could not overfit"]);
}

#[test]
fn two_tower_retrieval_recommend_and_oov() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("tt").display().to_string();
    let v = train(
        &run,
        &[
            "--model",
            "two-tower",
            "--positives-above",
            "3",
            "--items-by-title",
            "--split",
            "random",
            "--valid",
            "0.05",
            "--test",
            "0.2",
            "--optimizer",
            "adagrad",
            "--lr",
            "0.1",
            "--batch-size",
            "1024",
            "--protocol",
            "factorized",
            "--oov",
        ],
    );
    assert_eq!(v["model"], "two-tower");
    // TFRS' factorized top-K accuracy at 1, 5, 10, 50, 100; better than chance (100 / items).
    let top100 = metric(&v, "hr@100");
    assert!(top100 > 2.0 * 100.0 / 1682.0, "{v}");
    assert!(metric(&v, "hr@1") <= metric(&v, "hr@5"));
    let e = json_ok(&recsys(&["eval", "--run", &run, "--k", "1,100", "--json"]));
    assert_eq!(e["protocol"], "factorized");
    assert!((metric(&e, "hr@100") - top100).abs() < 1e-12);
    // Items are titles: recommendations and similar items name them.
    let r = json_ok(&recsys(&[
        "recommend",
        "--run",
        &run,
        "--user",
        "42",
        "-k",
        "5",
        "--json",
    ]));
    let recs = r["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 5);
    assert_eq!(recs[0]["item"], recs[0]["title"]);
    let first = recs[0]["item"].as_str().unwrap().to_string();
    let s = json_ok(&recsys(&[
        "similar", "--run", &run, "--title", &first, "-k", "3", "--json",
    ]));
    assert_eq!(s["similar"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(s["item"].as_str(), Some(first.as_str()));
    // An unknown user: an error, or the out-of-vocabulary row when asked.
    assert_fails_with(
        &recsys(&["recommend", "--run", &run, "--user", "no-such-user"]),
        &["\"no-such-user\""],
    );
    let o = recsys(&[
        "recommend",
        "--run",
        &run,
        "--user",
        "no-such-user",
        "--oov",
        "-k",
        "3",
        "--json",
    ]);
    let j = json_ok(&o);
    assert_eq!(j["recommendations"].as_array().unwrap().len(), 3);
    assert!(stderr(&o).contains("out-of-vocabulary"), "{}", stderr(&o));
    // A model without such a row says so.
    let mf = dir.path().join("mf").display().to_string();
    train(&mf, &["--model", "mf"]);
    assert_fails_with(
        &recsys(&["recommend", "--run", &mf, "--user", "no-such-user", "--oov"]),
        &["keeps no out-of-vocabulary row"],
    );
    // The in-batch softmax is the two-tower's loss only.
    assert_fails_with(
        &recsys(&[
            "train", "--model", "gmf", "--task", "implicit", "--loss", "softmax", "--out", &mf,
        ]),
        &["in-batch softmax loss trains the two-tower model"],
    );
}
