//! `cargo xtask fuzz`: coverage-guided fuzzing of the parsers with libFuzzer, on the stable
//! toolchain.
//!
//! The fuzz binary (`fuzz/`, its own workspace) is built with `cargo build` and this program as
//! `RUSTC_WRAPPER`: the wrapper adds LLVM's SanitizerCoverage pass (stable `-C passes` and
//! `-C llvm-args`, the same flags cargo-fuzz passes) and overflow checks to the crates whose
//! code parses input (`INSTRUMENTED`) and leaves every other crate as the main build has it.
//! No nightly feature is needed, so `RUSTC_BOOTSTRAP` stays unset.
//!
//! Seeds come from the targets themselves (`Target::seeds`, synthetic fixtures) and are written
//! to `fuzz/corpus/<target>/` (ignored by git) with what the fuzzer adds; crashes, hangs and
//! out-of-memory inputs go to `fuzz/artifacts/<target>/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Crates that get coverage instrumentation: ours, and the third-party parsers our targets
/// drive (zip, csv, burnpack's store).
const INSTRUMENTED: &[&str] = &[
    "recsys_data",
    "recsys_models",
    "recsys_train",
    "recsys_fuzz",
    "zip",
    "csv",
    "csv_core",
    "burn_store",
];

const SANCOV: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Coverflow-checks=on",
    "-Cdebug-assertions=on",
];

const WRAPPER_ENV: &str = "RECSYS_FUZZ_RUSTC_WRAPPER";

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Target name, or `all` for every target in turn; `--list` shows them.
    #[arg(long, default_value = "all")]
    target: String,
    /// Executions per target.
    #[arg(long, default_value_t = 1_000_000)]
    execs: u64,
    /// Largest input in bytes.
    #[arg(long, default_value_t = 4096)]
    max_len: usize,
    /// Seconds after which one input counts as a hang.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Memory (MiB) after which the process counts as out of memory.
    #[arg(long, default_value_t = 2048)]
    rss_limit_mb: u64,
    /// libFuzzer's random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
}

/// When cargo runs this program as `RUSTC_WRAPPER`: `argv = [self, rustc, args...]`.
pub fn wrapper_requested() -> bool {
    std::env::var_os(WRAPPER_ENV).is_some()
}

pub fn wrap_rustc() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let rustc = args
        .next()
        .context("the wrapper needs the compiler's path")?;
    let args: Vec<_> = args.collect();
    let crate_name = args
        .iter()
        .position(|a| a == "--crate-name")
        .and_then(|k| args.get(k + 1))
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let mut cmd = Command::new(rustc);
    cmd.args(&args);
    if INSTRUMENTED.contains(&crate_name) {
        cmd.args(SANCOV);
    }
    let status = cmd.status().context("running rustc")?;
    std::process::exit(status.code().unwrap_or(1));
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// The fuzz build's own target folder, beside the main one's outputs.
fn target_dir() -> PathBuf {
    let main = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    main.join("fuzz")
}

/// Builds the fuzz binary; with `train`, with the run-directory targets (a build with Burn) in
/// a folder of its own, so that either build stays up to date.
fn build(train: bool) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = target_dir().join(if train { "train" } else { "data" });
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--release", "--manifest-path"])
        .arg(root().join("fuzz/Cargo.toml"));
    if train {
        cmd.args(["--features", "train"]);
    }
    let status = cmd
        .env("CARGO_TARGET_DIR", &dir)
        .env("RUSTC_WRAPPER", &me)
        .env(WRAPPER_ENV, "1")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .context("running cargo build for fuzz/")?;
    if !status.success() {
        bail!("building the fuzz binary failed");
    }
    Ok(dir.join("release/recsys-fuzz"))
}

/// What one run of one target did.
#[derive(Debug, Default)]
struct Outcome {
    execs: u64,
    seconds: f64,
    cov: Option<u64>,
    features: Option<u64>,
    corpus: Option<u64>,
    crashes: Vec<PathBuf>,
    hangs: Vec<PathBuf>,
    ooms: Vec<PathBuf>,
}

