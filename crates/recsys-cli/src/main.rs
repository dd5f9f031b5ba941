//! The `recsys` command line: argument parsing, device choice and printing. Glue only: the
//! work is done by the library crates.

mod data_cmd;

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
}

fn main() {
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data { command } => data_cmd::run(command),
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
