//! Tests of the training loop. `synthetic`, `train_config` and `mf_config` serve the tests of
//! other modules too.

use super::*;
use crate::batch::index_tensor;
use crate::device::{BackendKind, device};
use crate::optim::{Algorithm, OptimizerConfig};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recsys_models::{MfConfig, MfOutput, RatingBatch};

/// A 30 x 20 rank-2 rating matrix on the 1..5 scale, ~60% observed, split 80/20.
pub(crate) fn synthetic() -> (Interactions, Interactions) {
    let (n_users, n_items) = (30usize, 20usize);
    let mut rng = StdRng::seed_from_u64(1);
    let u: Vec<[f32; 2]> = (0..n_users)
        .map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
        .collect();
    let v: Vec<[f32; 2]> = (0..n_items)
        .map(|_| [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)])
        .collect();
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for (a, ua) in u.iter().enumerate() {
        for (b, vb) in v.iter().enumerate() {
            if rng.random::<f32>() < 0.6 {
                let r = (3.0 + 1.5 * (ua[0] * vb[0] + ua[1] * vb[1]) * 1.5 + 0.3 * ua[0])
                    .clamp(1.0, 5.0);
                let row = (a as u32, b as u32, r);
                if rng.random::<f32>() < 0.8 {
                    tr.push(row)
                } else {
                    va.push(row)
                }
            }
        }
    }
    let build = |rows: Vec<(u32, u32, f32)>| {
        Interactions::new(
            rows.iter().map(|r| r.0).collect(),
            rows.iter().map(|r| r.1).collect(),
            rows.iter().map(|r| r.2).collect(),
            None,
            n_users,
            n_items,
        )
        .unwrap()
    };
    (build(tr), build(va))
}

