use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use recsys_data::{IdMap, Interactions, Vocab};
use recsys_models::{
    AutoRecBase, AutoRecConfig, MfOutput, NcfConfig, NcfKind, RecommenderNetConfig,
};

use super::*;
use crate::config::{DataRecipe, RunConfig};
use crate::device::{BackendKind, device};
use crate::eval::predict;
use crate::family::{
    AnyModel, ModelConfig, NcfSetup, Pretrained, RegressorSetup, ncf_from_pretrained,
    regressor_config_for_mf_run, regressor_from_mf_run,
};
use crate::loaded::{LoadedRun, load_run};
use crate::run_dir::{Checkpoint, RunDir};
use crate::task::Task;
use crate::trainer::Trainer;
use crate::trainer::tests::{mf_config, synthetic, train_config};

fn ids(n_users: usize, n_items: usize) -> IdMap {
    IdMap {
        users: Vocab::from_raw((0..n_users).map(|k| format!("u{k}")).collect()).unwrap(),
        items: Vocab::from_raw((0..n_items).map(|k| format!("i{k}")).collect()).unwrap(),
    }
}

#[test]
fn save_then_load_gives_identical_predictions() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let device = device(BackendKind::Flex, 0).unwrap();
    let run = RunDir::create(tmp.path().join("run")).unwrap();
    let config = mf_config(&train, MfOutput::Logit);
    let model = config.init(&device).unwrap();
    let o = Trainer::new(train_config(3))
        .quiet(true)
        .fit(model, &train, Some(&valid), &device, Some(&run))
        .unwrap();
    let plain = device.clone().without_autodiff();
    let want = predict(&o.model.valid(), &valid.users, &valid.items, 64, &plain);
    let loaded = run
        .load_model(config.init(&plain).unwrap(), Checkpoint::Best)
        .unwrap();
    let got = predict(&loaded, &valid.users, &valid.items, 64, &plain);
    assert_eq!(want, got);
    let read = run.read_metrics().unwrap();
    assert_eq!(read.len(), o.history.len());
    for (a, b) in read.iter().zip(&o.history) {
        assert_eq!(a.epoch, b.epoch);
        assert!((a.train_loss - b.train_loss).abs() < 1e-12);
    }
}

#[test]
fn train_run_then_load_run() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mf-run");
    let config = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model: ModelConfig::Mf(mf_config(&train, MfOutput::Linear)),
        train: train_config(4),
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [1.0, 5.0],
        task: Task::Rating,
        data: DataRecipe {
            source: "synthetic".into(),
            ..DataRecipe::default()
        },
    };
    let summary = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
    for f in [
        "config.toml",
        "idmap.json",
        "metrics.jsonl",
        "manifest.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let loaded = load_run(&dir, Checkpoint::Best, None).unwrap();
    assert_eq!(loaded.ids.user("u3").unwrap(), 3);
    assert_eq!(loaded.evaluate(&valid), summary.best_valid.unwrap());
    let last = load_run(&dir, Checkpoint::Last, Some((BackendKind::Ndarray, 0))).unwrap();
    let m = last.evaluate(&valid);
    let want = summary.history.last().unwrap().valid.unwrap();
    assert!(
        (m.rmse - want.rmse).abs() < 1e-4,
        "{} vs {}",
        m.rmse,
        want.rmse
    );
    let scores = loaded.score_all(&[0, 5]);
    assert_eq!(scores.len(), 2 * loaded.n_items());
    let pairs = loaded.predict(&[5], &[7]);
    assert!((scores[20 + 7] - pairs[0]).abs() < 1e-5);
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(text.contains("family = \"mf\""), "{text}");
}

fn run_config(model: ModelConfig, epochs: usize) -> RunConfig {
    RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: train_config(epochs),
        backend: BackendKind::Flex,
        device_index: 0,
        rating_scale: [1.0, 5.0],
        task: Task::Rating,
        data: DataRecipe::default(),
    }
}

fn baseline(train: &Interactions, valid: &Interactions) -> f64 {
    let mean = train.mean_rating() as f32;
    crate::metrics::rmse(&vec![mean; valid.len()], &valid.ratings)
}

