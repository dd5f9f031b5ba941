//! Ranking quality on real MovieLens data (needs `RECSYS_DATA_DIR`; each test prints SKIP without
//! it): the NCF protocol, full ranking, TensorFlow Recommenders' retrieval tutorial, and NeuMF on
//! ratings. Every threshold here is one the project promises in README.md.

use std::path::Path;

use recsys::data::{
    Dataset, Interactions, LoadOptions, Size, SplitMethod, TestNegatives, UserHistory, load, split,
};
use recsys::models::{
    Activation, EmbeddingInit, MfConfig, MfOutput, NcfConfig, NcfKind, TwoTowerConfig,
};
use recsys::train::{
    Algorithm, BackendKind, Checkpoint, ImplicitLossKind, ImplicitTask, LoadedRun, LrSchedule,
    ModelConfig, NcfSetup, OptimizerConfig, Overrides, Pretrained, Protocol, RankingMetrics,
    RankingTask, RunConfig, Task, TaskKind, TrainConfig, load_run, train_run,
};

use crate::common::{
    per_seed_in_processes, quality_compare, quality_seeds, quality_seeds_or, real_data,
};
use crate::quality::{TRAINING, defaults, fold, train_and_score};

/// Trains `model` on `train` for the implicit `task`, validating on `valid`, into `dir`, and
/// returns the best weights (the refit model when `train_cfg.refit`).
fn implicit(
    dir: &Path,
    ds: &Dataset,
    model: ModelConfig,
    train_cfg: TrainConfig,
    task: ImplicitTask,
    train: &Interactions,
    valid: &Interactions,
) -> LoadedRun {
    let cfg = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: train_cfg,
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [0.0, 1.0],
        task: Task::Implicit(task),
        data: Default::default(),
    };
    trained(dir, ds, &cfg, train, valid)
}

/// Trains `cfg` on `train`, validating on `valid`, into `dir`, and returns the best weights.
fn trained(
    dir: &Path,
    ds: &Dataset,
    cfg: &RunConfig,
    train: &Interactions,
    valid: &Interactions,
) -> LoadedRun {
    let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    train_run(dir, cfg, &ds.ids, train, Some(valid), true).unwrap();
    load_run(dir, Checkpoint::Best, None).unwrap()
}

/// `recsys train --model NAME --task implicit --seed SEED`'s configuration for `train`.
fn implicit_defaults(name: &str, seed: u64, ds: &Dataset, train: &Interactions) -> RunConfig {
    let overrides = Overrides {
        task: Some(TaskKind::Implicit),
        seed: Some(seed),
        ..Overrides::default()
    };
    defaults(name, overrides, ds, train)
}