pub(crate) fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        seed: 7,
        patience: None,
        optimizer: OptimizerConfig {
            lr: 0.03,
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(crate) fn mf_config(train: &Interactions, output: MfOutput) -> MfConfig {
    MfConfig::new(train.n_users, train.n_items)
        .with_embedding_dim(4)
        .with_bias(true)
        .with_output(output)
        .with_global_mean(train.mean_rating() as f32)
        .with_init(recsys_models::EmbeddingInit::Normal { std: 0.1 })
        .with_seed(3)
}

#[test]
fn stop_after_keeps_the_schedule_of_all_epochs() {
    let (train, valid) = synthetic();
    let device = crate::device::device(crate::device::BackendKind::Flex, 0).unwrap();
    let mut cfg = train_config(5);
    cfg.optimizer.schedule = crate::optim::LrSchedule::Cosine { min_lr: 0.0 };
    let config = mf_config(&train, MfOutput::Linear);
    let fit = |stop| {
        Trainer::new(cfg.clone())
            .quiet(true)
            .with_stop_after(stop)
            .fit(
                config.init(&device).unwrap(),
                &train,
                Some(&valid),
                &device,
                None,
            )
            .unwrap()
    };
    let (all, two) = (fit(None), fit(Some(2)));
    assert_eq!(all.history.len(), 5);
    assert_eq!(two.history.len(), 2);
    for (a, b) in two.history.iter().zip(&all.history) {
        assert_eq!(a.lr, b.lr);
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(a.valid, b.valid);
    }
    assert!(two.history[1].lr > all.history[4].lr);
}

fn baseline_rmse(train: &Interactions, valid: &Interactions) -> f64 {
    let mean = train.mean_rating() as f32;
    crate::metrics::rmse(&vec![mean; valid.len()], &valid.ratings)
}

fn fit_mf(kind: BackendKind, output: MfOutput, epochs: usize) -> TrainOutcome<recsys_models::Mf> {
    let (train, valid) = synthetic();
    let device = device(kind, 0).unwrap();
    let model = mf_config(&train, output).init(&device).unwrap();
    Trainer::new(train_config(epochs))
        .with_rating_scale((1.0, 5.0))
        .quiet(true)
        .fit(model, &train, Some(&valid), &device, None)
        .unwrap()
}

#[test]
fn mf_learns_on_flex_and_ndarray() {
    let (train, valid) = synthetic();
    let baseline = baseline_rmse(&train, &valid);
    for kind in [BackendKind::Flex, BackendKind::Ndarray] {
        for output in [MfOutput::Linear, MfOutput::Logit] {
            let o = fit_mf(kind, output, 40);
            let first = o.history.first().unwrap().train_loss;
            let last = o.history.last().unwrap().train_loss;
            let rmse = o.best_valid.unwrap().rmse;
            // BCE on soft labels has an entropy floor, so it falls less far than MSE.
            let factor = if output == MfOutput::Logit { 0.9 } else { 0.5 };
            assert!(
                last < factor * first,
                "{kind} {output:?}: loss {first} -> {last}"
            );
            assert!(
                rmse < 0.9 * baseline,
                "{kind} {output:?}: rmse {rmse} vs baseline {baseline}"
            );
        }
    }
}

#[test]
fn same_seed_gives_identical_metrics_on_flex() {
    let a = fit_mf(BackendKind::Flex, MfOutput::Linear, 5);
    let b = fit_mf(BackendKind::Flex, MfOutput::Linear, 5);
    let strip = |h: &[EpochRecord]| -> Vec<(f64, Option<RatingMetrics>)> {
        h.iter().map(|r| (r.train_loss, r.valid)).collect()
    };
    assert_eq!(strip(&a.history), strip(&b.history));
}

#[test]
fn profiling_times_every_phase_and_changes_no_result() {
    let (train, valid) = synthetic();
    let device = device(BackendKind::Flex, 0).unwrap();
    let fit = |profile: bool| {
        let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
        Trainer::new(TrainConfig {
            profile,
            ..train_config(2)
        })
        .quiet(true)
        .fit(model, &train, Some(&valid), &device, None)
        .unwrap()
        .history
    };
    let (plain, profiled) = (fit(false), fit(true));
    for (a, b) in plain.iter().zip(&profiled) {
        assert_eq!((a.train_loss, a.valid), (b.train_loss, b.valid));
        assert!(a.profile.is_none());
        let p = b.profile.as_ref().expect("a profile per epoch");
        let phases = [p.batch, p.forward, p.backward, p.optimizer, p.readback];
        assert!(phases.iter().all(|&s| s > 0.0), "{p:?}");
        // The phases cover the training steps, which take no longer than the epoch.
        assert!(
            phases.iter().sum::<f64>() <= b.seconds,
            "{p:?} vs {}",
            b.seconds
        );
    }
}

#[test]
fn early_stopping_and_best_epoch() {
    let (train, valid) = synthetic();
    let device = device(BackendKind::Flex, 0).unwrap();
    let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
    let mut cfg = train_config(200);
    cfg.patience = Some(2);
    cfg.optimizer.lr = 0.2;
    let o = Trainer::new(cfg)
        .quiet(true)
        .fit(model, &train, Some(&valid), &device, None)
        .unwrap();
    assert!(o.stopped_early, "ran {} epochs", o.history.len());
    assert_eq!(o.history.len(), o.best_epoch + 2);
    let best = o.history[o.best_epoch - 1].valid.unwrap().rmse;
    assert!(o.history.iter().all(|r| r.valid.unwrap().rmse >= best));
}

#[test]
fn divergence_is_an_error_naming_epoch_and_step() {
    let (train, valid) = synthetic();
    let device = device(BackendKind::Flex, 0).unwrap();
    let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
    let mut cfg = train_config(3);
    cfg.optimizer.lr = 1e30;
    cfg.optimizer.algorithm = Algorithm::Sgd {
        momentum: 0.0,
        nesterov: false,
    };
    let err = Trainer::new(cfg)
        .quiet(true)
        .fit(model, &train, Some(&valid), &device, None)
        .unwrap_err();
    match &err {
        TrainError::NonFiniteLoss { epoch, step, .. } => assert!(*epoch >= 1 && *step >= 1),
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("epoch 1, step"), "{err}");
}

/// The fast lookup (`EmbeddingTable::lookup`, a gather whose backward is a parallel
/// scatter-add) against the plain one (`select`, what `nn::Embedding` does): the same
/// gradients, duplicates included, and the same loss curve over a few SGD steps, within
/// 1e-5 (atomic adds on wgpu reorder sums).
#[test]
fn gather_lookup_matches_select_in_gradients_and_loss_curve() {
    use burn::optim::SgdConfig;
    use burn::tensor::TensorData;
    use recsys_models::EmbeddingTableConfig;
    let mut kinds = vec![BackendKind::Flex, BackendKind::Ndarray];
    if !crate::device::wgpu_adapters().is_empty() {
        kinds.push(BackendKind::Wgpu);
    }
    let (n, dim, batch) = (40, 8, 300);
    let mut rng = StdRng::seed_from_u64(11);
    let ids: Vec<u32> = (0..batch).map(|_| rng.random_range(0..n as u32)).collect();
    let target: Vec<f32> = (0..batch * dim).map(|_| rng.random::<f32>()).collect();
    for kind in kinds {
        let d = device(kind, 0).unwrap();
        let idx = index_tensor(&ids, &d);
        let target = Tensor::<2>::from_data(TensorData::new(target.clone(), [batch, dim]), &d);
        let config = EmbeddingTableConfig::new(n, dim).with_seed(5);
        let (mut fast, mut plain) = (config.init(&d), config.init(&d));
        let (mut opt_fast, mut opt_plain) = (SgdConfig::new().init(), SgdConfig::new().init());
        for step in 0..5 {
            let loss_fast = (fast.lookup(idx.clone()) - target.clone()).square().mean();
            let loss_plain = (plain.weight.val().select(0, idx.clone()) - target.clone())
                .square()
                .mean();
            let read = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap();
            let scalar = |t: &Tensor<1>| t.clone().into_data().try_into_vec_as::<f32>().unwrap()[0];
            let (lf, lp) = (scalar(&loss_fast), scalar(&loss_plain));
            assert!(
                (lf - lp).abs() < 1e-5,
                "{kind} step {step}: loss {lf} vs {lp}"
            );
            let (gf, gp) = (loss_fast.backward(), loss_plain.backward());
            let (gf, gp) = (
                GradientsParams::from_grads(gf, &fast),
                GradientsParams::from_grads(gp, &plain),
            );
            let (a, b) = (
                read(gf.get::<2>(fast.weight.id).unwrap()),
                read(gp.get::<2>(plain.weight.id).unwrap()),
            );
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{kind} step {step}: gradients differ by {worst}"
            );
            assert!(a.iter().any(|&g| g != 0.0), "{kind}: a gradient at all");
            fast = opt_fast.step(0.5, fast, gf);
            plain = opt_plain.step(0.5, plain, gp);
        }
    }
}

