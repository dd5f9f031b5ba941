//! ML-100K u1.base / u1.test quality check (not a test; the best epoch is picked on u1.test):
//!
//! ```text
//! cargo run --release -p recsys-train --example quality -- FAMILY key=value...
//! # I-AutoRec, RMSE 0.901 (best epoch 91, ~1 min on 2 cores):
//! ... -- autorec hidden=500 l2=100 dropout=0.5 lr=0.005 cosine=1 batch=32 epochs=100
//! # biased MF, RMSE 0.921:
//! ... -- mf dim=16 l2=0.08 std=0.01 lr=0.001 batch=512 epochs=40
//! ```
//!
//! Families: `mf`, `autorec` (item-based), `uautorec` (user-based). Keys: `epochs`, `batch`, `lr`,
//! `wd`, `alg=sgd|rmsprop` (`momentum`), `cosine=1`; MF: `dim`, `l2`, `std`, `sigmoid=1`;
//! AutoRec: `hidden`, `deep=1` (1500-500-1500), `l2`, `dropout`, `relu=1`.

use std::collections::HashMap;
use std::path::Path;

use std::sync::Arc;

use burn::module::Module;
use recsys_models::{Activation, AutoRecBase, AutoRecConfig, EmbeddingInit, MfConfig, MfOutput};
use recsys_train::{
    Algorithm, BackendKind, LrSchedule, OptimizerConfig, TrainConfig, Trainer, device,
    hidden_ratings_check,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let family = args.first().cloned().unwrap_or_else(|| "mf".into());
    let kv: HashMap<String, String> = args[1..]
        .iter()
        .filter_map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let get = |k: &str, d: f64| kv.get(k).map(|v| v.parse::<f64>().unwrap()).unwrap_or(d);
    let dir = Path::new("/work/shared/data/ml-100k");
    let ds = recsys_data::load(dir, &Default::default()).unwrap();
    let (train, test) = recsys_data::ml100k_fold(dir, 1, &ds.ids).unwrap();
    let device = device(BackendKind::Flex, 0).unwrap();
    let cfg = TrainConfig {
        epochs: get("epochs", 40.0) as usize,
        batch_size: get("batch", 256.0) as usize,
        patience: None,
        optimizer: OptimizerConfig {
            lr: get("lr", 1e-3),
            weight_decay: get("wd", 0.0) as f32,
            algorithm: match kv.get("alg").map(String::as_str) {
                Some("sgd") => Algorithm::Sgd {
                    momentum: get("momentum", 0.0),
                    nesterov: false,
                },
                Some("rmsprop") => Algorithm::RmsProp {
                    alpha: 0.9,
                    momentum: 0.0,
                    epsilon: 1e-7,
                },
                _ => Algorithm::default(),
            },
            schedule: if get("cosine", 0.0) > 0.0 {
                LrSchedule::Cosine { min_lr: 0.0 }
            } else {
                LrSchedule::Constant
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let trainer = Trainer::new(cfg).with_rating_scale((1.0, 5.0));
    let t0 = std::time::Instant::now();
    let best = match family.as_str() {
        "mf" => {
            let model = MfConfig::new(train.n_users, train.n_items)
                .with_dim(get("dim", 64.0) as usize)
                .with_bias(true)
                .with_global_mean(train.mean_rating() as f32)
                .with_l2(get("l2", 0.05) as f32)
                .with_init(EmbeddingInit::Normal {
                    std: get("std", 0.05),
                })
                .with_output(if get("sigmoid", 0.0) > 0.0 {
                    MfOutput::ScaledSigmoid
                } else {
                    MfOutput::Linear
                })
                .init(&device)
                .unwrap();
            let o = trainer
                .fit(model, &train, Some(&test), &device, None)
                .unwrap();
            (o.best_epoch, o.best_valid)
        }
        "autorec" | "uautorec" => {
            let base = if family == "autorec" {
                AutoRecBase::Item
            } else {
                AutoRecBase::User
            };
            let mut hidden = vec![get("hidden", 500.0) as usize];
            if get("deep", 0.0) > 0.0 {
                hidden = vec![1500, 500, 1500];
            }
            let model = AutoRecConfig::new(train.n_users, train.n_items)
                .with_base(base)
                .with_hidden(hidden)
                .with_l2(get("l2", 1.0) as f32)
                .with_dropout(get("dropout", 0.0))
                .with_activation(if get("relu", 0.0) > 0.0 {
                    Activation::Relu
                } else {
                    Activation::Sigmoid
                })
                .init(&device)
                .unwrap();
            let rows = Arc::new(model.rows_of(&train));
            let model = model.with_inputs(rows.clone());
            let o = trainer
                .fit_on(model, &*rows, Some(&test), &device, None)
                .unwrap();
            let known = recsys_data::Interactions::concat(&[&train, &test]);
            let plain = device.clone().without_autodiff();
            let h = hidden_ratings_check(
                &o.model.valid(),
                &known,
                2000,
                666,
                Some((1.0, 5.0)),
                &plain,
            );
            println!("hidden ratings (2000 of train+test): rmse {:.4}", h.rmse);
            (o.best_epoch, o.best_valid)
        }
        other => panic!("unknown family {other}"),
    };
    println!(
        "{family} {kv:?}: best epoch {} rmse {:.4} ({:.0}s)",
        best.0,
        best.1.unwrap().rmse,
        t0.elapsed().as_secs_f64()
    );
}
