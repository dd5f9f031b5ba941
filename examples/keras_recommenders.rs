//! The four Keras recommenders on ml-latest-small (90/10 split after a seeded shuffle), each
//! printing its validation loss:
//!
//! 1. dot product of user and movie embeddings (50 factors, he-normal, L2 1e-6), MSE;
//! 2. the same plus user and movie biases, through a sigmoid scaled to the rating range, MSE;
//! 3. concatenated embeddings -> dropout -> dense(10) + ReLU -> dropout -> dense(1) -> scaled sigmoid, MSE;
//! 4. biases + sigmoid trained with binary cross-entropy on min-max normalised ratings.
//!
//! ```sh
//! cargo run --release --example keras_recommenders -- --data ~/.cache/recsys/ml-latest-small
//! cargo run --release --example keras_recommenders                 # synthetic ML-100K-shaped data
//! ```

use std::path::PathBuf;

use clap::Parser;
use recsys::data::{LoadOptions, Size, SplitMethod, open, split};
use recsys::models::{EmbeddingInit, MfConfig, MfOutput, RecommenderNetConfig};
use recsys::train::metrics::bce_on_scale;
use recsys::train::{
    BackendKind, Checkpoint, ModelConfig, OptimizerConfig, RunConfig, TrainConfig, load_run,
    train_run,
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "synthetic:100k")]
    data: String,
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Epochs of each model (the notebook: 5).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    #[arg(long, default_value = "runs/keras")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ds = open(&args.data, &LoadOptions::default())?;
    let x = &ds.interactions;
    // A seeded shuffle, then 90% train and 10% validation.
    let parts = split(
        x,
        &SplitMethod::Random {
            valid: Size::Ratio(0.1),
            test: Size::Count(0),
        },
        42,
    )?;
    let (lo, hi) = ds.scale;
    println!(
        "{}: {} users, {} movies; {} train, {} validation ratings",
        ds.source,
        x.n_users,
        x.n_items,
        parts.train.len(),
        parts.valid.len()
    );

    // The sigmoid versions start from the training mean (version 1 is the plain dot product).
    let mean = parts.train.mean_rating() as f32;
    let mf = || {
        MfConfig::new(x.n_users, x.n_items)
            .with_embedding_dim(50)
            .with_init(EmbeddingInit::Normal { std: 0.05 })
            .with_l2(1e-6)
            .with_rating_min(lo)
            .with_rating_max(hi)
    };
    let versions = [
        ("1: dot product", ModelConfig::Mf(mf())),
        (
            "2: biases + scaled sigmoid",
            ModelConfig::Mf(
                mf().with_bias(true)
                    .with_global_mean(mean)
                    .with_output(MfOutput::ScaledSigmoid),
            ),
        ),
        (
            "3: concat + dense",
            ModelConfig::RecommenderNet(
                RecommenderNetConfig::new(x.n_users, x.n_items)
                    .with_rating_min(lo)
                    .with_rating_max(hi),
            ),
        ),
        (
            "4: biases + sigmoid, BCE",
            ModelConfig::Mf(
                mf().with_bias(true)
                    .with_global_mean(mean)
                    .with_output(MfOutput::Logit),
            ),
        ),
    ];
    for (k, (name, model)) in versions.into_iter().enumerate() {
        let bce = matches!(&model, ModelConfig::Mf(c) if c.output == MfOutput::Logit);
        let config = RunConfig {
            normalize: Default::default(),
            normalizer: Default::default(),
            model,
            train: TrainConfig {
                epochs: args.epochs,
                batch_size: 64,
                patience: None,
                optimizer: OptimizerConfig {
                    lr: 0.001,
                    ..Default::default()
                },
                ..Default::default()
            },
            backend: args.backend,
            device_index: 0,
            rating_scale: [lo, hi],
            task: Default::default(),
            data: recsys::train::DataRecipe {
                source: args.data.clone(),
                ..Default::default()
            },
        };
        let dir = args.out.join(format!("version{}", k + 1));
        train_run(
            &dir,
            &config,
            &ds.ids,
            &parts.train,
            Some(&parts.valid),
            true,
        )?;
        let run = load_run(&dir, Checkpoint::Best, None)?;
        let m = run.evaluate(&parts.valid);
        if bce {
            let loss = bce_on_scale(
                &run.predict(&parts.valid.users, &parts.valid.items),
                &parts.valid.ratings,
                (lo, hi),
            );
            println!(
                "version {name:<28} validation BCE {loss:.4}  (RMSE {:.4})",
                m.rmse
            );
        } else {
            println!(
                "version {name:<28} validation MSE {:.4}  (RMSE {:.4})",
                m.mse, m.rmse
            );
        }
    }
    Ok(())
}
