//! The `recsys` command line: argument parsing, device choice and printing. Glue only: the
//! work is done by the library crates.

mod args;
mod data_cmd;
mod eval_cmd;
mod infer_cmd;
mod prep;
mod sanity_cmd;
mod serve_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

/// Recommender systems on Burn: MovieLens data, training on wgpu, flex or ndarray, evaluation
/// and inference.
#[derive(Parser)]
#[command(name = "recsys", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect, filter, split, generate and download data sets.
    Data {
        #[command(subcommand)]
        command: data_cmd::DataCommand,
    },
    /// Train a model into a run directory (synthetic data unless --data is given).
    Train(Box<train_cmd::TrainArgs>),
    /// Score a trained run on its test split (or other data).
    Eval(eval_cmd::EvalArgs),
    /// Predict one user's rating of one item.
    Predict(eval_cmd::PredictArgs),
    /// Top-K items for a user (or every user, to CSV) from a trained run.
    Recommend(infer_cmd::RecommendArgs),
    /// Items most similar to an item, by cosine similarity of the run's item vectors.
    Similar(infer_cmd::SimilarArgs),
    /// Write a run's user and item vectors (.npy or .csv) with their ids and titles.
    Export(infer_cmd::ExportArgs),
    /// Serve trained runs over HTTP (JSON endpoints, metrics, a page at /).
    Serve(Box<serve_cmd::ServeArgs>),
    /// Build an HNSW index of a run's item vectors (used by recommend, similar and serve).
    Index(serve_cmd::IndexArgs),
    /// Debugging checks: overfit a tiny subset, or fail to learn random ratings.
    Sanity {
        #[command(subcommand)]
        command: sanity_cmd::SanityCommand,
    },
}

fn main() {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with exit code 0; a bad argument is a user mistake
        // like any other: its message and exit code 1.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            std::process::exit(1);
        }
    };
    let result = match cli.command {
        Command::Data { command } => data_cmd::run(command),
        Command::Train(args) => train_cmd::train(*args),
        Command::Eval(args) => eval_cmd::eval(args),
        Command::Predict(args) => eval_cmd::predict(args),
        Command::Recommend(args) => infer_cmd::recommend(args),
        Command::Similar(args) => infer_cmd::similar(args),
        Command::Export(args) => infer_cmd::export(args),
        Command::Serve(args) => serve_cmd::serve(*args),
        Command::Index(args) => serve_cmd::index(args),
        Command::Sanity { command } => sanity_cmd::run(command),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Lets `recsys ... | head` end quietly, as command-line tools do, instead of panicking on a
/// closed pipe.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