fn adam(lr: f64, epochs: usize, batch_size: usize, metric: &str) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size,
        patience: Some(5),
        metric: metric.parse().unwrap(),
        optimizer: OptimizerConfig {
            lr,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `c` with its shuffling and sampling seeded by `seed`.
fn seeded(mut c: TrainConfig, seed: u64) -> TrainConfig {
    c.seed = seed;
    c
}

fn adagrad(lr: f64, epochs: usize, batch_size: usize, metric: &str) -> TrainConfig {
    let mut c = adam(lr, epochs, batch_size, metric);
    c.optimizer.algorithm = Algorithm::Adagrad {
        lr_decay: 0.0,
        epsilon: 1e-7,
        initial_accumulator: 0.1,
    };
    c
}

fn ncf(ds: &Dataset, kind: NcfKind, embedding_dim: usize, layers: &[usize]) -> NcfConfig {
    let x = &ds.interactions;
    NcfConfig::new(x.n_users, x.n_items)
        .with_kind(kind)
        .with_embedding_dim(embedding_dim)
        .with_mlp_layers(layers.to_vec())
}

fn bce(negatives: usize, protocol: Protocol, ks: &[usize]) -> ImplicitTask {
    ImplicitTask {
        loss: ImplicitLossKind::Bce,
        negatives,
        protocol,
        ks: ks.to_vec(),
        ..Default::default()
    }
}

fn row(name: &str, m: &RankingMetrics, k: usize) -> (f64, f64) {
    let (hr, ndcg) = (
        m.get(&format!("hr@{k}")).unwrap(),
        m.get(&format!("ndcg@{k}")).unwrap(),
    );
    print_row(name, k, hr, ndcg);
    (hr, ndcg)
}

fn print_row(name: &str, k: usize, hr: f64, ndcg: f64) {
    eprintln!("  {name:<10} HR@{k} {hr:.4}  NDCG@{k} {ndcg:.4}");
}

#[test]
fn ncf_leave_last_out_on_ml100k() {
    let Some(dir) = real_data("ml-100k", "ncf_leave_last_out_on_ml100k") else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let x = &ds.interactions;
    // The NCF protocol: each user's latest rating to test, the one before validates the epochs.
    // The test's negatives are drawn once (seed 42) whatever seeds the models train with.
    let s = split(x, &SplitMethod::LeaveLastOut { valid: true }, 42).unwrap();
    let seen = UserHistory::new(x);
    let cases = TestNegatives::sample(&s.test, &seen, 99, 42).unwrap();
    let test = RankingTask::sampled(cases, &[10]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let task = bce(4, Protocol::Sampled, &[10]);
    // NeuMF starts from MF with biases (MF is GMF with h = 1, and validates higher than GMF) and
    // the MLP (dropout 0.2), alpha 0.85, then SGD 0.5; every run is refit for its best epoch
    // count. Chosen on validation over seeds 1, 2, 3 (BENCHMARKS.md, "Tried and not adopted").
    // GMF and BPR-MF, README's comparison rows, train only with `RECSYS_QUALITY_COMPARE=1`.
    let settings = |mut c: TrainConfig, seed: u64| {
        c.refit = true;
        seeded(c, seed)
    };
    let names = ["GMF", "MLP", "MF", "BPR-MF", "NeuMF", "NeuMF (defaults)"];
    let compare = quality_compare();
    let seeds = quality_seeds_or(&[1, 2, 3, 42]);
    // Each seed trains in a process of its own and reports `[hr, ndcg]` per model (NaN where
    // the model did not train).
    let per_seed = per_seed_in_processes(
        "ranking_quality::ncf_leave_last_out_on_ml100k",
        &seeds,
        |seed| {
            let tmp = tmp.path().join(seed.to_string());
            let mlp_dir = tmp.join("mlp");
            let branch = |kind: NcfKind, dir: &Path| {
                implicit(
                    dir,
                    &ds,
                    ModelConfig::Ncf(NcfSetup {
                        ncf: ncf(&ds, kind, 32, &[128, 64, 32, 16])
                            .with_l2(0.0001)
                            .with_dropout(if kind == NcfKind::Mlp { 0.2 } else { 0.0 })
                            .with_seed(seed),
                        pretrained: None,
                    }),
                    settings(adam(0.001, 20, 256, "hr@10"), seed),
                    task.clone(),
                    &s.train,
                    &s.valid,
                )
            };
            let gmf = compare.then(|| branch(NcfKind::Gmf, &tmp.join("gmf")));
            let mlp = branch(NcfKind::Mlp, &mlp_dir);
            // MF with user and item biases, 128 factors, BCE: GMF with h = 1, so it can start
            // NeuMF's GMF branch (width 128 + 2, see `Ncf::gmf_from_mf`).
            let mf_dir = tmp.join("mf");
            let mf = implicit(
                &mf_dir,
                &ds,
                ModelConfig::Mf(
                    MfConfig::new(x.n_users, x.n_items)
                        .with_embedding_dim(128)
                        .with_bias(true)
                        .with_output(MfOutput::Logit)
                        .with_rating_min(0.0)
                        .with_rating_max(1.0)
                        .with_l2(0.0001)
                        .with_l2_bias(Some(0.0))
                        .with_init(EmbeddingInit::Normal { std: 0.01 })
                        .with_seed(seed),
                ),
                settings(adam(0.001, 20, 256, "hr@10"), seed),
                task.clone(),
                &s.train,
                &s.valid,
            );
            // NeuMF from the pretrained MF (as its GMF branch) and MLP, then SGD (the paper's
            // pre-training, with MF for GMF).
            let mut sgd = settings(adam(0.5, 10, 256, "hr@10"), seed);
            sgd.optimizer.algorithm = Algorithm::Sgd {
                momentum: 0.0,
                nesterov: false,
            };
            let neumf = implicit(
                &tmp.join("neumf"),
                &ds,
                ModelConfig::Ncf(NcfSetup {
                    ncf: ncf(&ds, NcfKind::Neumf, 130, &[128, 64, 32, 16])
                        .with_l2(0.0001)
                        .with_alpha(0.85)
                        .with_seed(seed),
                    pretrained: Some(Pretrained {
                        gmf: mf_dir.clone(),
                        mlp: mlp_dir.clone(),
                    }),
                }),
                sgd,
                task.clone(),
                &s.train,
                &s.valid,
            );
            // `--model neumf --task implicit` alone (README, "Defaults"): GMF 32 and the MLP
            // from scratch; one seed, the defaults' target being for a fixed seed.
            let plain = (seed == DEFAULTS_SEED).then(|| {
                trained(
                    &tmp.join("neumf-defaults"),
                    &ds,
                    &implicit_defaults("neumf", seed, &ds, &s.train),
                    &s.train,
                    &s.valid,
                )
            });
            let bpr = compare.then(|| {
                implicit(
                    &tmp.join("bpr"),
                    &ds,
                    ModelConfig::Mf(
                        MfConfig::new(x.n_users, x.n_items)
                            .with_embedding_dim(32)
                            .with_l2(0.001)
                            .with_init(EmbeddingInit::Normal { std: 0.01 })
                            .with_seed(seed),
                    ),
                    settings(adam(0.005, 30, 256, "hr@10"), seed),
                    ImplicitTask {
                        loss: ImplicitLossKind::Bpr,
                        ..task.clone()
                    },
                    &s.train,
                    &s.valid,
                )
            });
            eprintln!("ML-100K leave-last-out, 99 sampled negatives, seed {seed}:");
            let mut out = Vec::new();
            for (k, run) in [gmf, Some(mlp), Some(mf), bpr, Some(neumf), plain]
                .iter()
                .enumerate()
            {
                let (hr, ndcg) = match run {
                    Some(run) => row(names[k], &run.rank(&test), 10),
                    None => (f64::NAN, f64::NAN),
                };
                out.extend([hr, ndcg]);
            }
            out
        },
    );
    let Some(per_seed) = per_seed else {
        return;
    };
    let mut sums = [None::<(f64, f64)>; 5];
    for values in &per_seed {
        let values = &values[..10];
        for (k, pair) in values.chunks(2).enumerate() {
            if !pair[0].is_nan() {
                let sum = sums[k].get_or_insert((0.0, 0.0));
                sum.0 += pair[0];
                sum.1 += pair[1];
            }
        }
    }
    let n = seeds.len() as f64;
    if seeds.len() > 1 {
        eprintln!("Mean over seeds {seeds:?}:");
        for (k, sum) in sums.iter().enumerate() {
            if let Some((hr, ndcg)) = sum {
                print_row(names[k], 10, hr / n, ndcg / n);
            }
        }
    }
    if let Some(k) = seeds.iter().position(|&seed| seed == DEFAULTS_SEED) {
        let hr = per_seed[k][10];
        assert!(
            hr >= HR_NEUMF_DEFAULTS,
            "NeuMF with its defaults, seed {DEFAULTS_SEED}: HR@10 {hr:.4} < {HR_NEUMF_DEFAULTS}"
        );
    }
    let (hr, ndcg) = sums[4].map(|(hr, ndcg)| (hr / n, ndcg / n)).unwrap();
    assert!(
        hr >= HR_NEUMF && ndcg >= NDCG_NEUMF,
        "NeuMF HR@10 {hr:.4} NDCG@10 {ndcg:.4} (NCF paper on ML-1M: 0.726 / 0.445)"
    );
}

/// The targets, checked on the mean over the test's seeds (by default 1, 2, 3, 42:
/// NeuMF HR@10 0.6835, NDCG@10 0.4002). They hold on that mean, not for every seed: seed 42
/// alone gives 0.6723 / 0.3998.
const HR_NEUMF: f64 = 0.68;

/// The target of `--model neumf --task implicit` with no other flag (seed 42: 0.6776).
const HR_NEUMF_DEFAULTS: f64 = 0.67;
const DEFAULTS_SEED: u64 = 42;
const NDCG_NEUMF: f64 = 0.40;

#[test]
fn full_ranking_on_ml100k_per_user_split() {
    let Some(dir) = real_data("ml-100k", "full_ranking_on_ml100k_per_user_split") else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let x = &ds.interactions;
    // 75/25 by user (Microsoft Recommenders' benchmark); 5% of each user's ratings validate.
    let s = split(
        x,
        &SplitMethod::PerUser {
            valid: 0.05,
            test: 0.25,
        },
        42,
    )
    .unwrap();
    let known = Interactions::concat(&[&s.train, &s.valid]);
    let test = RankingTask::full(&s.test, &known, &[10]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // NeuMF (README's comparison row, no threshold) trains only with `RECSYS_QUALITY_COMPARE=1`.
    let compare = quality_compare();
    let seeds = quality_seeds();
    let mut sums = [0.0; 2];
    for &seed in &seeds {
        let tmp = tmp.path().join(seed.to_string());
        // `--model two-tower` alone (README, "Defaults"): dimension 128, temperature 0.85 and
        // logQ (the best validation NDCG@10, 0.1496, of 14 variants of dimension 64-256,
        // temperature, learning rate and batch size); Adagrad 0.05, batches of 1,024, epochs
        // chosen by NDCG@10 on all items with known items left out.
        let tt = trained(
            &tmp.join("tt"),
            &ds,
            &implicit_defaults("two-tower", seed, &ds, &s.train),
            &s.train,
            &s.valid,
        );
        let neumf = compare.then(|| {
            implicit(
                &tmp.join("neumf"),
                &ds,
                ModelConfig::Ncf(NcfSetup {
                    ncf: ncf(&ds, NcfKind::Neumf, 32, &[128, 64, 32, 16]).with_seed(seed),
                    pretrained: None,
                }),
                seeded(adam(0.001, 20, 256, "ndcg@10"), seed),
                bce(4, Protocol::Full, &[10]),
                &s.train,
                &s.valid,
            )
        });
        eprintln!("ML-100K 75/25 by user, full ranking, training items excluded, seed {seed}:");
        if let Some(neumf) = &neumf {
            sums[0] += row("NeuMF", &neumf.rank(&test), 10).1;
        }
        sums[1] += row("two-tower", &tt.rank(&test), 10).1;
    }
    let n = seeds.len() as f64;
    let ndcg = sums[1] / n;
    if seeds.len() > 1 {
        let neumf = if compare {
            format!("NeuMF {:.4}, ", sums[0] / n)
        } else {
            String::new()
        };
        eprintln!("Mean NDCG@10 over seeds {seeds:?}: {neumf}two-tower {ndcg:.4}");
    }
    assert!(
        ndcg >= NDCG_FULL,
        "two-tower NDCG@10 {ndcg:.4} (Microsoft Recommenders: BPR 0.442, NCF 0.396)"
    );
}

/// The target for the best model. The two-tower model reaches 0.4474-0.4515 over seeds
/// 1, 2, 3, 42, mean 0.4501: the target holds on average, not for every seed.
const NDCG_FULL: f64 = 0.45;

/// The TFRS basic retrieval tutorial: every ML-100K rating a positive, movies keyed by title, a
/// seeded 80,000 / 20,000 split, dimension 32, Adagrad 0.1, batches of 8,192, 3 epochs; then the
/// best settings found (popularity correction, dimension 64, batches of 1,024, the epoch chosen
/// on 4,000 validation pairs carved from the training part).
#[test]
fn two_tower_retrieval_tutorial_on_ml100k() {
    let Some(dir) = real_data("ml-100k", "two_tower_retrieval_tutorial_on_ml100k") else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default())
        .unwrap()
        .items_by_title()
        .unwrap();
    let x = &ds.interactions;
    let s = split(
        x,
        &SplitMethod::Random {
            valid: Size::Count(0),
            test: Size::Count(20_000),
        },
        42,
    )
    .unwrap();
    let ks = [1, 5, 10, 50, 100];
    let test = RankingTask::factorized(&s.test, &ks).unwrap();
    let task = ImplicitTask {
        loss: ImplicitLossKind::Softmax,
        protocol: Protocol::Factorized,
        ks: ks.to_vec(),
        ..Default::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut three = adagrad(0.1, 3, 8192, "hr@100");
    three.patience = None;
    // No validation part in the tutorial: the test part is only reported, never used to choose.
    let cfg = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model: ModelConfig::TwoTower(
            TwoTowerConfig::new(x.n_users, x.n_items).with_remove_accidental_hits(false),
        ),
        train: three,
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [0.0, 1.0],
        task: Task::Implicit(task.clone()),
        data: Default::default(),
    };
    let tutorial = {
        let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
        train_run(
            &tmp.path().join("tutorial"),
            &cfg,
            &ds.ids,
            &s.train,
            None,
            true,
        )
        .unwrap();
        load_run(&tmp.path().join("tutorial"), Checkpoint::Last, None)
            .unwrap()
            .rank(&test)
    };
    let parts = split(
        &s.train,
        &SplitMethod::Random {
            valid: Size::Count(4_000),
            test: Size::Count(0),
        },
        42,
    )
    .unwrap();
    let best = implicit(
        &tmp.path().join("best"),
        &ds,
        ModelConfig::TwoTower(
            TwoTowerConfig::new(x.n_users, x.n_items)
                .with_embedding_dim(64)
                .with_logq(true),
        ),
        adagrad(0.1, 20, 1024, "hr@100"),
        task,
        &parts.train,
        &parts.valid,
    )
    .rank(&test);
    let line = |m: &RankingMetrics| {
        ks.iter()
            .map(|k| format!("top-{k} {:.4}", m.get(&format!("hr@{k}")).unwrap()))
            .collect::<Vec<_>>()
            .join("  ")
    };
    eprintln!("two-tower on ML-100K titles, 20,000 held-out pairs, factorized top-K accuracy:");
    eprintln!("  tutorial settings, 3 epochs: {}", line(&tutorial));
    eprintln!("  best settings:               {}", line(&best));
    let (t, b) = (tutorial.get("hr@100").unwrap(), best.get("hr@100").unwrap());
    assert!(
        t >= 0.23,
        "tutorial top-100 {t:.4} < 0.23 (TFRS: 0.19-0.23)"
    );
    assert!(
        b >= 0.30,
        "best top-100 {b:.4} < 0.30 (TFRS deep towers: 0.27-0.29)"
    );
}

#[test]
fn explicit_neumf_on_ml100k_u1() {
    let Some(dir) = real_data("ml-100k", "explicit_neumf_on_ml100k_u1") else {
        return;
    };
    let (ds, train, valid, test) = fold(&dir, 1);
    // Linear output, L2 0.0003, Adam 0.001 on a cosine schedule over 20 epochs: the best validation
    // RMSE (0.8959) of about 50 variants of output, L2, dimensions, inputs, dropout, learning rate,
    // batch size and schedule; then refit on the whole base file for the best epoch count.
    let seeds = quality_seeds();
    let mut sum = 0.0;
    for &seed in &seeds {
        let model = ncf(&ds, NcfKind::Neumf, 32, &[64, 32, 16])
            .with_activation(Activation::Relu)
            .with_l2(0.0003)
            .with_output(MfOutput::Linear)
            .with_rating_min(ds.scale.0)
            .with_rating_max(ds.scale.1)
            .with_global_mean(train.mean_rating() as f32)
            .with_seed(seed);
        let mut cfg = seeded(adam(0.001, 20, 256, "rmse"), seed);
        cfg.patience = None;
        cfg.optimizer.schedule = LrSchedule::Cosine { min_lr: 0.0 };
        cfg.refit = true;
        let m = train_and_score(
            ModelConfig::Ncf(NcfSetup {
                ncf: model,
                pretrained: None,
            }),
            cfg,
            BackendKind::Flex,
            &ds,
            &train,
            &valid,
            &test,
        );
        eprintln!(
            "NeuMF on ratings, ML-100K u1, seed {seed}: RMSE {:.4}",
            m.rmse
        );
        sum += m.rmse;
    }
    let rmse = sum / seeds.len() as f64;
    if seeds.len() > 1 {
        eprintln!("NeuMF on ratings, ML-100K u1, mean over seeds {seeds:?}: RMSE {rmse:.4}");
    }
    assert!(rmse <= 0.920, "RMSE {rmse:.4} > 0.920");
}
