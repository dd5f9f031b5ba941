//! Quality on real MovieLens data (needs `RECSYS_DATA_DIR`; each test prints SKIP without it).
//! Every threshold here is one the project promises in README.md.

use std::path::Path;

use recsys::data::{
    Dataset, Interactions, LoadOptions, Size, SplitMethod, load, ml100k_fold, split,
};
use recsys::models::{EmbeddingInit, MfConfig, MfOutput};
use recsys::train::metrics::bce_on_scale;
use recsys::train::{
    BackendKind, Checkpoint, ModelConfig, OptimizerConfig, Overrides, RatingMetrics, RunConfig,
    TrainConfig, load_run, setup, train_run,
};

use crate::common::real_data;

/// Held by every training in this binary: Burn's CPU backends share one random generator per
/// process, which each run seeds at its start, so concurrent runs (dropout) would disturb each
/// other's draws and make the figures depend on test scheduling.
pub static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Fold `k` of ML-100K: (data set, train = u{k}.base minus a 5% validation part, valid, u{k}.test).
pub fn fold(dir: &Path, k: usize) -> (Dataset, Interactions, Interactions, Interactions) {
    let ds = load(dir, &LoadOptions::default()).unwrap();
    let (base, test) = ml100k_fold(dir, k, &ds.ids).unwrap();
    let s = split(
        &base,
        &SplitMethod::Random {
            valid: Size::Ratio(0.05),
            test: Size::Count(0),
        },
        42,
    )
    .unwrap();
    (ds, s.train, s.valid, test)
}

/// Trains `model` and scores its best epoch (chosen on `valid`) on `test`.
pub fn train_and_score(
    model: ModelConfig,
    train_cfg: TrainConfig,
    backend: BackendKind,
    ds: &Dataset,
    train: &Interactions,
    valid: &Interactions,
    test: &Interactions,
) -> RatingMetrics {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: train_cfg,
        backend,
        device_index: 0,
        rating_scale: [ds.scale.0, ds.scale.1],
        task: Default::default(),
        data: Default::default(),
    };
    let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    train_run(dir.path(), &cfg, &ds.ids, train, Some(valid), true).unwrap();
    load_run(dir.path(), Checkpoint::Best, None)
        .unwrap()
        .evaluate(test)
}