#[test]
fn autorec_both_bases_learn_save_and_load() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    for base in [AutoRecBase::Item, AutoRecBase::User] {
        let dir = tmp.path().join(format!("{base:?}"));
        let model = AutoRecConfig::new(30, 20)
            .with_base(base)
            .with_hidden(vec![16])
            // No dropout: tests run concurrently and Burn's CPU generator is process-wide,
            // so random draws here would depend on the other tests.
            .with_dropout(0.0)
            .with_input_dropout(0.0)
            .with_l2(1.0);
        let mut config = run_config(ModelConfig::AutoRec(model), 60);
        config.train.batch_size = 4;
        config.train.optimizer.lr = 0.01;
        let s = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
        let rmse = s.best_valid.unwrap().rmse;
        assert!(rmse < 0.95 * baseline(&train, &valid), "{base:?}: {rmse}");
        let loaded = load_run(&dir, Checkpoint::Best, None).unwrap();
        assert_eq!(loaded.evaluate(&valid), s.best_valid.unwrap());
        let scores = loaded.score_all(&[3]);
        let pair = loaded.predict(&[3], &[11]);
        assert!((scores[11] - pair[0]).abs() < 1e-5);
        // A new user given user 3's training ratings as a history: U-AutoRec reads it as its
        // input row, so the recommendations are user 3's; I-AutoRec cannot fold users in.
        let history: Vec<(u32, f32)> = (0..train.len())
            .filter(|&k| train.users[k] == 3)
            .map(|k| (train.items[k], train.ratings[k]))
            .collect();
        let mut seen: Vec<u32> = history.iter().map(|h| h.0).collect();
        seen.sort_unstable();
        let folded = loaded.top_k_for_history(&history, 5, &seen);
        match base {
            AutoRecBase::User => {
                let known = loaded.top_k(&[3], 5, Some(&[&seen])).remove(0);
                assert_eq!(folded, Some(known));
            }
            AutoRecBase::Item => assert_eq!(folded, None),
        }
    }
}

#[test]
fn recommender_net_learns() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let model = RecommenderNetConfig::new(30, 20)
        .with_embedding_dim(8)
        .with_hidden(vec![16])
        .with_dropout(0.1)
        .with_input_dropout(0.0);
    let config = run_config(ModelConfig::RecommenderNet(model), 40);
    let s = train_run(
        &tmp.path().join("rn"),
        &config,
        &ids(30, 20),
        &train,
        Some(&valid),
        true,
    )
    .unwrap();
    let (first, last) = (
        s.history[0].train_loss,
        s.history.last().unwrap().train_loss,
    );
    assert!(last < 0.7 * first, "loss {first} -> {last}");
    assert!(s.best_valid.unwrap().rmse < 0.95 * baseline(&train, &valid));
}

#[test]
fn regressor_reads_frozen_mf_embeddings() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let mf_dir = tmp.path().join("mf");
    let mf = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 20);
    train_run(&mf_dir, &mf, &ids(30, 20), &train, Some(&valid), true).unwrap();
    let regressor = regressor_config_for_mf_run(&mf_dir)
        .unwrap()
        .with_hidden(vec![8, 4]);
    assert_eq!((regressor.n_users, regressor.embedding_dim), (30, 4));
    let config = run_config(
        ModelConfig::Regressor(RegressorSetup {
            mf_run: mf_dir.clone(),
            regressor: regressor.clone(),
        }),
        30,
    );
    let dir = tmp.path().join("regressor");
    let s = train_run(&dir, &config, &ids(30, 20), &train, Some(&valid), true).unwrap();
    let (first, last) = (
        s.history[0].train_loss,
        s.history.last().unwrap().train_loss,
    );
    assert!(last < first, "loss {first} -> {last}");
    // The tables after training are exactly the MF's.
    let table = |run: &LoadedRun| match &run.model {
        AnyModel::Mf(m) => (m.user_embedding.table(), m.item_embedding.table()),
        AnyModel::Regressor(m) => (m.user_embedding.table(), m.item_embedding.table()),
        _ => unreachable!(),
    };
    let want = table(&load_run(&mf_dir, Checkpoint::Best, None).unwrap());
    let got = table(&load_run(&dir, Checkpoint::Last, None).unwrap());
    assert_eq!(want.0.into_data(), got.0.into_data());
    assert_eq!(want.1.into_data(), got.1.into_data());
    // Another id map is refused, naming the difference.
    let device = device(BackendKind::Flex, 0).unwrap();
    let mut other = ids(30, 20);
    other.items = Vocab::from_raw((0..20).map(|k| format!("j{k}")).collect()).unwrap();
    let err = regressor_from_mf_run(&mf_dir, &other, &regressor, &device).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("items") && text.contains("\"i0\"") && text.contains("\"j0\""),
        "{text}"
    );
}