pub fn run(args: FuzzArgs) -> Result<()> {
    let all = recsys_train::fuzz::names();
    if args.list {
        for t in recsys_train::fuzz::all() {
            println!("{:<12} {}", t.name, t.files);
        }
        return Ok(());
    }
    let names: Vec<&str> = if args.target == "all" {
        all.clone()
    } else if all.contains(&args.target.as_str()) {
        vec![args.target.as_str()]
    } else {
        bail!("no fuzz target {:?}: {}", args.target, all.join(", "));
    };
    let data_only = names
        .iter()
        .all(|n| recsys_data::fuzz::TARGETS.iter().any(|t| t.name == *n));
    let binary = build(!data_only)?;
    let mut failed = false;
    println!(
        "| target | executions | seconds | edges (cov) | features | corpus | crashes | hangs | out of memory |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for name in names {
        let o = run_target(&binary, name, &args)?;
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            o.execs,
            o.seconds,
            opt(o.cov),
            opt(o.features),
            opt(o.corpus),
            o.crashes.len(),
            o.hangs.len(),
            o.ooms.len()
        );
        for p in o.crashes.iter().chain(&o.hangs).chain(&o.ooms) {
            println!("  found: {}", p.display());
            failed = true;
        }
    }
    if failed {
        bail!("the fuzzer found inputs that crash, hang or run out of memory");
    }
    Ok(())
}

fn run_target(binary: &Path, name: &str, args: &FuzzArgs) -> Result<Outcome> {
    let target = recsys_train::fuzz::target(name).expect("a listed target");
    let corpus = root().join("fuzz/corpus").join(name);
    let artifacts = root().join("fuzz/artifacts").join(name);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    for (k, seed) in (target.seeds)().iter().enumerate() {
        std::fs::write(corpus.join(format!("seed-{k}")), seed)?;
    }
    let before: Vec<PathBuf> = list(&artifacts)?;
    let log = artifacts.join("last-run.log");
    let started = std::time::Instant::now();
    let status = Command::new(binary)
        .arg(format!("-runs={}", args.execs))
        .arg(format!("-max_len={}", args.max_len))
        .arg(format!("-timeout={}", args.timeout))
        .arg(format!("-rss_limit_mb={}", args.rss_limit_mb))
        .arg(format!("-seed={}", args.seed))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg(&corpus)
        .env("RECSYS_FUZZ_TARGET", name)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log)?;
    let mut o = parse_log(&text);
    o.seconds = seconds;
    for p in list(&artifacts)? {
        if before.contains(&p) {
            continue;
        }
        let file = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if file.starts_with("crash-") || file.starts_with("leak-") {
            o.crashes.push(p);
        } else if file.starts_with("timeout-") || file.starts_with("slow-unit-") {
            o.hangs.push(p);
        } else if file.starts_with("oom-") {
            o.ooms.push(p);
        }
    }
    if !status.success() && o.crashes.is_empty() && o.hangs.is_empty() && o.ooms.is_empty() {
        bail!(
            "the fuzzer for {name} stopped with {status} and left no input; see {}",
            log.display()
        );
    }
    Ok(o)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect())
}

/// Reads libFuzzer's progress lines (`#N ... cov: C ft: F corp: K/...`) and final statistics.
fn parse_log(text: &str) -> Outcome {
    let mut o = Outcome::default();
    let after = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    for line in text.lines() {
        if line.starts_with('#') {
            if let Some(v) = after(line, "cov: ") {
                o.cov = Some(v);
            }
            if let Some(v) = after(line, "ft: ") {
                o.features = Some(v);
            }
            if let Some(v) = after(line, "corp: ") {
                o.corpus = Some(v);
            }
            if let Some(v) = after(line, "#") {
                o.execs = o.execs.max(v);
            }
        }
        if let Some(v) = after(line, "stat::number_of_executed_units: ") {
            o.execs = o.execs.max(v);
        }
    }
    o
}
