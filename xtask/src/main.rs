//! Project automation: `cargo xtask bench`.

mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure loading, training and inference; write JSON and a BENCHMARKS.md table.
    Bench(bench::BenchArgs),
    /// (internal) Load one ratings file in this process and print rows, seconds and peak RSS as JSON.
    #[command(hide = true)]
    ProbeLoad { path: std::path::PathBuf },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(args),
        Command::ProbeLoad { path } => bench::probe_load(&path),
    }
}
