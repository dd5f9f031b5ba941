//! The ML-20M notebook end to end: exploratory statistics, a matrix factoriser (embedding width
//! 4, Adam 0.002, batch 40,960) trained for its embeddings, then a deep feed-forward regressor
//! (BatchNorm -> Dropout -> Dense blocks, unit-norm kernels, sigmoid on rating/5) that reads those
//! embeddings frozen. Reports the test MSE on ratings/5, as the notebook does, and the RMSE in stars.
//!
//! ```sh
//! cargo run --release --example movielens_factorizer_regressor                 # synthetic ML-20M-shaped data
//! cargo run --release --example movielens_factorizer_regressor -- --data synthetic:1m
//! cargo run --release --example movielens_factorizer_regressor -- --data ~/.cache/recsys/ml-20m --backend wgpu
//! ```

use std::path::PathBuf;

use clap::Parser;
use recsys::data::{LoadOptions, Normalizer, Size, SplitMethod, open, split, stats};
use recsys::models::MfConfig;
use recsys::train::{
    BackendKind, Checkpoint, ModelConfig, OptimizerConfig, RegressorSetup, RunConfig, TrainConfig,
    load_run, regressor_config_for_mf_run, train_run,
};

#[derive(Parser)]
struct Args {
    /// A MovieLens folder or `synthetic:<preset>`.
    #[arg(long, default_value = "synthetic:20m")]
    data: String,
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Epochs of the factoriser (the notebook: 10).
    #[arg(long, default_value_t = 10)]
    mf_epochs: usize,
    /// Epochs of the regressor (the notebook: 20).
    #[arg(long, default_value_t = 3)]
    regressor_epochs: usize,
    #[arg(long, default_value = "runs/ml20m-notebook")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ds = open(&args.data, &LoadOptions::default())?;
    let st = stats(&ds, 5, 0);
    println!(
        "{}: {} users, {} items, {} ratings, sparsity {:.4}%, mean {:.3}, std {:.3}",
        st.source,
        st.users,
        st.items,
        st.ratings,
        st.sparsity * 100.0,
        st.mean_rating,
        st.std_rating
    );
    for it in &st.top_items {
        println!(
            "  {:>6} ratings  {}",
            it.count,
            it.title.as_deref().unwrap_or(&it.item_id)
        );
    }

    // The notebook holds out 10,000 validation and 500,000 test ratings (scaled down for small data).
    let n = ds.interactions.len();
    let (valid, test) = if n > 5_000_000 {
        (Size::Count(10_000), Size::Count(500_000))
    } else {
        (Size::Ratio(0.01), Size::Ratio(0.05))
    };
    let mut parts = split(&ds.interactions, &SplitMethod::Random { valid, test }, 42)?;
    // Both models learn ratings divided by the maximum, as in the notebook.
    let norm = Normalizer::fit("max", ds.scale, &[])?;
    for part in [&mut parts.train, &mut parts.valid, &mut parts.test] {
        norm.apply(&mut part.ratings);
    }
    let scale = [norm.forward(ds.scale.0), norm.forward(ds.scale.1)];
    let train = |model: ModelConfig, epochs: usize, lr: f64| RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: TrainConfig {
            epochs,
            batch_size: 40_960,
            patience: None,
            optimizer: OptimizerConfig {
                lr,
                ..Default::default()
            },
            ..Default::default()
        },
        backend: args.backend,
        device_index: 0,
        rating_scale: scale,
        task: Default::default(),
        data: recsys::train::DataRecipe {
            source: args.data.clone(),
            ..Default::default()
        },
    };

    let mf_dir = args.out.join("factorizer");
    let mf = MfConfig::new(ds.interactions.n_users, ds.interactions.n_items).with_embedding_dim(4);
    let s = train_run(
        &mf_dir,
        &train(ModelConfig::Mf(mf), args.mf_epochs, 0.002),
        &ds.ids,
        &parts.train,
        Some(&parts.valid),
        false,
    )?;
    report(
        "factorizer",
        &load_run(&mf_dir, Checkpoint::Best, None)?.evaluate(&parts.test),
        s.adapter,
    );

    let reg_dir = args.out.join("regressor");
    let regressor = RegressorSetup {
        // Targets are already divided by the maximum.
        regressor: regressor_config_for_mf_run(&mf_dir)?.with_rating_max(1.0),
        mf_run: mf_dir,
    };
    let cfg = train(
        ModelConfig::Regressor(regressor),
        args.regressor_epochs,
        0.001,
    );
    let s = train_run(
        &reg_dir,
        &cfg,
        &ds.ids,
        &parts.train,
        Some(&parts.valid),
        false,
    )?;
    report(
        "regressor",
        &load_run(&reg_dir, Checkpoint::Best, None)?.evaluate(&parts.test),
        s.adapter,
    );
    println!("run directories under {}", args.out.display());
    Ok(())
}

/// Metrics are on ratings/5 (the notebook's test MSE); RMSE and MAE also in stars.
fn report(name: &str, m: &recsys::train::RatingMetrics, adapter: String) {
    println!(
        "{name:>10} on {adapter}: test MSE on rating/5 {:.5}, RMSE {:.4} stars, MAE {:.4} stars ({} ratings)",
        m.mse,
        m.rmse * 5.0,
        m.mae * 5.0,
        m.n
    );
}
