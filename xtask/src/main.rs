//! Project automation: `cargo xtask bench`, `cargo xtask killtest`, `cargo xtask fuzz`.

mod bench;
mod fuzz;
mod killtest;
mod serve_bench;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the benchmark's many flags costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Measure loading, training and inference; write JSON and a BENCHMARKS.md table.
    Bench(bench::BenchArgs),
    /// Kill `recsys train` (and resumes) at random moments; check each run directory left and
    /// that resuming ends as an uninterrupted run.
    Killtest(killtest::KillTestArgs),
    /// Render a saved results file (e.g. from the GPU machine) into a BENCHMARKS.md section.
    BenchMd {
        file: std::path::PathBuf,
        #[arg(long)]
        section: String,
    },
    /// Fuzz the parsers with libFuzzer: `--target NAME --execs N` (see fuzz/ and RELIABILITY.md).
    Fuzz(fuzz::FuzzArgs),
    /// (internal) Load one ratings file in this process and print rows, seconds and peak RSS as JSON.
    #[command(hide = true)]
    ProbeLoad { path: std::path::PathBuf },
    /// (internal) Train one model on one backend and scale in this process; print timings as JSON.
    #[command(hide = true)]
    ProbeTrain {
        model: String,
        backend: String,
        scale: String,
        epochs: usize,
        readback: usize,
        /// `profile` or `plain`.
        mode: String,
    },
    /// (internal) Write the training part of one train-suite workload for `bench/torch_train.py`.
    #[command(hide = true)]
    ProbeDump {
        model: String,
        scale: String,
        path: std::path::PathBuf,
    },
    /// (internal) Time top-100 for every user of one model on one backend and scale; print JSON.
    #[command(hide = true)]
    ProbeInfer {
        model: String,
        backend: String,
        scale: String,
    },
}

fn main() -> anyhow::Result<()> {
    if fuzz::wrapper_requested() {
        return fuzz::wrap_rustc();
    }
    match Cli::parse().command {
        Command::Fuzz(args) => fuzz::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Killtest(args) => killtest::run(args),
        Command::BenchMd { file, section } => bench::render(&file, &section),
        Command::ProbeLoad { path } => bench::probe_load(&path),
        Command::ProbeTrain {
            model,
            backend,
            scale,
            epochs,
            readback,
            mode,
        } => bench::probe_train(
            &model,
            &backend,
            &scale,
            epochs,
            readback,
            mode == "profile",
        ),
        Command::ProbeDump { model, scale, path } => bench::probe_dump(&model, &scale, &path),
        Command::ProbeInfer {
            model,
            backend,
            scale,
        } => bench::probe_infer(&model, &backend, &scale),
    }
}
