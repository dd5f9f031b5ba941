use super::*;

fn space(args: &[&str]) -> Space {
    let mut s = Space::default();
    for a in args {
        s.add_arg(a).unwrap();
    }
    s
}

fn err(arg: &str) -> String {
    Space::default().add_arg(arg).unwrap_err().to_string()
}

#[test]
fn domains_from_the_command_line_and_files() {
    let s = space(&[
        "lr=log:1e-4:1e-2",
        "embedding-dim=choice:16,32,64",
        "l2=range:0:0.3",
    ]);
    let keys: Vec<&str> = s.params.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["embedding_dim", "l2", "lr"]);
    assert_eq!(
        s.params[2].domain,
        Domain::Float {
            low: 1e-4,
            high: 1e-2,
            log: true
        }
    );
    assert_eq!(
        s.params[0].domain,
        Domain::Choice(vec![16.into(), 32.into(), 64.into()])
    );
    assert!(matches!(
        space(&["batch_size=log:64:1024"]).params[0].domain,
        Domain::Int {
            low: 64,
            high: 1024,
            log: true
        }
    ));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("space.toml");
    std::fs::write(
        &f,
        "lr = { log = [1e-4, 1e-2] }\n[model]\nembedding_dim = { choice = [16, 32] }\n\
         \"l2_frequency_exponent\" = { range = [0.0, 1.0] }\n",
    )
    .unwrap();
    let s = Space::read(&f).unwrap();
    let keys: Vec<&str> = s.params.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["lr", "model.embedding_dim", "model.l2_frequency_exponent"]
    );
    // The space file the study keeps reads back as the same space.
    std::fs::write(&f, toml::to_string(&s.to_toml()).unwrap()).unwrap();
    assert_eq!(Space::read(&f).unwrap(), s);
}

#[test]
fn bad_domains_are_named() {
    assert!(
        err("lr=range:0.1:0.1").contains("is empty"),
        "{}",
        err("lr=range:0.1:0.1")
    );
    assert!(err("lr=range:0.2:0.1").contains("is empty"));
    assert!(err("lr=log:0:0.1").contains("positive bounds"));
    assert!(err("lr=log:-1:0.1").contains("positive bounds"));
    assert!(err("lr=choice:").contains("lr"));
    assert!(err("lr=uniform:0:1").contains("not range:LOW:HIGH"));
    assert!(err("lr").contains("KEY=range"));
    assert!(err("lr=range:a:1").contains("two numbers"));
    let mut s = space(&["lr=range:0.1:0.2"]);
    assert!(
        s.add_arg("lr=range:0.1:0.3")
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
}

#[test]
fn keys_resolve_against_the_configuration() {
    let config: Table = toml::from_str(
        "[model]\nl2 = 0.0\nseed = 1\n[train]\nepochs = 3\nseed = 2\n[train.optimizer]\nlr = 0.1\n\
         [data]\nvalid = \"0.1\"\n",
    )
    .unwrap();
    let mut s = space(&["lr=log:1e-3:1e-1", "model.l2=range:0:1"]);
    s.resolve(&config).unwrap();
    assert_eq!(s.params[0].path, ["train", "optimizer", "lr"]);
    assert_eq!(s.params[1].path, ["model", "l2"]);
    let unknown = space(&["nope=range:0:1"]).resolve(&config).unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("unknown search space key nope"),
        "{unknown}"
    );
    let ambiguous = space(&["seed=range:1:9"]).resolve(&config).unwrap_err();
    assert!(
        ambiguous.to_string().contains("model.seed")
            && ambiguous.to_string().contains("train.seed"),
        "{ambiguous}"
    );
    let data = space(&["data.valid=choice:0.1"])
        .resolve(&config)
        .unwrap_err();
    assert!(data.to_string().contains("fixed"), "{data}");
    // A trial's values as a config-file table over the base.
    let params: Params = [("lr".to_string(), Value::Float(0.01))]
        .into_iter()
        .collect();
    let mut s = space(&["lr=log:1e-3:1e-1"]);
    s.resolve(&config).unwrap();
    let base: Table = toml::from_str("[train]\nepochs = 5\n").unwrap();
    let t = s.config_table(&base, &params);
    assert_eq!(
        t.to_string(),
        "[train]\nepochs = 5\n\n[train.optimizer]\nlr = 0.01\n"
    );
}

#[test]
fn samples_stay_in_their_domains_and_repeat_with_the_seed() {
    let s = space(&[
        "a=log:1e-4:1e-1",
        "b=range:3:7",
        "c=choice:x,y",
        "d=range:-1.0:1.0",
    ]);
    let sampler = |kind| Sampler {
        kind,
        seed: 7,
        startup_trials: 3,
    };
    for kind in [SamplerKind::Random, SamplerKind::Tpe] {
        let mut history = Vec::new();
        for trial in 0..20 {
            let p = sampler(kind).sample(&s, trial, &history);
            assert_eq!(p, sampler(kind).sample(&s, trial, &history));
            let a = p["a"].as_float().unwrap();
            assert!((1e-4..=1e-1).contains(&a), "{a}");
            let b = p["b"].as_integer().unwrap();
            assert!((3..=7).contains(&b), "{b}");
            assert!(["x", "y"].contains(&p["c"].as_str().unwrap()));
            let d = p["d"].as_float().unwrap();
            assert!((-1.0..=1.0).contains(&d));
            history.push((p, d * d));
        }
    }
}