#[test]
fn keras_version_4_validation_bce_on_ml_latest_small() {
    let Some(dir) = real_data(
        "ml-latest-small",
        "keras_version_4_validation_bce_on_ml_latest_small",
    ) else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let x = &ds.interactions;
    // The Keras notebook's version 4 and protocol (seeded shuffle, 90% train, 10% validation), so
    // that its validation BCE compares with the notebook's.
    let s = split(
        x,
        &SplitMethod::Random {
            valid: Size::Ratio(0.1),
            test: Size::Count(0),
        },
        42,
    )
    .unwrap();
    let model = MfConfig::new(x.n_users, x.n_items)
        .with_embedding_dim(50)
        .with_init(EmbeddingInit::Normal { std: 0.05 })
        .with_l2(1e-6)
        .with_bias(true)
        .with_output(MfOutput::Logit)
        .with_rating_min(ds.scale.0)
        .with_rating_max(ds.scale.1)
        .with_global_mean(s.train.mean_rating() as f32);
    let cfg = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model: ModelConfig::Mf(model),
        train: TrainConfig {
            epochs: 5,
            batch_size: 64,
            patience: None,
            optimizer: OptimizerConfig {
                lr: 0.001,
                ..Default::default()
            },
            ..Default::default()
        },
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [ds.scale.0, ds.scale.1],
        task: Default::default(),
        data: Default::default(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    train_run(tmp.path(), &cfg, &ds.ids, &s.train, Some(&s.valid), true).unwrap();
    let run = load_run(tmp.path(), Checkpoint::Best, None).unwrap();
    let pred = run.predict(&s.valid.users, &s.valid.items);
    let bce = bce_on_scale(&pred, &s.valid.ratings, ds.scale);
    eprintln!("Keras version 4 on ml-latest-small: validation BCE {bce:.4}");
    assert!(
        bce <= 0.610,
        "validation BCE {bce:.4} > 0.610 (Keras: 0.609)"
    );
}

#[test]
fn flex_and_wgpu_agree_on_ml100k() {
    let Some(dir) = real_data("ml-100k", "flex_and_wgpu_agree_on_ml100k") else {
        return;
    };
    if let Err(e) = recsys::train::device(BackendKind::Wgpu, 0) {
        eprintln!("SKIP flex_and_wgpu_agree_on_ml100k: {e}");
        return;
    }
    // A small, short MF: this checks that the backends agree, not quality.
    let (ds, train, valid, test) = fold(&dir, 1);
    let x = &ds.interactions;
    let model = || {
        ModelConfig::Mf(
            MfConfig::new(x.n_users, x.n_items)
                .with_embedding_dim(32)
                .with_bias(true)
                .with_l2(0.05)
                .with_global_mean(train.mean_rating() as f32),
        )
    };
    let cfg = TrainConfig {
        epochs: 8,
        batch_size: 2048,
        patience: None,
        optimizer: OptimizerConfig {
            lr: 0.005,
            ..Default::default()
        },
        ..Default::default()
    };
    let flex = train_and_score(
        model(),
        cfg.clone(),
        BackendKind::Flex,
        &ds,
        &train,
        &valid,
        &test,
    );
    let wgpu = train_and_score(model(), cfg, BackendKind::Wgpu, &ds, &train, &valid, &test);
    eprintln!("u1 RMSE: flex {:.5}, wgpu {:.5}", flex.rmse, wgpu.rmse);
    assert!(
        (flex.rmse - wgpu.rmse).abs() <= 0.005,
        "flex {} vs wgpu {}",
        flex.rmse,
        wgpu.rmse
    );
}

/// The configuration `recsys train --model NAME` starts from (the family's defaults for the
/// task, with `overrides`), sized for training on `train`: the defaults README promises.
pub fn defaults(name: &str, overrides: Overrides, ds: &Dataset, train: &Interactions) -> RunConfig {
    let mut config = setup::draft(name, None, overrides).unwrap();
    let x = &ds.interactions;
    setup::size(
        &mut config,
        x.n_users,
        x.n_items,
        ds.scale,
        (train.len(), train.mean_rating()),
        Default::default(),
    )
    .unwrap();
    config
}

#[test]
fn mf_with_biases_on_the_five_ml100k_folds() {
    let Some(dir) = real_data("ml-100k", "mf_with_biases_on_the_five_ml100k_folds") else {
        return;
    };
    // `--model mf` alone: biased MF with the family's defaults (README, "Defaults").
    let mut rmse = Vec::new();
    for k in 1..=5 {
        let (ds, train, valid, test) = fold(&dir, k);
        let c = defaults("mf", Overrides::default(), &ds, &train);
        rmse.push(
            train_and_score(
                c.model,
                c.train,
                BackendKind::Flex,
                &ds,
                &train,
                &valid,
                &test,
            )
            .rmse,
        );
    }
    let mean = rmse.iter().sum::<f64>() / 5.0;
    eprintln!("MF with biases (defaults), ML-100K u1..u5 RMSE {rmse:.4?}, mean {mean:.4}");
    assert!(
        mean <= 0.925,
        "mean RMSE {mean:.4} > 0.925 (Surprise SVD 0.934, SVD++ 0.919)"
    );
    assert!(rmse[0] <= 0.925, "u1 RMSE {:.4} > 0.925", rmse[0]);
}

#[test]
fn i_autorec_on_ml100k_u1() {
    let Some(dir) = real_data("ml-100k", "i_autorec_on_ml100k_u1") else {
        return;
    };
    let (ds, train, valid, test) = fold(&dir, 1);
    // `--model autorec` alone: I-AutoRec with the family's defaults (hidden 500, sigmoid, lambda
    // 100, input dropout 0.25, dropout 0.3; Adam 0.005 on a cosine schedule, 32 rows a batch).
    let c = defaults("autorec", Overrides::default(), &ds, &train);
    let m = train_and_score(
        c.model,
        c.train,
        BackendKind::Flex,
        &ds,
        &train,
        &valid,
        &test,
    );
    eprintln!("I-AutoRec, ML-100K u1 RMSE {:.4}", m.rmse);
    assert!(
        m.rmse <= 0.900,
        "RMSE {:.4} > 0.900 (GC-MC 0.905, GLocal-K 0.889)",
        m.rmse
    );
}
