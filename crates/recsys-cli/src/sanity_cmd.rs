//! `recsys sanity overfit|noise`: the NeuMF notebook's two debugging checks, each ending with a
//! clear PASS or FAIL line (and a non-zero exit on FAIL).
//!
//! - `overfit`: a model trained on a tiny subset of the ratings, without regularisation, must
//!   drive its training MSE near zero (below `--threshold` times the subset's rating variance).
//!   If it cannot, the model or the training loop is broken.
//! - `noise`: the same pairs with ratings replaced by seeded uniform noise on the rating scale.
//!   No model can predict noise, so the validation MSE must stay near the noise variance
//!   `(max - min)² / 12` (between 0.9 and 1.5 times it). Far below means the validation data
//!   leaks into training; far above means training diverges. Real ratings, by contrast, are
//!   learnable: that is what makes the data informative.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recsys_data::{SplitMethod, split};
use recsys_train::{
    BackendKind, DataShape, ModelConfig, OptimizerConfig, RunConfig, TrainConfig, train_run,
};

use crate::args::BackendArgs;
use crate::data_cmd::SourceArgs;

#[derive(Subcommand)]
pub enum SanityCommand {
    /// Train on a tiny subset until the training loss is near zero.
    Overfit(SanityArgs),
    /// Train on random ratings: the validation loss must stay near the noise variance.
    Noise(SanityArgs),
}

#[derive(Args)]
pub struct SanityArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// mf (with biases) or gmf, mlp, neumf (rating output on the data's scale).
    #[arg(long, default_value = "neumf", value_parser = crate::train_cmd::model_name)]
    model: String,
    /// overfit: ratings in the subset. noise: ratings used (all when absent).
    #[arg(long)]
    size: Option<usize>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value = "0.01")]
    lr: f64,
    /// overfit: the largest final training MSE that passes, as a share of the subset's rating
    /// variance.
    #[arg(long, default_value = "0.05")]
    threshold: f64,
    #[arg(long, default_value = "42")]
    seed: u64,
    #[command(flatten)]
    backend: BackendArgs,
    /// Keep the sanity run in this directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(command: SanityCommand) -> Result<()> {
    let (overfit, args) = match command {
        SanityCommand::Overfit(a) => (true, a),
        SanityCommand::Noise(a) => (false, a),
    };
    let ds = args.source.open()?;
    let (lo, hi) = ds.scale;
    let all = &ds.interactions;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let pick = |n: usize, rng: &mut StdRng| -> Vec<usize> {
        let mut rows: Vec<usize> = (0..all.len()).collect();
        for j in 0..n.min(rows.len()) {
            let k = rng.random_range(j..rows.len());
            rows.swap(j, k);
        }
        rows.truncate(n);
        rows.sort_unstable();
        rows
    };
    let (train, valid) = if overfit {
        let n = args.size.unwrap_or(64);
        if n == 0 {
            bail!("--size must be at least 1");
        }
        (all.select(&pick(n, &mut rng)), None)
    } else {
        let base = match args.size {
            Some(n) => all.select(&pick(n, &mut rng)),
            None => all.clone(),
        };
        let mut noisy = base.clone();
        for r in noisy.ratings.iter_mut() {
            *r = rng.random_range(lo..=hi);
        }
        let method = SplitMethod::Random {
            valid: "0.1".parse()?,
            test: "0".parse()?,
        };
        let s = split(&noisy, &method, args.seed)?;
        (s.train, Some(s.valid))
    };
    let shape = DataShape {
        n_users: all.n_users,
        n_items: all.n_items,
        scale: (lo, hi),
        mean: train.mean_rating(),
        implicit: false,
    };
    let model = ModelConfig::sanity(&args.model, &shape, args.seed)?;
    let mut train_cfg = TrainConfig {
        epochs: args.epochs.unwrap_or(if overfit { 300 } else { 10 }),
        batch_size: if overfit { 16 } else { 256 },
        seed: args.seed,
        patience: None,
        optimizer: OptimizerConfig {
            lr: args.lr,
            ..OptimizerConfig::default()
        },
        ..TrainConfig::default()
    };
    if !overfit {
        train_cfg.optimizer.lr = args.lr.min(0.001);
    }
    let backend = args.backend.backend.unwrap_or(BackendKind::Flex);
    let config = RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: train_cfg,
        backend,
        device_index: args.backend.device_index.unwrap_or(0),
        rating_scale: [lo, hi],
        task: Default::default(),
        data: recsys_train::DataRecipe {
            source: args.source.data.clone(),
            ..Default::default()
        },
    };
    let (dir, temporary) = match &args.out {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("recsys-sanity-{}", std::process::id())),
            true,
        ),
    };
    let outcome = train_run(&dir, &config, &ds.ids, &train, valid.as_ref(), true);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let summary = outcome?;
    let last = summary.history.last().expect("at least one epoch");
    if overfit {
        let var = variance(&train.ratings);
        let mse = last.train_loss - last.train_penalty;
        let limit = args.threshold * var;
        let pass = mse <= limit;
        println!(
            "{}: overfit {} ratings with {}: training mse {mse:.4} after {} epochs (limit {limit:.4} \
             = {} x the subset's rating variance {var:.4})",
            if pass { "PASS" } else { "FAIL" },
            train.len(),
            args.model,
            last.epoch,
            args.threshold
        );
        if !pass {
            bail!("the model could not overfit a tiny subset: check the model and the loop");
        }
    } else {
        let var = ((hi - lo) as f64).powi(2) / 12.0;
        let best = summary.best_valid.expect("validated").mse;
        let pass = (0.9 * var..=1.5 * var).contains(&best);
        println!(
            "{}: noise with {}: best validation mse {best:.4} vs noise variance {var:.4} \
             (pass between {:.4} and {:.4}); training mse {:.4}",
            if pass { "PASS" } else { "FAIL" },
            args.model,
            0.9 * var,
            1.5 * var,
            last.train_loss - last.train_penalty
        );
        if !pass {
            bail!(if best < 0.9 * var {
                "the model predicts noise better than chance: validation data leaks into training"
            } else {
                "the validation loss on noise is far above its variance: training diverges"
            });
        }
    }
    Ok(())
}

fn variance(v: &[f32]) -> f64 {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n
}