/// On a 1-D objective whose best values lie near 0.8, TPE (after 10 random trials) puts more of
/// its trials near the best than random search does, with every one of several seeds.
#[test]
fn tpe_concentrates_on_the_better_region() {
    let s = space(&["x=range:0.0:1.0"]);
    let objective = |x: f64| (x - 0.8).powi(2);
    let near = |kind, seed| {
        let sampler = Sampler {
            kind,
            seed,
            startup_trials: 10,
        };
        let mut history: Vec<(Params, f64)> = Vec::new();
        let mut near = 0;
        for trial in 0..50 {
            let p = sampler.sample(&s, trial, &history);
            let x = p["x"].as_float().unwrap();
            if trial >= 10 && (x - 0.8).abs() < 0.1 {
                near += 1;
            }
            history.push((p, objective(x)));
        }
        near
    };
    for seed in [1, 2, 3] {
        let (tpe, random) = (
            near(SamplerKind::Tpe, seed),
            near(SamplerKind::Random, seed),
        );
        eprintln!("seed {seed}: {tpe} TPE and {random} random trials of 40 near the best");
        // Random search puts about 20% of its 40 trials there (8 expected); TPE most of them.
        assert!(
            tpe >= 25 && tpe >= random + 10,
            "seed {seed}: tpe {tpe}, random {random}"
        );
    }
}

#[test]
fn tpe_prefers_the_better_choice() {
    let s = space(&["c=choice:0,1,2,3"]);
    let sampler = Sampler {
        kind: SamplerKind::Tpe,
        seed: 5,
        startup_trials: 8,
    };
    let mut history: Vec<(Params, f64)> = Vec::new();
    let mut twos = 0;
    for trial in 0..40 {
        let p = sampler.sample(&s, trial, &history);
        let c = p["c"].as_integer().unwrap();
        if trial >= 8 && c == 2 {
            twos += 1;
        }
        history.push((p, if c == 2 { 0.0 } else { 1.0 }));
    }
    assert!(twos >= 16, "{twos} of 32");
}

#[test]
fn normal_cdf_is_accurate() {
    for (z, p) in [
        (0.0, 0.5),
        (1.0, 0.841_344_746),
        (-1.96, 0.024_997_895),
        (3.0, 0.998_650_102),
    ] {
        assert!((tpe::normal_cdf(z) - p).abs() < 1e-6, "{z}");
    }
}

#[test]
fn median_pruner_stops_trials_behind_the_median() {
    let p = MedianPruner {
        startup_trials: 2,
        warmup_epochs: 2,
    };
    let finished = vec![
        vec![1.0, 0.9, 0.8],
        vec![1.2, 1.0, 0.9],
        vec![1.1, 0.95, 0.85],
    ];
    // During warm-up, or before enough trials finished, nothing stops.
    assert!(!p.should_prune(&[5.0], &finished));
    assert!(!p.should_prune(&[5.0, 5.0], &finished[..1]));
    // Median of the best-so-far at epoch 2: 0.95.
    assert!(p.should_prune(&[1.0, 0.96], &finished));
    assert!(!p.should_prune(&[1.0, 0.94], &finished));
    // The best so far counts, not the last value; a shorter finished curve counts by its end.
    assert!(!p.should_prune(&[0.9, 1.5], &finished));
    assert!(p.should_prune(&[1.0, 1.0, 1.0, 0.99], &[vec![0.5], vec![0.6, 0.55]]));
}

#[test]
fn study_log_resumes_and_refuses_other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StudySettings {
        model: "mf".into(),
        metric: crate::metrics::Metric::Rmse,
        sampler: SamplerKind::Tpe,
        seed: 1,
        startup_trials: 2,
        pruner: None,
        space: space(&["lr=log:1e-3:1e-1"]).to_toml(),
        base: Table::new(),
    };
    let mut study = Study::open(dir.path(), settings.clone()).unwrap();
    for (trial, (state, value)) in [
        (TrialState::Complete, Some(0.95)),
        (TrialState::Failed, None),
        (TrialState::Complete, Some(0.93)),
        (TrialState::Pruned, Some(0.90)),
    ]
    .into_iter()
    .enumerate()
    {
        study
            .record(TrialRecord {
                trial,
                state,
                params: [("lr".into(), Value::Float(0.01 * (trial + 1) as f64))].into(),
                value,
                best_epoch: value.map(|_| 1),
                curve: value.into_iter().collect(),
                seconds: 0.1,
                error: (state == TrialState::Failed).then(|| "diverged".into()),
            })
            .unwrap();
    }
    // The best complete trial (a pruned one does not count).
    assert_eq!(study.best().unwrap().trial, 2);
    let again = Study::open(dir.path(), settings.clone()).unwrap();
    assert_eq!(again.records, study.records);
    assert_eq!(again.next_trial(), 4);
    assert_eq!(again.history()[1].1, f64::INFINITY);
    let mut other = settings;
    other.seed = 2;
    let e = Study::open(dir.path(), other).unwrap_err().to_string();
    assert!(e.contains("study.toml") && e.contains("another"), "{e}");
}
