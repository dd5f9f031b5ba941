//! `recsys serve` through a real HTTP client: a server on an ephemeral port over a small MF run
//! trained once for this module on a generated catalogue (two groups of users with opposite
//! tastes), with titles.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use recsys::data::SplitKind;
use recsys::models::MfConfig;
use recsys::serve::{Limits, LoadOptions, ServeConfig, Spawned};
use recsys::train::ann::{IndexParams, IvfParams, Method, RunIndex};
use recsys::train::retrieval::Retrieval;
use recsys::train::{
    BackendKind, Checkpoint, DataRecipe, ModelConfig, OptimizerConfig, RunConfig, TrainConfig,
    load_run, train_run,
};
use serde_json::{Value, json};

pub const N_USERS: usize = 60;
pub const N_ITEMS: usize = 40;

/// Users `1..=30` love items `1..=20` and dislike `21..=40`; users `31..=60` the other way round.
/// Each user rates 16 items (a deterministic spread over both halves).
pub fn write_fixture(dir: &Path) {
    let mut r = std::fs::File::create(dir.join("ratings.csv")).unwrap();
    writeln!(r, "userId,movieId,rating,timestamp").unwrap();
    for u in 1..=N_USERS {
        for j in 0..16 {
            let i = (u * 7 + j * 3) % N_ITEMS + 1;
            let likes = (u <= N_USERS / 2) == (i <= N_ITEMS / 2);
            let rating = if likes {
                4.5 + 0.5 * ((u + i) % 2) as f32
            } else {
                1.0 + ((u + i) % 2) as f32
            };
            writeln!(r, "{u},{i},{rating},{}", 1_000_000 + u * 100 + j).unwrap();
        }
    }
    let mut m = std::fs::File::create(dir.join("movies.csv")).unwrap();
    writeln!(m, "movieId,title,genres").unwrap();
    for i in 1..=N_ITEMS {
        writeln!(m, "{i},Film {i} (2000),Drama").unwrap();
    }
}

/// Trains a biased MF run on the fixture in `data` into `out` (flex, a few seconds).
pub fn train_fixture_run(data: &Path, out: &Path, seed: u64) {
    let recipe = DataRecipe {
        source: data.display().to_string(),
        split: SplitKind::Random,
        valid: "0.1".into(),
        test: "0.1".into(),
        split_seed: 7,
        ..DataRecipe::default()
    };
    let parts = recsys::train::replay::replay(&recipe, None).unwrap();
    let ds = &parts.dataset;
    let model = MfConfig::new(ds.ids.n_users(), ds.ids.n_items())
        .with_embedding_dim(8)
        .with_bias(true)
        .with_global_mean(parts.train.mean_rating() as f32)
        .with_l2(0.001)
        .with_seed(seed);
    let cfg = RunConfig {
        model: ModelConfig::from(model),
        train: TrainConfig {
            epochs: 60,
            batch_size: 64,
            seed,
            patience: None,
            optimizer: OptimizerConfig {
                lr: 0.03,
                ..OptimizerConfig::default()
            },
            ..TrainConfig::default()
        },
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [ds.scale.0, ds.scale.1],
        task: Default::default(),
        data: recipe,
        normalize: Default::default(),
        normalizer: Default::default(),
    };
    train_run(out, &cfg, &ds.ids, &parts.train, Some(&parts.valid), true).unwrap();
}

/// The fixture's data folder and a trained run, made once for the module.
fn fixture() -> &'static (PathBuf, PathBuf) {
    static FIXTURE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap();
        write_fixture(&data);
        let run = root.join("mf");
        train_fixture_run(&data, &run, 1);
        (data, run)
    })
}

fn config(runs: Vec<(String, PathBuf)>) -> ServeConfig {
    ServeConfig {
        runs,
        addr: "127.0.0.1:0".into(),
        load: LoadOptions {
            backend: Some((BackendKind::Flex, 0)),
            ..LoadOptions::default()
        },
        limits: Limits {
            max_k: 50,
            max_pairs: 100,
            max_batch: 10,
            max_body: 64 * 1024,
        },
        admin_token: None,
    }
}