#[test]
fn ncf_and_two_tower_train_alike_on_flex_and_wgpu() {
    use crate::batch::{ImplicitLoss, ImplicitPairs};
    use crate::ranking::RankingTask;
    use recsys_models::{NcfConfig, TwoTowerConfig};
    if crate::device::wgpu_adapters().is_empty() {
        eprintln!("ncf_and_two_tower_train_alike_on_flex_and_wgpu skipped: no wgpu adapter");
        return;
    }
    let (train, valid) = synthetic();
    let flex = device(BackendKind::Flex, 0).unwrap();
    let wgpu = device(BackendKind::Wgpu, 0).unwrap();
    let ranking = std::sync::Arc::new(RankingTask::factorized(&valid, &[5]).unwrap());
    let mut cfg = train_config(4);
    cfg.metric = "hr@5".parse().unwrap();
    cfg.optimizer.lr = 0.01;
    let trainer = Trainer::new(cfg).quiet(true).with_ranking(Some(ranking));
    // The same starting weights on both devices (`fork` copies them over), the same
    // batches and negatives: the losses agree up to the order of float sums.
    fn both<M: RatingModel<Batch = RatingBatch>>(
        trainer: &Trainer,
        model: M,
        src: &ImplicitPairs,
        flex: &Device,
        wgpu: &Device,
    ) -> (Vec<f64>, Vec<f64>) {
        let on_wgpu = model.clone().fork(wgpu);
        let losses = |o: TrainOutcome<M>| o.history.iter().map(|r| r.train_loss).collect();
        let a = trainer.fit(model, src, None, flex, None).unwrap();
        let b = trainer.fit(on_wgpu, src, None, wgpu, None).unwrap();
        (losses(a), losses(b))
    }
    let bce = ImplicitPairs::new(&train, ImplicitLoss::Bce { negatives: 2 }, 7).unwrap();
    let neumf = NcfConfig::new(30, 20)
        .with_embedding_dim(4)
        .with_mlp_layers(vec![8, 4])
        .init(&flex)
        .unwrap();
    let softmax = ImplicitPairs::new(&train, ImplicitLoss::InBatch, 7).unwrap();
    let tower = TwoTowerConfig::new(30, 20)
        .with_embedding_dim(8)
        .with_hidden(vec![8])
        .with_sum_loss(false)
        .init(&flex)
        .unwrap();
    for (name, (a, b)) in [
        ("neumf", both(&trainer, neumf, &bce, &flex, &wgpu)),
        ("two_tower", both(&trainer, tower, &softmax, &flex, &wgpu)),
    ] {
        assert!(a[3] < a[0], "{name} does not learn on flex: {a:?}");
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-3 * x.abs().max(1.0),
                "{name}: flex {a:?} vs wgpu {b:?}"
            );
        }
    }
}