#[test]
fn resume_continues_and_appends() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let config = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 3);
    let ids = ids(30, 20);
    train_run(&dir, &config, &ids, &train, Some(&valid), true).unwrap();
    for f in [
        "checkpoints/optimizer-e0003.bpk",
        "loss.svg",
        "loss.png",
        "rmse.svg",
        "rmse.png",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // One chart of training and validation: the validation MSE beside the training loss.
    let loss = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(
        loss.contains("validation mse") && loss.contains("training loss"),
        "{loss}"
    );
    let more = |model: Option<&str>, n: usize| ResumeOptions {
        model: model.map(str::to_string),
        more_epochs: Some(n),
        quiet: true,
        ..ResumeOptions::default()
    };
    let s = resume_run(&dir, &more(Some("mf"), 2), &ids, &train, Some(&valid)).unwrap();
    let epochs: Vec<usize> = RunDir::open(&dir)
        .unwrap()
        .read_metrics()
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(epochs, vec![1, 2, 3, 4, 5]);
    assert_eq!(s.history.len(), 5);
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(text.contains("epochs = 5"), "{text}");
    // Resuming continues where the run stopped: equal to 5 epochs in one go.
    let straight = tmp.path().join("straight");
    let config5 = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 5);
    let t = train_run(&straight, &config5, &ids, &train, Some(&valid), true).unwrap();
    let (a, b) = (s.history[4].train_loss, t.history[4].train_loss);
    assert!((a - b).abs() < 1e-3 * b, "resumed {a} vs straight {b}");

    let err = resume_run(&dir, &more(Some("autorec"), 1), &ids, &train, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot resume a `mf` run as `autorec`"),
        "{err}"
    );
    let err = resume_run(&tmp.path().join("nope"), &more(None, 1), &ids, &train, None).unwrap_err();
    assert!(err.to_string().contains("not a run directory"), "{err}");
    // Files the manifest names are checked: a changed optimiser state or missing weights are
    // errors naming the file.
    let optim = dir.join("checkpoints/optimizer-e0005.bpk");
    let mut bytes = std::fs::read(&optim).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&optim, &bytes).unwrap();
    let err = resume_run(&dir, &more(None, 1), &ids, &train, None).unwrap_err();
    assert!(
        err.to_string().contains("optimizer-e0005.bpk") && err.to_string().contains("checksum"),
        "{err}"
    );
    std::fs::remove_file(dir.join("checkpoints/model-e0005.bpk")).unwrap();
    let err = resume_run(&dir, &more(None, 1), &ids, &train, None).unwrap_err();
    assert!(err.to_string().contains("model-e0005.bpk"), "{err}");
}

