//! The NeuMF notebook on ML-100K: movies with fewer than 3 ratings dropped, a split stratified so
//! that every user and movie appears in train, validation and test, and three rating models whose
//! inputs are a user's row and a movie's column of the training rating matrix (projected by dense
//! layers with LeakyReLU, L2 on every kernel, a sigmoid output scaled to 1-5, MSE on observed
//! ratings): NeuMF, GMF only and MLP only. Then the notebook's two debugging checks (overfit a
//! tiny subset; random ratings are not learnable) and a results table.
//!
//! ```sh
//! cargo run --release --example neumf                                     # synthetic ML-100K shape
//! cargo run --release --example neumf -- --data ~/.cache/recsys/ml-100k    # the real data
//! ```

use std::path::PathBuf;

use clap::Parser;
use recsys::data::{Interactions, LoadOptions, Size, SplitMethod, open, split};
use recsys::models::{Activation, MfOutput, NcfConfig, NcfInput, NcfKind};
use recsys::train::{
    BackendKind, Checkpoint, ModelConfig, NcfSetup, OptimizerConfig, RatingMetrics, RunConfig,
    TrainConfig, load_run, train_run,
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "synthetic:100k")]
    data: String,
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// ids (embedding tables) or rating-vectors (the notebook).
    #[arg(long, default_value = "rating-vectors")]
    input: String,
    #[arg(long, default_value = "runs/neumf")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let input = match args.input.as_str() {
        "ids" => NcfInput::Ids,
        "rating-vectors" => NcfInput::RatingVectors,
        other => anyhow::bail!("unknown input {other:?}: expected ids or rating-vectors"),
    };
    // The notebook drops movies with fewer than 3 ratings, so each can be in all three parts.
    let ds = open(&args.data, &LoadOptions::default())?.min_counts(1, 3, false);
    let x = &ds.interactions;
    let s = split(
        x,
        &SplitMethod::Stratified {
            valid: Size::Ratio(0.1),
            test: Size::Ratio(0.2),
        },
        42,
    )?;
    println!(
        "{}: {} users x {} movies, {} ratings; {} train, {} validation, {} test",
        ds.source,
        x.n_users,
        x.n_items,
        x.len(),
        s.train.len(),
        s.valid.len(),
        s.test.len()
    );
    let (lo, hi) = ds.scale;
    let mean_only = RatingMetrics::compute(
        &vec![s.train.mean_rating() as f32; s.test.len()],
        &s.test.ratings,
        Some(ds.scale),
    );
    let mut rows = vec![("global mean".to_string(), mean_only)];
    let model = |kind: NcfKind, input: NcfInput, l2: f32| {
        ModelConfig::Ncf(NcfSetup {
            ncf: NcfConfig::new(x.n_users, x.n_items)
                .with_kind(kind)
                .with_input(input)
                .with_embedding_dim(30)
                // The notebook: 30-unit projections, 5 dense blocks of 30 LeakyReLU(0.4) units.
                .with_mlp_layers(vec![60, 30, 30, 30, 30, 30])
                .with_activation(Activation::LeakyRelu)
                .with_leaky_alpha(0.4)
                .with_l2(l2)
                .with_output(MfOutput::ScaledSigmoid)
                .with_rating_min(lo)
                .with_rating_max(hi)
                .with_global_mean(s.train.mean_rating() as f32),
            pretrained: None,
        })
    };
    let config = |model: ModelConfig, epochs: usize, batch_size: usize, patience| RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model,
        train: TrainConfig {
            epochs,
            batch_size,
            patience,
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
            source: ds.source.clone(),
            ..Default::default()
        },
    };
    for kind in [NcfKind::Neumf, NcfKind::Gmf, NcfKind::Mlp] {
        let dir = args.out.join(kind.name());
        println!("\ntraining {} ...", kind.name());
        let cfg = config(model(kind, input, 1e-4), args.epochs, 64, Some(4));
        let summary = train_run(&dir, &cfg, &ds.ids, &s.train, Some(&s.valid), true)?;
        let m = load_run(&dir, Checkpoint::Best, None)?.evaluate(&s.test);
        println!(
            "{}: best epoch {} of {}, test rmse {:.4}",
            kind.name(),
            summary.best_epoch,
            summary.history.len(),
            m.rmse
        );
        rows.push((format!("{} ({})", kind.name(), args.input), m));
    }

    // The notebook's debugging. 1: without regularisation, 64 ratings are learned by heart. (On
    // ids: rating-vector inputs hide each pair's own rating while training, and in a 64-rating
    // matrix most rows hold nothing else, so every input would look alike.)
    let tiny = s
        .train
        .select(&(0..64.min(s.train.len())).collect::<Vec<_>>());
    let cfg = config(model(NcfKind::Neumf, NcfInput::Ids, 0.0), 300, 16, None);
    let o = train_run(&args.out.join("overfit"), &cfg, &ds.ids, &tiny, None, true)?;
    let last = o.history.last().expect("trained");
    println!(
        "\noverfit 64 ratings: training mse {:.4} after {} epochs",
        last.train_loss - last.train_penalty,
        last.epoch
    );
    // 2: random ratings cannot be learned: the validation MSE stays near the noise variance.
    let cfg = config(model(NcfKind::Neumf, input, 1e-4), 5, 64, None);
    let o = train_run(
        &args.out.join("noise"),
        &cfg,
        &ds.ids,
        &noisy(&s.train, (lo, hi), 1),
        Some(&noisy(&s.valid, (lo, hi), 2)),
        true,
    )?;
    println!(
        "random ratings: best validation mse {:.4}, noise variance {:.4}",
        o.best_valid.expect("validated").mse,
        ((hi - lo) as f64).powi(2) / 12.0
    );

    println!("\n| model | test RMSE | MAE | ratings |");
    println!("|---|---|---|---|");
    for (name, m) in rows {
        println!("| {name} | {:.4} | {:.4} | {} |", m.rmse, m.mae, m.n);
    }
    Ok(())
}

/// `data` with each rating replaced by a uniform draw on the scale (seeded).
fn noisy(data: &Interactions, (lo, hi): (f32, f32), seed: u64) -> Interactions {
    let mut out = data.clone();
    let mut state = seed;
    for r in out.ratings.iter_mut() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *r = lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32);
    }
    out
}