fn server() -> Spawned {
    let (_, run) = fixture();
    recsys::serve::spawn(&config(vec![("mf".into(), run.clone())])).unwrap()
}

/// `(status, JSON body)` of a POST.
fn post(s: &Spawned, path: &str, body: &str) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut resp = agent
        .post(&s.url(path))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn get(s: &Spawned, path: &str) -> (u16, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let mut resp = agent.get(&s.url(path)).call().unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn items(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn health_models_and_metrics() {
    let s = server();
    assert_eq!(get(&s, "/healthz"), (200, "ok\n".to_string()));
    let (code, ready) = get(&s, "/readyz");
    assert_eq!(code, 200);
    assert!(ready.contains("\"ready\":true"), "{ready}");
    let (code, models) = get(&s, "/v1/models");
    assert_eq!(code, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    let m = &models["models"][0];
    assert_eq!(m["name"], "mf");
    assert_eq!(m["family"], "mf");
    assert_eq!(m["task"], "rating");
    assert_eq!(m["n_users"], N_USERS);
    assert_eq!(m["n_items"], N_ITEMS);
    assert_eq!(m["fold_in"], true);
    assert!(m["test"]["rmse"].as_f64().unwrap() > 0.0);
    assert!(m["trained_at_unix"].as_u64().is_some());
    let _ = post(&s, "/v1/recommend", r#"{"user": "1"}"#);
    let _ = post(&s, "/v1/recommend", r#"{"user": "nobody"}"#);
    let (code, text) = get(&s, "/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains(r#"recsys_requests_total{endpoint="/v1/recommend",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"recsys_requests_total{endpoint="/v1/recommend",status="404"} 1"#));
    assert!(text.contains(r#"recsys_errors_total{endpoint="/v1/recommend"} 1"#));
    assert!(
        text.contains(r#"recsys_request_seconds_bucket{endpoint="/v1/recommend",le="+Inf"} 2"#)
    );
}

#[test]
fn recommend_agrees_with_the_loaded_run_and_excludes_seen_items() {
    let (_, run_dir) = fixture();
    let s = server();
    let (code, v) = post(
        &s,
        "/v1/recommend",
        r#"{"user": "1", "k": 5, "exclude_seen": true, "top_rated": 3}"#,
    );
    assert_eq!(code, 200, "{v}");
    let got = items(&v, "recommendations");
    assert_eq!(got.len(), 5);
    // The same top 5 as the loaded run's own top-K on the device, seen items excluded.
    let run = load_run(run_dir, Checkpoint::Best, Some((BackendKind::Flex, 0))).unwrap();
    let parts = recsys::train::replay::replay(&run.config.data, None).unwrap();
    let history = recsys::data::UserHistory::new(&parts.train);
    let u = run.ids.user("1").unwrap();
    let want = recsys::train::recommend(&run, &[u], 5, Some(&history)).remove(0);
    let want_ids: Vec<String> = want
        .iter()
        .map(|(i, _)| run.ids.items.raw_id(*i).to_string())
        .collect();
    assert_eq!(got, want_ids);
    // Scores are the model's as shown to users: LoadedRun::score of the pairs, clamped to the
    // rating scale.
    let items_idx: Vec<u32> = want.iter().map(|w| w.0).collect();
    let scores = run.score(&[u; 5], &items_idx);
    for (r, s) in v["recommendations"].as_array().unwrap().iter().zip(&scores) {
        assert!(
            (r["score"].as_f64().unwrap() - run.shown_score(*s) as f64).abs() < 1e-4,
            "{r} vs {s}"
        );
        assert!(r["title"].as_str().unwrap().starts_with("Film "));
    }
    for i in &got {
        assert!(
            !history.contains(u, run.ids.item(i).unwrap()),
            "seen item {i} recommended"
        );
    }
    // User 1 loves items 1..=20.
    assert!(
        got.iter()
            .all(|i| i.parse::<usize>().unwrap() <= N_ITEMS / 2),
        "{got:?}"
    );
    assert_eq!(v["top_rated"].as_array().unwrap().len(), 3);
    // An explicit exclusion list holds too.
    let (_, w) = post(
        &s,
        "/v1/recommend",
        &json!({"user": 1, "k": 5, "exclude_seen": true, "exclude": [got[0]]}).to_string(),
    );
    assert!(!items(&w, "recommendations").contains(&got[0]));
}

#[test]
fn batch_similar_and_score() {
    let s = server();
    let (code, v) = post(&s, "/v1/recommend", r#"{"users": ["1", "45"], "k": 3}"#);
    assert_eq!(code, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["user"], "45");
    let second = items(&results[1], "recommendations");
    assert!(
        second
            .iter()
            .all(|i| i.parse::<usize>().unwrap() > N_ITEMS / 2),
        "{second:?}"
    );

    let (code, v) = post(&s, "/v1/similar", r#"{"title": "Film 3 (2000)", "k": 4}"#);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["item"], "3");
    let sims = items(&v, "similar");
    assert_eq!(sims.len(), 4);
    assert!(!sims.contains(&"3".to_string()));

    let (code, v) = post(
        &s,
        "/v1/score",
        r#"{"pairs": [["1", "2"], ["1", "30"], [45, 30]]}"#,
    );
    assert_eq!(code, 200, "{v}");
    let sc: Vec<f64> = v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(sc[0] > sc[1] && sc[2] > sc[1], "{sc:?}");
}

#[test]
fn bad_requests_are_answered_and_the_server_goes_on() {
    let s = server();
    let (code, v) = post(&s, "/v1/recommend", "{\"user\": \"1\",\n \"k\": }");
    assert_eq!(code, 400);
    assert!(
        v["error"].as_str().unwrap().contains("line 2 column"),
        "{v}"
    );
    let (code, v) = post(&s, "/v1/recommend", r#"{"user": "nobody"}"#);
    assert_eq!(code, 404);
    assert!(v["error"].as_str().unwrap().contains("\"nobody\""), "{v}");
    for k in ["0", "-3", "51"] {
        let (code, v) = post(
            &s,
            "/v1/recommend",
            &format!(r#"{{"user": "1", "k": {k}}}"#),
        );
        assert_eq!(code, 400, "k {k}: {v}");
        assert!(v["error"].as_str().unwrap().contains('k'));
    }
    let (code, v) = post(&s, "/v1/similar", r#"{"item": "9999"}"#);
    assert_eq!(code, 404);
    assert!(v["error"].as_str().unwrap().contains("9999"));
    let pairs: Vec<[&str; 2]> = vec![["1", "1"]; 101];
    let (code, v) = post(&s, "/v1/score", &json!({"pairs": pairs}).to_string());
    assert_eq!(code, 400);
    assert!(
        v["error"].as_str().unwrap().contains("too many pairs"),
        "{v}"
    );
    let (code, _) = post(
        &s,
        "/v1/recommend",
        &format!(r#"{{"user": "1", "pad": "{}"}}"#, "x".repeat(100_000)),
    );
    assert_eq!(code, 413);
    let (code, v) = post(&s, "/v1/recommend", r#"{"user": "1", "colour": "red"}"#);
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("colour"), "{v}");
    // Still serving.
    let (code, _) = post(&s, "/v1/recommend", r#"{"user": "1"}"#);
    assert_eq!(code, 200);
}

#[test]
fn cold_start_popular_fallback_and_fold_in() {
    let s = server();
    let (code, v) = post(
        &s,
        "/v1/recommend",
        r#"{"user": "new", "k": 5, "fallback": true}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["fallback"], "popular");
    assert_eq!(items(&v, "recommendations").len(), 5);
    // A new user who likes two items of the second half gets the second half.
    let body = json!({"user": "new", "k": 5, "exclude_seen": true, "history": [
        {"item": "25", "rating": 5}, {"title": "Film 33 (2000)", "rating": 5}, {"item": "4", "rating": 1}]});
    let (code, v) = post(&s, "/v1/recommend", &body.to_string());
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["folded_in"], 3);
    assert!(v.get("fallback").is_none());
    let got = items(&v, "recommendations");
    assert!(!got.contains(&"25".to_string()) && !got.contains(&"33".to_string()));
    assert!(
        got.iter()
            .all(|i| i.parse::<usize>().unwrap() > N_ITEMS / 2),
        "{got:?}"
    );
    let (code, v) = post(
        &s,
        "/v1/recommend",
        r#"{"history": [{"item": "25", "rating": 9}]}"#,
    );
    assert_eq!(code, 400);
    assert!(
        v["error"].as_str().unwrap().contains("outside the scale"),
        "{v}"
    );
}

/// Fold-in on the fixture: users left out of training and folded in from their training
/// ratings predict their test ratings about as well as in a model trained with them.
#[test]
fn fold_in_matches_training_with_the_user() {
    let (data, run_dir) = fixture();
    let run = load_run(run_dir, Checkpoint::Best, Some((BackendKind::Flex, 0))).unwrap();
    let parts =
        recsys::train::replay::replay(&run.config.data, Some(data.to_str().unwrap())).unwrap();
    let r = Retrieval::new(&run).unwrap();
    let history = recsys::data::UserHistory::new(&parts.train);
    let mean = parts.train.len() as f64 / parts.train.n_users as f64;
    // Each user's own vector against a vector folded in from its training ratings: the same
    // predictions of its test ratings, within a small error.
    let (mut own, mut folded, mut n) = (0f64, 0f64, 0usize);
    for k in 0..parts.test.len() {
        let (u, i, y) = (
            parts.test.users[k],
            parts.test.items[k],
            parts.test.ratings[k],
        );
        let h: Vec<(u32, f32)> = history
            .items(u)
            .iter()
            .copied()
            .zip(history.ratings(u).iter().copied())
            .collect();
        let v = r.fold_in(&run, &h, mean).unwrap();
        own += (r.score(r.user(u), i) - y).powi(2) as f64;
        folded += (r.score(&v, i) - y).powi(2) as f64;
        n += 1;
    }
    let (own, folded) = ((own / n as f64).sqrt(), (folded / n as f64).sqrt());
    assert!(
        folded < own + 0.15,
        "fold-in RMSE {folded} vs trained {own}"
    );
    assert!(folded < 1.0, "fold-in RMSE {folded}");
}

#[test]
fn reload_swaps_runs_and_keeps_the_old_one_on_failure() {
    let (data, run_dir) = fixture();
    let s = server();
    let (code, v) = post(&s, "/admin/reload", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["reloaded"], "mf");
    // A retrained run (another seed) swaps in.
    let other = tempfile::tempdir().unwrap();
    let other_run = other.path().join("mf2");
    train_fixture_run(data, &other_run, 2);
    let (_, before) = post(&s, "/v1/score", r#"{"pairs": [["1", "2"]]}"#);
    let (code, v) = post(&s, "/admin/reload", &json!({"run": other_run}).to_string());
    assert_eq!(code, 200, "{v}");
    let (_, after) = post(&s, "/v1/score", r#"{"pairs": [["1", "2"]]}"#);
    assert_ne!(before["scores"], after["scores"]);
    // A directory that is no run leaves the current one serving, and says why.
    let (code, v) = post(
        &s,
        "/admin/reload",
        &json!({"run": other.path().join("missing")}).to_string(),
    );
    assert_eq!(code, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("still serving the old run"),
        "{v}"
    );
    let (_, still) = post(&s, "/v1/score", r#"{"pairs": [["1", "2"]]}"#);
    assert_eq!(still["scores"], after["scores"]);
    let _ = run_dir;
}

#[test]
fn reload_needs_the_token_when_one_is_set() {
    let (_, run) = fixture();
    let mut cfg = config(vec![("mf".into(), run.clone())]);
    cfg.admin_token = Some("s3cret".into());
    let s = recsys::serve::spawn(&cfg).unwrap();
    let (code, v) = post(&s, "/admin/reload", "");
    assert_eq!(code, 403, "{v}");
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let resp = agent
        .post(&s.url("/admin/reload"))
        .header("authorization", "Bearer s3cret")
        .send("")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn an_index_serves_the_same_recommendations() {
    let (data, _) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("mf");
    train_fixture_run(data, &run_dir, 1);
    let run = load_run(&run_dir, Checkpoint::Best, Some((BackendKind::Flex, 0))).unwrap();
    let mut exact_cfg = config(vec![("mf".into(), run_dir.clone())]);
    exact_cfg.load.exact = true;
    let e = recsys::serve::spawn(&exact_cfg).unwrap();
    for method in [Method::Ivf, Method::Hnsw] {
        // Every list scanned, or a 40-item graph searched in full: the same lists as exact.
        let params = IndexParams {
            method,
            ivf: IvfParams {
                probes: usize::MAX,
                ..IvfParams::default()
            },
            ..IndexParams::default()
        };
        RunIndex::build(&run, params)
            .unwrap()
            .save(&run_dir)
            .unwrap();
        let s = recsys::serve::spawn(&config(vec![("mf".into(), run_dir.clone())])).unwrap();
        let (_, models) = get(&s, "/v1/models");
        assert!(models.contains("\"index\":true"), "{models}");
        let want = format!("\"index_method\":{}", json!(method));
        assert!(models.contains(&want), "{models}");
        for user in ["1", "17", "45"] {
            let body = json!({"user": user, "k": 5, "exclude_seen": true}).to_string();
            let (_, a) = post(&s, "/v1/recommend", &body);
            let (_, b) = post(&e, "/v1/recommend", &body);
            assert_eq!(
                items(&a, "recommendations"),
                items(&b, "recommendations"),
                "{method:?}, user {user}"
            );
        }
        let (_, a) = post(&s, "/v1/similar", r#"{"item": "3", "k": 5}"#);
        let (_, b) = post(&e, "/v1/similar", r#"{"item": "3", "k": 5}"#);
        assert_eq!(items(&a, "similar"), items(&b, "similar"), "{method:?}");
    }
}

/// Fold-in on ML-100K u1: a tenth of the users (those of id divisible by 10) are left out of
/// training and folded in from their u1.base ratings; their u1.test RMSE is within 0.02 of the
/// same users' RMSE in a model trained with them (measured: 0.8522 folded in, 0.8417 trained with
/// them, 46 users, 1,790 test ratings; about 26 s). Needs `RECSYS_DATA_DIR`.
#[test]
fn fold_in_quality_on_ml_100k() {
    use recsys::data::{Interactions, LoadOptions, UserHistory, load, ml100k_fold};
    use recsys::models::EmbeddingInit;
    use recsys::train::LrSchedule;
    let name = "fold_in_quality_on_ml_100k";
    let Some(dir) = crate::common::real_data("ml-100k", name) else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let (base, test) = ml100k_fold(&dir, 1, &ds.ids).unwrap();
    let left_out = |u: u32| ds.ids.users.raw_id(u).parse::<u64>().unwrap() % 10 == 0;
    let keep: Vec<usize> = (0..base.len())
        .filter(|&k| !left_out(base.users[k]))
        .collect();
    let without = base.select(&keep);
    let train = |data: &Interactions| {
        let model = MfConfig::new(ds.ids.n_users(), ds.ids.n_items())
            .with_embedding_dim(64)
            .with_bias(true)
            .with_init(EmbeddingInit::Normal { std: 0.01 })
            .with_l2(0.15)
            .with_l2_bias(Some(0.0))
            .with_l2_frequency_exponent(0.5)
            .with_global_mean(data.mean_rating() as f32);
        let cfg = RunConfig {
            model: ModelConfig::from(model),
            train: TrainConfig {
                epochs: 40,
                batch_size: 512,
                patience: None,
                optimizer: OptimizerConfig {
                    lr: 0.003,
                    schedule: LrSchedule::Cosine { min_lr: 0.0 },
                    ..Default::default()
                },
                ..Default::default()
            },
            backend: BackendKind::Flex,
            device_index: 0,
            rating_scale: [ds.scale.0, ds.scale.1],
            task: Default::default(),
            data: Default::default(),
            normalize: Default::default(),
            normalizer: Default::default(),
        };
        let out = tempfile::tempdir().unwrap();
        let _one_at_a_time = crate::quality::TRAINING
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        train_run(out.path(), &cfg, &ds.ids, data, None, true).unwrap();
        // The directory outlives the run: weights are read from it lazily.
        let run = load_run(out.path(), Checkpoint::Last, None).unwrap();
        (out, run)
    };
    let (_with_dir, with_them) = train(&base);
    let (_without_dir, without_them) = train(&without);
    let (ra, rb) = (
        Retrieval::new(&with_them).unwrap(),
        Retrieval::new(&without_them).unwrap(),
    );
    let history = UserHistory::new(&base);
    let mean = without.len() as f64 / (ds.ids.n_users() as f64 * 0.9);
    let (mut se_a, mut se_b, mut n) = (0f64, 0f64, 0usize);
    let mut folded = std::collections::HashMap::new();
    let clamp = |x: f32| x.clamp(ds.scale.0, ds.scale.1);
    for k in 0..test.len() {
        let (u, i, y) = (test.users[k], test.items[k], test.ratings[k]);
        if !left_out(u) {
            continue;
        }
        let v = folded.entry(u).or_insert_with(|| {
            let h: Vec<(u32, f32)> = history
                .items(u)
                .iter()
                .copied()
                .zip(history.ratings(u).iter().copied())
                .collect();
            rb.fold_in(&without_them, &h, mean).unwrap()
        });
        se_a += (clamp(ra.score(ra.user(u), i)) - y).powi(2) as f64;
        se_b += (clamp(rb.score(v, i)) - y).powi(2) as f64;
        n += 1;
    }
    let (a, b) = ((se_a / n as f64).sqrt(), (se_b / n as f64).sqrt());
    eprintln!(
        "{name}: {} users, {n} test ratings: trained with them RMSE {a:.4}, folded in {b:.4}",
        folded.len()
    );
    assert!(
        b <= a + 0.02,
        "fold-in RMSE {b:.4} vs {a:.4} trained with the users"
    );
}

/// A Chromium binary, when one is installed.
pub fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Headless Chromium's arguments for a page (a fresh profile in `profile`).
pub fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--virtual-time-budget=10000",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The page at `/` in headless Chromium: opened on a user and an item, it shows the user's
/// top-rated titles, the recommendations the API gives, and the item's neighbours.
#[test]
fn the_page_shows_recommendations_in_a_browser() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIP the_page_shows_recommendations_in_a_browser: no chromium installed (apt-get install chromium)"
        );
        return;
    };
    let s = server();
    let (code, html) = get(&s, "/");
    assert_eq!(code, 200);
    assert!(html.contains("<script>"));
    let (_, want) = post(
        &s,
        "/v1/recommend",
        r#"{"user": "45", "k": 10, "exclude_seen": true, "top_rated": 10}"#,
    );
    let (_, sim) = post(&s, "/v1/similar", r#"{"item": "3", "k": 10}"#);
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(browser)
        .args(chromium_args(profile.path()))
        .arg("--dump-dom")
        .arg(s.url("/?user=45&similar=3"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("Recommended for user 45"), "{dom}");
    let section = |id: &str| -> String {
        let start = dom
            .find(&format!("<ol id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no #{id} in {dom}"));
        let end = dom[start..].find("</ol>").unwrap() + start;
        dom[start..end].to_string()
    };
    let (recs, rated, similar) = (section("recs"), section("rated"), section("similar"));
    for r in want["recommendations"].as_array().unwrap() {
        assert!(
            recs.contains(&format!("data-item=\"{}\"", r["item"].as_str().unwrap())),
            "{recs}"
        );
    }
    for r in want["top_rated"].as_array().unwrap() {
        assert!(rated.contains(r["title"].as_str().unwrap()), "{rated}");
    }
    for r in sim["similar"].as_array().unwrap() {
        assert!(similar.contains(r["title"].as_str().unwrap()), "{similar}");
    }
    assert!(dom.contains("Similar to Film 3 (2000)"));
}