#[test]
fn refit_trains_on_train_and_valid_for_the_best_epoch_count() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut config = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 8);
    config.train.optimizer.schedule = crate::optim::LrSchedule::Cosine { min_lr: 0.0 };
    config.train.optimizer.lr = 0.2;
    config.train.refit = true;
    let ids = ids(30, 20);
    let s = train_run(&dir, &config, &ids, &train, Some(&valid), true).unwrap();
    let selection = RunDir::open(dir.join(SELECTION_DIR))
        .unwrap()
        .read_metrics()
        .unwrap();
    assert_eq!(selection.len(), 8);
    let best = selection.iter().rfind(|r| r.best).unwrap();
    assert_eq!(s.best_epoch, best.epoch);
    let (a, b) = (s.best_valid.unwrap().rmse, best.valid.unwrap().rmse);
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    // The refit run: the best epoch's number of epochs, no validation, and the selection
    // run's learning rates (the schedule laid out over all 8 epochs, stopped there; the
    // rates are per step, and the refit run has more steps per epoch, so they agree closely).
    let refit = RunDir::open(&dir).unwrap().read_metrics().unwrap();
    assert_eq!(refit.len(), best.epoch);
    assert_eq!(s.history.len(), best.epoch);
    for (a, b) in refit.iter().zip(&selection) {
        assert!((a.lr - b.lr).abs() < 0.01 * 0.2, "{} vs {}", a.lr, b.lr);
        assert!(a.valid.is_none());
    }
    // Its weights are those of a plain run on both parts stopped at the best epoch, and
    // differ from the selection run's.
    let both = Interactions::concat(&[&train, &valid]);
    let mut plain = config.clone();
    plain.train.refit = false;
    let want_dir = tmp.path().join("want");
    train_into(
        &want_dir,
        &plain,
        &ids,
        &both,
        None,
        true,
        Some(best.epoch),
        true,
        None,
    )
    .unwrap();
    let got = load_run(&dir, Checkpoint::Best, None).unwrap();
    let want = load_run(&want_dir, Checkpoint::Best, None).unwrap();
    let chosen = load_run(&dir.join(SELECTION_DIR), Checkpoint::Best, None).unwrap();
    let p = got.predict(&valid.users, &valid.items);
    assert_eq!(p, want.predict(&valid.users, &valid.items));
    assert_ne!(p, chosen.predict(&valid.users, &valid.items));
    // Having seen the validation ratings, the refit model fits them better.
    assert!(got.evaluate(&valid).rmse < chosen.evaluate(&valid).rmse);

    let options = ResumeOptions {
        more_epochs: Some(2),
        quiet: true,
        ..ResumeOptions::default()
    };
    let err = resume_run(&dir, &options, &ids, &train, Some(&valid)).unwrap_err();
    assert!(err.to_string().contains("cannot be resumed"), "{err}");
    let err = train_run(&tmp.path().join("x"), &config, &ids, &train, None, true).unwrap_err();
    assert!(
        err.to_string().contains("refit needs a validation part"),
        "{err}"
    );
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn neumf_starts_its_gmf_branch_from_an_mf_run() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let ids = ids(30, 20);
    let train_dir = |name: &str, model| {
        let dir = tmp.path().join(name);
        train_run(
            &dir,
            &run_config(model, 2),
            &ids,
            &train,
            Some(&valid),
            true,
        )
        .unwrap();
        dir
    };
    let mf_dir = train_dir("mf", ModelConfig::Mf(mf_config(&train, MfOutput::Linear)));
    let mlp_dir = train_dir(
        "mlp",
        ModelConfig::Ncf(NcfSetup {
            ncf: NcfConfig::new(30, 20)
                .with_kind(NcfKind::Mlp)
                .with_mlp_layers(vec![8, 4]),
            pretrained: None,
        }),
    );
    let pretrained = Pretrained {
        gmf: mf_dir.clone(),
        mlp: mlp_dir,
    };
    let neumf = |embedding_dim: usize| {
        let config = NcfConfig::new(30, 20)
            .with_embedding_dim(embedding_dim)
            .with_mlp_layers(vec![8, 4])
            .with_alpha(1.0);
        let device = device(BackendKind::Flex, 0).unwrap();
        ncf_from_pretrained(&config, &pretrained, &ids, &device)
    };
    // With alpha 1 the MLP branch is weighted 0: NeuMF's logits are the MF's.
    let m = neumf(4 + 2).unwrap();
    let mf = match load_run(&mf_dir, Checkpoint::Best, None).unwrap().model {
        AnyModel::Mf(m) => m,
        _ => unreachable!(),
    };
    let d = Device::flex();
    let (users, items) = (
        Tensor::from_ints([0, 7, 29, 3], &d),
        Tensor::from_ints([0, 19, 5, 5], &d),
    );
    let want: Vec<f32> = mf
        .logits(users.clone(), items.clone())
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let (users, items) = (
        Tensor::from_data(users.into_data(), &m.output.weight.device()),
        Tensor::from_data(items.into_data(), &m.output.weight.device()),
    );
    let got: Vec<f32> = m
        .logits_with_penalty(users, items, false)
        .0
        .into_data()
        .try_into_vec_as()
        .unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    // The GMF width must be the MF's factors + 2.
    let err = neumf(4).unwrap_err();
    assert!(err.to_string().contains("factors + 2"), "{err}");
}

