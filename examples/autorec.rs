//! The AutoRec notebook: the most active users (60,000 on ML-20M), whole users held out for test,
//! a user-based AutoRec (one hidden layer of 1,500 ReLU units with dropout 0.2) and a deep one
//! (1500-500-1500) trained on observed ratings only, a latent-factor model with biases for
//! comparison, and the hidden-ratings test: hide 2,000 known ratings of the test users, rebuild
//! their rows from the rest, and score the hidden entries (RMSE, MAE, MAPE).
//!
//! ```sh
//! cargo run --release --example autorec                          # synthetic ML-1M-shaped data
//! cargo run --release --example autorec -- --data ~/.cache/recsys/ml-20m --backend wgpu
//! ```

use std::path::PathBuf;

use clap::Parser;
use recsys::data::{LoadOptions, Size, SplitMethod, open, split};
use recsys::models::{Activation, AutoRecBase, AutoRecConfig, MfConfig};
use recsys::train::{
    BackendKind, Checkpoint, ModelConfig, OptimizerConfig, RatingMetrics, RunConfig, TrainConfig,
    load_run, train_run,
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "synthetic:1m")]
    data: String,
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Keep the most active users (the notebook: 60,000).
    #[arg(long, default_value_t = 60_000)]
    top_users: usize,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value = "runs/autorec")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ds = open(&args.data, &LoadOptions::default())?.top_users(args.top_users);
    let x = &ds.interactions;
    // Whole users to test; 5% of the remaining users' ratings validate the epochs.
    let by_user = split(
        x,
        &SplitMethod::ByUser {
            valid: Size::Count(0),
            test: Size::Ratio(0.1),
        },
        42,
    )?;
    let parts = split(
        &by_user.train,
        &SplitMethod::Random {
            valid: Size::Ratio(0.05),
            test: Size::Count(0),
        },
        42,
    )?;
    println!(
        "{}: {} users x {} items, {} ratings; {} train, {} validation, {} test-user ratings",
        ds.source,
        x.n_users,
        x.n_items,
        x.len(),
        parts.train.len(),
        parts.valid.len(),
        by_user.test.len()
    );
    let config = |model, batch_size, optimizer| RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: TrainConfig {
            epochs: args.epochs,
            batch_size,
            patience: None,
            optimizer,
            ..Default::default()
        },
        backend: args.backend,
        device_index: 0,
        rating_scale: [ds.scale.0, ds.scale.1],
        task: Default::default(),
        data: recsys::train::DataRecipe {
            source: args.data.clone(),
            ..Default::default()
        },
    };
    let adam = |lr| OptimizerConfig {
        lr,
        ..Default::default()
    };
    let autorec = |hidden: Vec<usize>| {
        AutoRecConfig::new(x.n_users, x.n_items)
            .with_base(AutoRecBase::User)
            .with_hidden(hidden)
            .with_activation(Activation::Relu)
            .with_dropout(0.2)
            .with_l2(1.0)
    };
    let models = [
        (
            "AutoRec 1500",
            config(ModelConfig::AutoRec(autorec(vec![1500])), 256, adam(1e-3)),
        ),
        (
            "AutoRec 1500-500-1500",
            config(
                ModelConfig::AutoRec(autorec(vec![1500, 500, 1500])),
                256,
                adam(1e-3),
            ),
        ),
        (
            "latent factors + biases",
            config(
                ModelConfig::Mf(
                    MfConfig::new(x.n_users, x.n_items)
                        .with_embedding_dim(64)
                        .with_bias(true)
                        .with_l2(0.05)
                        .with_global_mean(parts.train.mean_rating() as f32),
                ),
                1024,
                adam(3e-3),
            ),
        ),
    ];
    println!(
        "{:<26} {:>10} {:>10} {:>10}",
        "model", "valid RMSE", "valid MAE", "valid MAPE"
    );
    for (k, (name, cfg)) in models.into_iter().enumerate() {
        let dir = args.out.join(format!("model{k}"));
        train_run(&dir, &cfg, &ds.ids, &parts.train, Some(&parts.valid), true)?;
        let run = load_run(&dir, Checkpoint::Best, None)?;
        let m = run.evaluate(&parts.valid);
        println!(
            "{name:<26} {:>10.4} {:>10.4} {:>9.2}%",
            m.rmse, m.mae, m.mape
        );
        // The test users' rows: 2,000 of their ratings hidden, the rest read by the model.
        print_hidden(&run.hidden_ratings(&[], &by_user.test, 2_000, 7)?);
    }
    Ok(())
}

fn print_hidden(m: &RatingMetrics) {
    println!(
        "{:<26} {:>10.4} {:>10.4} {:>9.2}%   (hidden ratings of test users, {} of them)",
        "  hidden-ratings test", m.rmse, m.mae, m.mape, m.n
    );
}
