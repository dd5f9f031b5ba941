//! The `recsys` command line: argument parsing, device choice and printing. Glue only: the
//! work is done by the library crates.

mod args;
mod cv_cmd;
mod data_cmd;
mod eval_cmd;
mod infer_cmd;
mod prep;
mod sanity_cmd;
mod serve_cmd;
mod train_cmd;
mod tune_cmd;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    /// Train and score the same configuration on every fold of a cross-validation (ML-100K's
    /// u1..u5, or k seeded folds): each fold, the mean and the standard deviation.
    Cv(Box<cv_cmd::CvArgs>),
    /// Search hyper-parameters on the validation part (random or TPE, median pruning), write
    /// the best as a --config file, refit it and score it on the test part.
    Tune(Box<tune_cmd::TuneArgs>),
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
    /// Build an approximate index (an inverted file, or an HNSW graph) of a run's item vectors,
    /// used by recommend, similar and serve.
    Index(serve_cmd::IndexArgs),
    /// Debugging checks: overfit a tiny subset, or fail to learn random ratings.
    Sanity {
        #[command(subcommand)]
        command: sanity_cmd::SanityCommand,
    },
}

fn main() {
    restore_sigpipe();
    // SAFETY: at start-up, before any thread exists.
    unsafe { recsys_train::device::default_device_on_cpu() };
    let parsed = command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
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
        Command::Train(args) => {
            let given = matches
                .subcommand_matches("train")
                .map(train_cmd::Given::from)
                .unwrap_or_default();
            train_cmd::train(*args, &given)
        }
        Command::Cv(args) => cv_cmd::cv(*args),
        Command::Tune(args) => tune_cmd::tune(*args),
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
        eprintln!("error: {}", message(&e));
        // A study's input that is wrong (its search space, metric or settings): nothing started.
        let code = if e.downcast_ref::<tune_cmd::BadInput>().is_some() {
            2
        } else {
            1
        };
        std::process::exit(code);
    }
}

/// The command line, where every option that takes a value accepts a negative number as that
/// value (`--lr -0.01`, `--scale -1,1`) instead of reading it as an unknown option.
fn command() -> clap::Command {
    fn negatives_as_values(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|a| {
            if a.get_action().takes_values() {
                a.allow_negative_numbers(true)
            } else {
                a
            }
        })
        .mut_subcommands(negatives_as_values)
    }
    negatives_as_values(Cli::command())
}

/// An error and its causes, joined by `: `, leaving out a cause whose text the message already
/// holds (an error that prints its source, as an IO error naming the file does, would otherwise
/// repeat it: "x: no saved weights: no saved weights").
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