#[test]
fn refit_starts_selection_runs_from_the_source_runs_selection_runs() {
    let (train, valid) = synthetic();
    let tmp = tempfile::tempdir().unwrap();
    let ids = ids(30, 20);
    let ncf = |kind| {
        NcfConfig::new(30, 20)
            .with_kind(kind)
            .with_embedding_dim(4)
            .with_mlp_layers(vec![8, 4])
            .with_output(MfOutput::Linear)
            .with_global_mean(train.mean_rating() as f32)
    };
    let run = |name: &str, kind, pretrained| {
        let mut c = run_config(
            ModelConfig::Ncf(NcfSetup {
                ncf: ncf(kind),
                pretrained,
            }),
            3,
        );
        c.train.refit = true;
        let dir = tmp.path().join(name);
        train_run(&dir, &c, &ids, &train, Some(&valid), true).unwrap();
        dir
    };
    let pretrained = Pretrained {
        gmf: run("gmf", NcfKind::Gmf, None),
        mlp: run("mlp", NcfKind::Mlp, None),
    };
    let neumf = run("neumf", NcfKind::Neumf, Some(pretrained.clone()));
    let pre = |dir: &Path| match RunDir::open(dir).unwrap().read_config::<RunConfig>() {
        Ok(RunConfig {
            model:
                ModelConfig::Ncf(NcfSetup {
                    pretrained: Some(p),
                    ..
                }),
            ..
        }) => p,
        _ => panic!("not a pretrained NeuMF run"),
    };
    let p = pre(&neumf.join(SELECTION_DIR));
    assert_eq!(p.gmf, pretrained.gmf.join(SELECTION_DIR));
    assert_eq!(p.mlp, pretrained.mlp.join(SELECTION_DIR));
    assert_eq!(pre(&neumf).gmf, pretrained.gmf);

    // A regressor on a refit MF run: its selection run reads the MF selection run's tables,
    // the regressor itself the refit MF's.
    let mut mf = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 3);
    mf.train.refit = true;
    let mf_dir = tmp.path().join("mf");
    train_run(&mf_dir, &mf, &ids, &train, Some(&valid), true).unwrap();
    let mut reg = run_config(
        ModelConfig::Regressor(RegressorSetup {
            mf_run: mf_dir.clone(),
            regressor: regressor_config_for_mf_run(&mf_dir).unwrap(),
        }),
        2,
    );
    reg.train.refit = true;
    let reg_dir = tmp.path().join("reg");
    train_run(&reg_dir, &reg, &ids, &train, Some(&valid), true).unwrap();
    let users = |dir: &Path| match load_run(dir, Checkpoint::Best, None).unwrap().model {
        AnyModel::Mf(m) => m.user_embedding.table().into_data(),
        AnyModel::Regressor(m) => m.user_embedding.table().into_data(),
        _ => unreachable!(),
    };
    let (mf_select, mf_refit) = (users(&mf_dir.join(SELECTION_DIR)), users(&mf_dir));
    assert_ne!(mf_select, mf_refit);
    assert_eq!(users(&reg_dir.join(SELECTION_DIR)), mf_select);
    assert_eq!(users(&reg_dir), mf_refit);
}