#[test]
fn every_model_starts_alike_on_flex_and_wgpu() {
    use recsys_models::{
        AutoRecConfig, NcfConfig, NcfKind, RecommenderNetConfig, Scorer, TwoTowerConfig,
    };
    if crate::device::wgpu_adapters().is_empty() {
        eprintln!("every_model_starts_alike_on_flex_and_wgpu skipped: no wgpu adapter");
        return;
    }
    let (train, _) = synthetic();
    let flex = device(BackendKind::Flex, 0).unwrap().without_autodiff();
    let wgpu = device(BackendKind::Wgpu, 0).unwrap().without_autodiff();
    fn scores<M: Scorer>(m: &M, d: &Device) -> Vec<f32> {
        m.score_all(crate::batch::index_tensor(&[0, 7, 29], d))
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }
    let close = |name: &str, a: Vec<f32>, b: Vec<f32>| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{name}: {x} vs {y}"
            );
        }
    };
    let ncf = NcfConfig::new(30, 20)
        .with_embedding_dim(4)
        .with_mlp_layers(vec![8, 4]);
    close(
        "neumf",
        scores(&ncf.init(&flex).unwrap(), &flex),
        scores(&ncf.init(&wgpu).unwrap(), &wgpu),
    );
    let ncf = ncf.with_kind(NcfKind::Mlp);
    close(
        "mlp",
        scores(&ncf.init(&flex).unwrap(), &flex),
        scores(&ncf.init(&wgpu).unwrap(), &wgpu),
    );
    let tt = TwoTowerConfig::new(30, 20)
        .with_embedding_dim(8)
        .with_hidden(vec![8, 4]);
    close(
        "two_tower",
        scores(&tt.init(&flex).unwrap(), &flex),
        scores(&tt.init(&wgpu).unwrap(), &wgpu),
    );
    let rn = RecommenderNetConfig::new(30, 20).with_embedding_dim(8);
    close(
        "recnet",
        scores(&rn.init(&flex).unwrap(), &flex),
        scores(&rn.init(&wgpu).unwrap(), &wgpu),
    );
    let rows = std::sync::Arc::new(recsys_data::UserHistory::by_item(&train));
    let ar = AutoRecConfig::new(30, 20).with_hidden(vec![8]);
    close(
        "autorec",
        scores(&ar.init(&flex).unwrap().with_inputs(rows.clone()), &flex),
        scores(&ar.init(&wgpu).unwrap().with_inputs(rows), &wgpu),
    );
}

#[test]
fn wgpu_smoke() {
    let adapters = crate::device::wgpu_adapters();
    if adapters.is_empty() {
        eprintln!("wgpu_smoke skipped: no wgpu adapter on this machine");
        let err = device(BackendKind::Wgpu, 0).unwrap_err().to_string();
        assert!(err.contains("--backend flex"), "{err}");
        return;
    }
    eprintln!("wgpu adapters: {adapters:?}");
    let (train, valid) = synthetic();
    let device = device(BackendKind::Wgpu, 0).unwrap();
    eprintln!("wgpu_smoke on {}", crate::device::adapter_name(&device));
    let model = mf_config(&train, MfOutput::Linear).init(&device).unwrap();
    let o = Trainer::new(train_config(8))
        .quiet(true)
        .fit(model, &train, Some(&valid), &device, None)
        .unwrap();
    let first = o.history.first().unwrap().train_loss;
    let last = o.history.last().unwrap().train_loss;
    assert!(last.is_finite() && last < first, "loss {first} -> {last}");
    // Same initial weights and order as flex, so the first epoch agrees closely.
    let flex = fit_mf(BackendKind::Flex, MfOutput::Linear, 1);
    assert!((flex.history[0].train_loss - first).abs() < 1e-3 * first.max(1.0));
}