#[test]
fn hidden_ratings_are_predicted_without_being_read() {
    let (train, valid) = synthetic();
    let ids = ids(30, 20);
    let tmp = tempfile::tempdir().unwrap();
    let autorec = ModelConfig::AutoRec(AutoRecConfig::new(30, 20).with_hidden(vec![8]));
    let dir = tmp.path().join("autorec");
    train_run(&dir, &run_config(autorec, 3), &ids, &train, None, true).unwrap();
    let run = load_run(&dir, Checkpoint::Best, None).unwrap();
    let h = run.hidden_ratings(&[&train], &valid, 25, 1).unwrap();
    assert_eq!(h.n, 25);
    // The same pairs predicted by the model reading every rating, the hidden ones included:
    // AutoRec's predictions depend on what it reads, so the two differ.
    let (hidden, _) = crate::loaded::hidden_split(&valid, 25, 1);
    let all = Interactions::concat(&[&train, &valid]);
    let leaky = match run.model.reading(&all) {
        AnyModel::AutoRec(m) => predict(&m, &hidden.users, &hidden.items, 64, &run.device),
        _ => unreachable!(),
    };
    let leaky = crate::metrics::RatingMetrics::compute(&leaky, &hidden.ratings, Some((1.0, 5.0)));
    assert!(
        (leaky.rmse - h.rmse).abs() > 1e-6,
        "{} vs {}",
        leaky.rmse,
        h.rmse
    );
    // A model of weights alone: the check is its rating metrics on the hidden pairs.
    let dir = tmp.path().join("mf");
    let mf = ModelConfig::Mf(mf_config(&train, MfOutput::Linear));
    train_run(&dir, &run_config(mf, 2), &ids, &train, None, true).unwrap();
    let run = load_run(&dir, Checkpoint::Best, None).unwrap();
    let h = run.hidden_ratings(&[&train], &valid, 25, 1).unwrap();
    let direct = run.evaluate(&hidden);
    assert!((h.rmse - direct.rmse).abs() < 1e-9 && h.n == direct.n);
    assert!(run.hidden_ratings(&[&train], &valid, 0, 1).is_err());
}

#[test]
fn normalised_runs_learn_scaled_ratings_and_predict_on_the_rating_scale() {
    use recsys_data::{NormalizeKind, Normalizer};
    let (train, valid) = synthetic();
    let ids = ids(30, 20);
    let tmp = tempfile::tempdir().unwrap();
    for kind in [
        NormalizeKind::Max,
        NormalizeKind::Minmax,
        NormalizeKind::Center,
    ] {
        let mut config = run_config(ModelConfig::Mf(mf_config(&train, MfOutput::Linear)), 3);
        config.normalize = kind;
        crate::setup::size(
            &mut config,
            30,
            20,
            (1.0, 5.0),
            (train.len(), train.mean_rating()),
            DataRecipe::default(),
        )
        .unwrap();
        let n = config.normalizer;
        assert!(!n.is_none(), "{kind:?}");
        let ModelConfig::Mf(mf) = &config.model else {
            unreachable!()
        };
        // The model is sized for normalised ratings: its mean is the normalised mean.
        assert!((mf.global_mean - n.forward(train.mean_rating() as f32)).abs() < 1e-6);
        let dir = tmp.path().join(kind.name());
        let s = train_run(&dir, &config, &ids, &train, Some(&valid), true).unwrap();
        let run = load_run(&dir, Checkpoint::Best, None).unwrap();
        assert_eq!(run.config.normalizer, n, "recorded in config.toml");
        // Predictions come back on the rating scale: the validation RMSE the trainer recorded
        // (on inverted predictions) is what eval reports, and beats predicting the mean.
        let m = run.evaluate(&valid);
        assert!((m.rmse - s.best_valid.unwrap().rmse).abs() < 1e-6);
        assert!(
            m.rmse < 1.5 * baseline(&train, &valid),
            "{kind:?}: {}",
            m.rmse
        );
        let p = run.predict(&[0], &[0])[0];
        assert!((0.0..7.0).contains(&p), "{kind:?}: {p}");
    }
    assert_eq!(Normalizer::default(), Normalizer::None);
}
