//! The benchmark harness. Every figure in BENCHMARKS.md comes from here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct BenchArgs {
    /// Which suite: load, train, infer (top-100 for every user), ann (the approximate indexes
    /// against brute force), serve (load on `recsys serve`) or all (load, train, infer).
    #[arg(long, default_value = "load")]
    suite: String,
    /// Ann suite: catalogue sizes of synthetic item vectors (0: none).
    #[arg(long, value_delimiter = ',', default_value = "26744,1000000")]
    ann_items: Vec<usize>,
    /// Ann suite: queries per size.
    #[arg(long, default_value_t = 500)]
    ann_queries: usize,
    /// Ann suite: the kinds of index measured (ivf, hnsw).
    #[arg(long, value_delimiter = ',', default_value = "ivf")]
    ann_methods: Vec<String>,
    /// Ann suite, inverted file: lists scanned per query (one index per catalogue, searched
    /// at each value; 0: the default for its lists).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    ann_probes: Vec<usize>,
    /// Ann suite: trained run directories whose own item vectors are measured too (their
    /// users as queries).
    #[arg(long, value_delimiter = ',')]
    ann_runs: Vec<PathBuf>,
    /// Ann suite, HNSW: ef_search values (one graph per catalogue, searched at each value).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    ann_ef: Vec<usize>,
    /// Serve suite: requests in all (the run stops at this count or --time-limit).
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Serve suite: connections sending at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Serve suite: seconds at most.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Serve suite: the data its MF run trains on (default: `$RECSYS_DATA_DIR/ml-100k`, else
    /// `synthetic:100k`); `synthetic:20m` serves a catalogue of ML-20M's shape.
    #[arg(long)]
    serve_data: Option<String>,
    /// Serve suite: serve through an index of this kind (ivf, hnsw; built into the run first)
    /// instead of exact top-K.
    #[arg(long)]
    serve_index: Option<String>,
    /// Synthetic scale for the load suite: 100k, 1m or 20m.
    #[arg(long, default_value = "20m")]
    scale: String,
    /// Models of the train suite.
    #[arg(long, value_delimiter = ',', default_value = "mf")]
    models: Vec<String>,
    /// Backends of the train suite.
    #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
    backends: Vec<String>,
    /// Synthetic scales of the train suite.
    #[arg(long, value_delimiter = ',', default_value = "1m")]
    scales: Vec<String>,
    /// Epochs per train-suite run; the first is a warm-up, the median of the rest is reported.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Train suite: steps between two read-backs of the training loss
    /// (`train.loss_readback_steps`; 0: automatic, 64 on a GPU and 1 elsewhere); several
    /// values run each combination once per value.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    readback: Vec<usize>,
    /// Train suite: also time each phase of a step (batch, forward, backward, optimizer,
    /// read-back), waiting for the device after each (`train.profile`); reported per run.
    #[arg(long)]
    profile: bool,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also time pandas.read_csv on the same file (needs python3 with pandas).
    #[arg(long)]
    pandas: bool,
    /// Train suite: also train each workload with PyTorch on the CPU (`bench/torch_train.py`,
    /// needs torch and numpy), alternating with the recsys runs, and report the ratios.
    #[arg(long)]
    torch: bool,
    /// The Python that has torch (`--torch`).
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// `--torch`: rounds of (recsys, PyTorch) runs, alternated; the median of each is reported.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Where the synthetic files are kept between runs.
    #[arg(long, default_value = "target/bench-data")]
    data_dir: PathBuf,
    /// JSON results file.
    #[arg(long, default_value = "target/bench.json")]
    out: PathBuf,
    /// Update the matching section of BENCHMARKS.md.
    #[arg(long)]
    write_md: bool,
    /// The BENCHMARKS.md section to write (default: the suite's name).
    #[arg(long)]
    section: Option<String>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let results = match args.suite.as_str() {
        "load" => load_suite(&args)?,
        "train" => train_suite(&args)?,
        "infer" => infer_suite(&args)?,
        "ann" => crate::serve_bench::ann_suite(&crate::serve_bench::AnnPlan {
            sizes: &args.ann_items,
            dim: 32,
            queries: args.ann_queries,
            methods: &args.ann_methods,
            probes: &args.ann_probes,
            ef: &args.ann_ef,
            runs: &args.ann_runs,
        })?,
        "serve" => crate::serve_bench::serve_suite(
            &args
                .serve_data
                .clone()
                .unwrap_or_else(crate::serve_bench::serve_data),
            &args.data_dir,
            &crate::serve_bench::LoadPlan {
                index: match args.serve_index.as_deref() {
                    None | Some("none") => None,
                    Some(name) => Some(crate::serve_bench::index_method(name)?),
                },
                requests: args.requests,
                concurrency: args.concurrency,
                time_limit: std::time::Duration::from_secs(args.time_limit),
                k: 10,
            },
        )?,
        "all" => json!({"load": load_suite(&args)?, "train": train_suite(&args)?,
                        "infer": infer_suite(&args)?}),
        other => bail!("unknown suite {other:?}: expected load, train, infer, ann, serve or all"),
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", args.out.display());
    println!("{}", serde_json::to_string(&results)?);
    if args.write_md {
        match args.suite.as_str() {
            "all" => {
                write_markdown("load", &results["load"])?;
                write_markdown("train", &results["train"])?;
                write_markdown("infer", &results["infer"])?;
            }
            s => {
                let suite = results["suite"].as_str().unwrap_or(s);
                write_section(args.section.as_deref().unwrap_or(suite), suite, &results)?
            }
        }
    }
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let commit = env!("RECSYS_BUILD_COMMIT");
    json!({"cpu": cpu, "cores": cores, "memory_gib": (mem_kb as f64 / 1048576.0).round(), "commit": commit})
}

fn load_suite(args: &BenchArgs) -> Result<Value> {
    let dir = args.data_dir.join(format!("synthetic-{}", args.scale));
    let file = dir.join("ratings.csv");
    if !file.exists() {
        std::fs::create_dir_all(&dir)?;
        eprintln!("generating {} ...", file.display());
        let cfg = recsys_data::synth::SynthConfig::preset(&args.scale)?.with_seed(42);
        recsys_data::synth::write_ml20m_csv(&cfg, &file)?;
    }
    let bytes = std::fs::metadata(&file)?.len();
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    for k in 0..args.repeat.max(1) {
        let out = Command::new(&exe).arg("probe-load").arg(&file).output()?;
        if !out.status.success() {
            bail!("probe failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: Value = serde_json::from_slice(&out.stdout)?;
        eprintln!("run {k}: {v}");
        runs.push(v);
    }
    let mut secs: Vec<f64> = runs
        .iter()
        .map(|r| r["seconds"].as_f64().unwrap())
        .collect();
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let rows = runs[0]["rows"].as_u64().unwrap();
    let peak = runs
        .iter()
        .map(|r| r["peak_rss_bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    let columnar = runs[0]["columnar_bytes"].as_u64().unwrap();
    let mut result = json!({
        "suite": "load",
        "machine": machine(),
        "file": file.display().to_string(),
        "file_bytes": bytes,
        "rows": rows,
        "recsys": {
            "seconds_median": median,
            "rows_per_s": rows as f64 / median,
            "mb_per_s": bytes as f64 / 1e6 / median,
            "peak_rss_bytes": peak,
            "columnar_bytes": columnar,
            "peak_over_columnar": peak as f64 / columnar as f64,
        },
    });
    if args.pandas {
        let script = format!(
            "import time,resource,pandas as pd\nt=time.perf_counter()\ndf=pd.read_csv({:?})\ns=time.perf_counter()-t\n\
             print(len(df), s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss*1024, pd.__version__)",
            file.display().to_string()
        );
        let mut pd = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let out = Command::new("python3")
                .arg("-c")
                .arg(&script)
                .output()
                .context("running python3")?;
            if !out.status.success() {
                bail!(
                    "pandas run failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let f: Vec<&str> = text.split_whitespace().collect();
            pd.push((f[1].parse::<f64>()?, f[2].parse::<u64>()?, f[3].to_string()));
        }
        pd.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (s, _, version) = pd[pd.len() / 2].clone();
        let rss = pd.iter().map(|p| p.1).max().unwrap();
        result["pandas"] = json!({"version": version, "seconds_median": s, "rows_per_s": rows as f64 / s, "peak_rss_bytes": rss});
        result["speedup_vs_pandas"] = json!(s / median);
    }
    Ok(result)
}

/// This process's peak resident memory (VmHWM) in KiB, 0 where /proc is absent.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Loads `path` and reports what it cost. Runs in its own process so peak RSS is the load's.
pub fn probe_load(path: &Path) -> Result<()> {
    let t = Instant::now();
    let ds = recsys_data::load(path, &recsys_data::LoadOptions::default())?;
    let seconds = t.elapsed().as_secs_f64();
    let peak_kb = peak_rss_kb();
    println!(
        "{}",
        json!({"rows": ds.interactions.len(), "users": ds.interactions.n_users, "items": ds.interactions.n_items,
               "seconds": seconds, "peak_rss_bytes": peak_kb * 1024, "columnar_bytes": ds.interactions.heap_bytes()})
    );
    Ok(())
}

/// Replaces the section between `<!-- bench:SUITE -->` markers in BENCHMARKS.md.
/// Renders a results file of `cargo xtask bench` into the BENCHMARKS.md section `section`
/// (results measured elsewhere, e.g. on a GPU machine, are copied back and rendered here).
pub fn render(file: &Path, section: &str) -> Result<()> {
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
    )?;
    let suite = r["suite"].as_str().unwrap_or("");
    write_section(section, suite, &r)
}

fn write_markdown(suite: &str, r: &Value) -> Result<()> {
    let suite = r["suite"].as_str().unwrap_or(suite);
    write_section(suite, suite, r)
}

/// "Machine: ..., commit ..., Burn ...." then `rest`, for the train and infer tables of `r`.
fn header(r: &Value, rest: &str) -> String {
    let m = &r["machine"];
    format!(
        "Machine: {} ({} cores, {} GiB), commit {}, Burn {}. {rest}",
        m["cpu"].as_str().unwrap_or(""),
        m["cores"],
        m["memory_gib"],
        m["commit"].as_str().unwrap_or(""),
        r["burn"].as_str().unwrap_or("")
    )
}

/// The first cells of a run's table row: `| model | backend | adapter | scale |`.
fn run_cells(x: &Value) -> String {
    let cell = |k: &str| x[k].as_str().unwrap_or("").to_string();
    format!(
        "| {} | {} | {} | {} |",
        cell("model"),
        cell("backend"),
        cell("adapter"),
        cell("scale")
    )
}

/// Writes the table of results `r` of `suite` between the `<!-- bench:SECTION -->` markers.
fn write_section(section: &str, suite: &str, r: &Value) -> Result<()> {
    let table = match suite {
        "load" => {
            let m = &r["machine"];
            let mut t = format!(
                "Machine: {} ({} cores, {} GiB), commit {}. File: synthetic ML-20M-shaped `ratings.csv`, {} rows, {:.0} MB.\n\n\
                 | loader | seconds (median) | rows/s | peak RSS | peak / columnar |\n|---|---:|---:|---:|---:|\n",
                m["cpu"].as_str().unwrap_or(""),
                m["cores"],
                m["memory_gib"],
                m["commit"].as_str().unwrap_or(""),
                r["rows"],
                r["file_bytes"].as_f64().unwrap_or(0.0) / 1e6
            );
            let x = &r["recsys"];
            t += &format!(
                "| recsys `load` | {:.3} | {:.1} M | {:.0} MB | {:.2} |\n",
                x["seconds_median"].as_f64().unwrap(),
                x["rows_per_s"].as_f64().unwrap() / 1e6,
                x["peak_rss_bytes"].as_f64().unwrap() / 1e6,
                x["peak_over_columnar"].as_f64().unwrap()
            );
            if let Some(p) = r.get("pandas") {
                t += &format!(
                    "| pandas {} `read_csv` | {:.3} | {:.1} M | {:.0} MB | |\n\nSpeed-up over pandas: {:.2}x.\n",
                    p["version"].as_str().unwrap_or(""),
                    p["seconds_median"].as_f64().unwrap(),
                    p["rows_per_s"].as_f64().unwrap() / 1e6,
                    p["peak_rss_bytes"].as_f64().unwrap() / 1e6,
                    r["speedup_vs_pandas"].as_f64().unwrap()
                );
            }
            t
        }
        "train" => {
            let mut t = header(
                r,
                "Synthetic MovieLens-shaped data; epoch time is the median of the epochs after a \
                 warm-up epoch.\n\n\
                 | model | backend | adapter | scale | batch | read-back | epoch s | samples/s | peak RSS | validation |\n\
                 |---|---|---|---|---:|---:|---:|---:|---:|---:|\n",
            );
            for x in r["runs"].as_array().into_iter().flatten() {
                if x["profile"].is_object() {
                    continue; // in the table of profiles below
                }
                let quality = match (x["valid_rmse"].as_f64(), x["valid_hr@100"].as_f64()) {
                    (Some(r), _) => format!("RMSE {r:.4}"),
                    (None, Some(h)) => format!("top-100 {h:.4}"),
                    _ => String::new(),
                };
                t += &format!(
                    "{} {} | {} | {:.3} | {:.0} | {:.0} MB | {} |\n",
                    run_cells(x),
                    x["batch_size"],
                    match x["readback"].as_u64() {
                        Some(0) => "auto".to_string(),
                        Some(n) => n.to_string(),
                        None => "1".to_string(),
                    },
                    x["epoch_seconds"].as_f64().unwrap_or(f64::NAN),
                    x["samples_per_s"].as_f64().unwrap_or(f64::NAN),
                    x["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                    quality,
                );
            }
            let profiled: Vec<&Value> = r["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["profile"].is_object())
                .collect();
            if !profiled.is_empty() {
                t += "\nWhere an epoch's training time goes (`--profile`: the device is waited for after each \
                      phase of every step, so these epochs run slower than the unprofiled ones above; seconds \
                      in the last epoch):\n\n\
                      | model | backend | adapter | scale | epoch s | batch | forward | backward | optimizer | loss read-back |\n\
                      |---|---|---|---|---:|---:|---:|---:|---:|---:|\n";
                for x in profiled {
                    let p = &x["profile"];
                    let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
                    t += &format!(
                        "{} {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                        run_cells(x),
                        x["epoch_seconds"].as_f64().unwrap_or(f64::NAN),
                        f("batch"),
                        f("forward"),
                        f("backward"),
                        f("optimizer"),
                        f("readback"),
                    );
                }
            }
            t
        }
        "train-torch" => {
            let workloads = r["workloads"].as_array().cloned().unwrap_or_default();
            let torch = workloads
                .first()
                .map(|w| w["torch"].clone())
                .unwrap_or(Value::Null);
            let mut t = header(
                r,
                &format!(
                    "PyTorch {} on the CPU ({} threads), `bench/torch_train.py`; the same training data, \
                     {} rounds alternated, each the median of its epochs after a warm-up epoch, then the \
                     median over rounds. Ratio: recsys seconds / PyTorch seconds (under 1: recsys is \
                     faster).\n\n\
                     | model | scale | PyTorch epoch s | backend | recsys epoch s | ratio |\n\
                     |---|---|---:|---|---:|---:|\n",
                    torch["version"].as_str().unwrap_or("?"),
                    torch["threads"],
                    r["rounds"],
                ),
            );
            for w in &workloads {
                for x in w["recsys"].as_array().into_iter().flatten() {
                    t += &format!(
                        "| {} | {} | {:.3} | {} | {:.3} | {:.2} |\n",
                        w["model"].as_str().unwrap_or(""),
                        w["scale"].as_str().unwrap_or(""),
                        w["torch"]["epoch_seconds_median"]
                            .as_f64()
                            .unwrap_or(f64::NAN),
                        x["backend"].as_str().unwrap_or(""),
                        x["epoch_seconds_median"].as_f64().unwrap_or(f64::NAN),
                        x["ratio_to_torch"].as_f64().unwrap_or(f64::NAN),
                    );
                }
            }
            t
        }
        "infer" => {
            let mut t = header(
                r,
                "Top-100 of every user, rated items excluded, selected on the device; the second of \
                 two passes.\n\n\
                 | model | backend | adapter | scale | users | items | seconds | users/s | peak RSS |\n\
                 |---|---|---|---|---:|---:|---:|---:|---:|\n",
            );
            for x in r["runs"].as_array().into_iter().flatten() {
                t += &format!(
                    "{} {} | {} | {:.3} | {:.0} | {:.0} MB |\n",
                    run_cells(x),
                    x["users"],
                    x["items"],
                    x["seconds"].as_f64().unwrap_or(f64::NAN),
                    x["users_per_s"].as_f64().unwrap_or(f64::NAN),
                    x["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                );
            }
            t
        }
        _ => return Ok(()),
    };
    let path = Path::new("BENCHMARKS.md");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- bench:{section} -->"),
        format!("<!-- /bench:{section} -->"),
    );
    let new = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{start}\n{table}{}", &text[..a], &text[b..]),
        _ => format!("{text}\n{start}\n{table}{end}\n"),
    };
    std::fs::write(path, new)?;
    eprintln!("updated BENCHMARKS.md ({section})");
    Ok(())
}

/// Runs every (model, backend, scale) of the train suite in its own process.
fn train_suite(args: &BenchArgs) -> Result<Value> {
    if args.torch {
        return torch_suite(args);
    }
    let mut runs = Vec::new();
    for readback in &args.readback {
        let mode = if args.profile { "profile" } else { "plain" };
        let (epochs, readback) = (args.epochs.to_string(), readback.to_string());
        runs.extend(probe_each(args, "train", &[&epochs, &readback, mode])?);
    }
    Ok(json!({"suite": "train", "machine": machine(), "burn": "0.22.1", "runs": runs}))
}

/// `--torch`: each workload of the train suite in recsys (every backend) and in PyTorch on the
/// same training data, alternated for `rounds` rounds, each run in its own process; the median
/// epoch time of each and the ratio recsys / PyTorch (under 1: recsys is faster).
fn torch_suite(args: &BenchArgs) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/torch_train.py");
    let epochs = args.epochs.max(2).to_string();
    let json_of = |out: std::process::Output, what: &str| -> Result<Value> {
        if !out.status.success() {
            bail!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or("");
        serde_json::from_str(line).with_context(|| format!("{what} printed no JSON: {text}"))
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut rows = Vec::new();
    for scale in &args.scales {
        for model in &args.models {
            let data = args.data_dir.join(format!("torch-{model}-{scale}.bin"));
            if !data.exists() {
                probe_dump(model, scale, &data)?;
            }
            let (mut torch_s, mut torch_info) = (Vec::new(), Value::Null);
            let mut ours: Vec<Vec<f64>> = vec![Vec::new(); args.backends.len()];
            let mut adapters = vec![Value::Null; args.backends.len()];
            for round in 0..args.rounds.max(1) {
                for (b, backend) in args.backends.iter().enumerate() {
                    eprintln!(
                        "train: {model} on {backend} at {scale}, round {} ...",
                        round + 1
                    );
                    let out = Command::new(&exe)
                        .args(["probe-train", model, backend, scale, &epochs, "0", "plain"])
                        .output()?;
                    let v = json_of(out, &format!("recsys {model} on {backend}"))?;
                    eprintln!("  {v}");
                    ours[b].push(v["epoch_seconds"].as_f64().unwrap_or(f64::NAN));
                    adapters[b] = v["adapter"].clone();
                }
                eprintln!(
                    "train: {model} in PyTorch at {scale}, round {} ...",
                    round + 1
                );
                let out = Command::new(&args.python)
                    .arg(&script)
                    .args(["--model", model, "--epochs", &epochs, "--data"])
                    .arg(&data)
                    .output()
                    .with_context(|| format!("running {}", args.python.display()))?;
                let v = json_of(out, &format!("PyTorch {model}"))?;
                eprintln!("  {v}");
                torch_s.push(v["epoch_seconds"].as_f64().unwrap_or(f64::NAN));
                torch_info = v;
            }
            let torch_median = median(torch_s.clone());
            let recsys: Vec<Value> = args
                .backends
                .iter()
                .zip(ours)
                .zip(adapters)
                .map(|((backend, s), adapter)| {
                    let m = median(s.clone());
                    json!({"backend": backend, "adapter": adapter, "epoch_seconds": s,
                           "epoch_seconds_median": m, "ratio_to_torch": m / torch_median})
                })
                .collect();
            rows.push(json!({"model": model, "scale": scale,
                             "torch": {"version": torch_info["torch"], "threads": torch_info["threads"],
                                       "epoch_seconds": torch_s, "epoch_seconds_median": torch_median},
                             "recsys": recsys}));
        }
    }
    Ok(
        json!({"suite": "train-torch", "machine": machine(), "burn": "0.22.1", "rounds": args.rounds,
              "epochs": args.epochs.max(2), "workloads": rows}),
    )
}

/// Runs every (model, backend, scale) of the infer suite in its own process.
fn infer_suite(args: &BenchArgs) -> Result<Value> {
    Ok(
        json!({"suite": "infer", "machine": machine(), "burn": "0.22.1",
              "runs": probe_each(args, "infer", &[])?}),
    )
}

/// `xtask probe-<what> MODEL BACKEND SCALE EXTRA...` for every combination, each in its own
/// process; the JSON each prints, or the error it died with.
fn probe_each(args: &BenchArgs, what: &str, extra: &[&str]) -> Result<Vec<Value>> {
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    for scale in &args.scales {
        for model in &args.models {
            for backend in &args.backends {
                eprintln!("{what}: {model} on {backend} at {scale} ...");
                let out = Command::new(&exe)
                    .arg(format!("probe-{what}"))
                    .args([model, backend, scale])
                    .args(extra)
                    .output()?;
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    eprintln!("  failed: {err}");
                    runs.push(
                        json!({"model": model, "backend": backend, "scale": scale, "error": err}),
                    );
                    continue;
                }
                let v: Value = serde_json::from_slice(&out.stdout)?;
                eprintln!("  {v}");
                runs.push(v);
            }
        }
    }
    Ok(runs)
}

/// Top-100 for every user of a synthetic data set of `scale`, each user's rated items excluded,
/// from an untrained `model` (the time does not depend on the weights), through
/// `topk::recommend`: users in batches of about 4M scores, each scored and reduced to its top
/// 100 on the device. The first pass warms up
/// (shader compilation on wgpu); the second is reported.
pub fn probe_infer(model: &str, backend: &str, scale: &str) -> Result<()> {
    let backend: recsys_train::BackendKind = backend.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = recsys_data::synth::SynthConfig::preset(scale)?.with_seed(42);
    let ds = recsys_data::synth::generate(&cfg);
    let x = &ds.interactions;
    let device = recsys_train::device(backend, 0)?.without_autodiff();
    let adapter = recsys_train::adapter_name(&device);
    let (config, _, task) = bench_model(model, &ds, x)?;
    if matches!(config, recsys_train::ModelConfig::AutoRec(_)) {
        bail!("the infer suite measures models that score from ids (not autorec)");
    }
    // The path of `recsys recommend --all-users`: a loaded run and `topk::recommend`.
    let run = recsys_train::LoadedRun {
        model: config.init(&device)?,
        config: recsys_train::RunConfig {
            normalize: Default::default(),
            normalizer: Default::default(),
            model: config,
            train: Default::default(),
            backend,
            device_index: 0,
            rating_scale: [ds.scale.0, ds.scale.1],
            task,
            data: Default::default(),
        },
        ids: ds.ids.clone(),
        device: device.clone(),
    };
    let seen = recsys_data::UserHistory::new(x);
    let users: Vec<u32> = (0..x.n_users as u32).collect();
    let k = 100.min(x.n_items);
    let pass = || -> f64 {
        let start = std::time::Instant::now();
        let lists = recsys_train::recommend(&run, &users, k, Some(&seen));
        assert!(
            lists.iter().all(|l| l.len() == k),
            "every user gets k items"
        );
        start.elapsed().as_secs_f64()
    };
    pass();
    let seconds = pass();
    println!(
        "{}",
        json!({"model": model, "backend": backend.to_string(), "adapter": adapter, "scale": scale,
               "users": x.n_users, "items": x.n_items, "k": k, "seconds": seconds,
               "users_per_s": x.n_users as f64 / seconds, "peak_rss_bytes": peak_rss_kb() * 1024})
    );
    Ok(())
}

/// The workload of each model in the train suite (the settings of the speed targets).
fn bench_model(
    model: &str,
    ds: &recsys_data::Dataset,
    train: &recsys_data::Interactions,
) -> Result<(recsys_train::ModelConfig, usize, recsys_train::Task)> {
    use recsys_models::{
        AutoRecBase, AutoRecConfig, MfConfig, MfOutput, NcfConfig, NcfKind, RecommenderNetConfig,
        TwoTowerConfig,
    };
    use recsys_train::{ImplicitLossKind, ImplicitTask, NcfSetup, Protocol, Task};
    let n = &ds.interactions;
    let (config, batch) = match model {
        // U-AutoRec, hidden 500, batch 256 rows (the users are the 60,000 most active at 20m).
        "autorec" => (
            recsys_train::ModelConfig::AutoRec(
                AutoRecConfig::new(n.n_users, n.n_items)
                    .with_base(AutoRecBase::User)
                    .with_hidden(vec![500]),
            ),
            256,
        ),
        "recnet" => (
            recsys_train::ModelConfig::RecommenderNet(
                RecommenderNetConfig::new(n.n_users, n.n_items)
                    .with_rating_min(ds.scale.0)
                    .with_rating_max(ds.scale.1),
            ),
            40_960,
        ),
        "mf" => (
            recsys_train::ModelConfig::Mf(
                MfConfig::new(n.n_users, n.n_items)
                    .with_embedding_dim(64)
                    .with_bias(true)
                    .with_global_mean(train.mean_rating() as f32),
            ),
            40_960,
        ),
        // NeuMF: GMF 32 + MLP 64-32-16 on the rated pairs (MSE through a scaled sigmoid; one
        // pass over the ratings per epoch, no sampled negatives).
        "neumf" => (
            recsys_train::ModelConfig::Ncf(NcfSetup {
                ncf: NcfConfig::new(n.n_users, n.n_items)
                    .with_kind(NcfKind::Neumf)
                    .with_embedding_dim(32)
                    .with_mlp_layers(vec![64, 32, 16])
                    .with_output(MfOutput::ScaledSigmoid)
                    .with_rating_min(ds.scale.0)
                    .with_rating_max(ds.scale.1)
                    .with_global_mean(train.mean_rating() as f32),
                pretrained: None,
            }),
            40_960,
        ),
        // Two-tower, dimension 64, in-batch softmax over batches of 4,096 pairs.
        "twotower" => {
            let config = TwoTowerConfig::new(n.n_users, n.n_items).with_embedding_dim(64);
            let task = Task::Implicit(ImplicitTask {
                loss: ImplicitLossKind::Softmax,
                protocol: Protocol::Factorized,
                ks: vec![10, 100],
                ..Default::default()
            });
            return Ok((recsys_train::ModelConfig::TwoTower(config), 4_096, task));
        }
        other => bail!("no bench workload for model {other:?}"),
    };
    Ok((config, batch, Task::Rating))
}

/// The synthetic data set of `scale` and its seeded split (1% validation, at most 10,000
/// ratings) that the train suite's `model` trains on.
fn bench_data(model: &str, scale: &str) -> Result<(recsys_data::Dataset, recsys_data::Split)> {
    let cfg = recsys_data::synth::SynthConfig::preset(scale)?.with_seed(42);
    let mut ds = recsys_data::synth::generate(&cfg);
    if model == "autorec" {
        // The AutoRec notebook keeps the 60,000 most active users.
        ds = ds.top_users(60_000);
    }
    let valid_n = (ds.interactions.len() / 100).clamp(1, 10_000);
    let split = recsys_data::split(
        &ds.interactions,
        &recsys_data::SplitMethod::Random {
            valid: recsys_data::Size::Count(valid_n),
            test: recsys_data::Size::Count(0),
        },
        42,
    )?;
    Ok((ds, split))
}

/// Writes the training part that the train suite's `model` trains on at `scale` for
/// `bench/torch_train.py`: magic `RCS1`, n_users, n_items, n (u32 little-endian), then the
/// users, the items (u32) and the ratings (f32).
pub fn probe_dump(model: &str, scale: &str, path: &Path) -> Result<()> {
    let (_, split) = bench_data(model, scale)?;
    let x = &split.train;
    let mut out = Vec::with_capacity(16 + 12 * x.len());
    for v in [
        0x5243_5331u32,
        x.n_users as u32,
        x.n_items as u32,
        x.len() as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for &u in &x.users {
        out.extend_from_slice(&u.to_le_bytes());
    }
    for &i in &x.items {
        out.extend_from_slice(&i.to_le_bytes());
    }
    for &r in &x.ratings {
        out.extend_from_slice(&r.to_le_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Trains one model and prints what it cost. Runs in its own process so peak RSS is its own.
pub fn probe_train(
    model: &str,
    backend: &str,
    scale: &str,
    epochs: usize,
    readback: usize,
    profile: bool,
) -> Result<()> {
    let backend: recsys_train::BackendKind = backend.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (ds, split) = bench_data(model, scale)?;
    let (model_cfg, batch_size, task) = bench_model(model, &ds, &split.train)?;
    let metric = match task {
        recsys_train::Task::Rating => recsys_train::Metric::Rmse,
        recsys_train::Task::Implicit(_) => "hr@100".parse().map_err(anyhow::Error::msg)?,
    };
    let config = recsys_train::RunConfig {
        normalize: Default::default(),
        normalizer: Default::default(),
        model: model_cfg,
        train: recsys_train::TrainConfig {
            epochs: epochs.max(2),
            batch_size,
            patience: None,
            metric,
            loss_readback_steps: readback,
            profile,
            ..Default::default()
        },
        backend,
        device_index: 0,
        rating_scale: [ds.scale.0, ds.scale.1],
        task,
        data: Default::default(),
    };
    let dir = tempfile::tempdir()?;
    let summary = recsys_train::train_run(
        dir.path(),
        &config,
        &ds.ids,
        &split.train,
        Some(&split.valid),
        true,
    )?;
    // Training time of an epoch (validation excluded), from its samples/s; AutoRec's samples
    // are rating rows (users), the others' are ratings.
    let samples = match &config.model {
        recsys_train::ModelConfig::AutoRec(_) => {
            split.train.user_counts().iter().filter(|&&c| c > 0).count()
        }
        _ => split.train.len(),
    } as f64;
    let mut secs: Vec<f64> = summary
        .history
        .iter()
        .skip(1)
        .map(|h| samples / h.samples_per_s)
        .collect();
    secs.sort_by(f64::total_cmp);
    let epoch = secs[secs.len() / 2];
    let last = summary.history.last().expect("at least one epoch");
    let peak_kb = peak_rss_kb();
    println!(
        "{}",
        json!({"model": model, "backend": backend.to_string(), "adapter": summary.adapter, "scale": scale,
               "batch_size": batch_size, "train_ratings": split.train.len(), "epochs": summary.history.len(),
               "epoch_seconds": epoch, "first_epoch_seconds": samples / summary.history[0].samples_per_s,
               "samples_per_s": split.train.len() as f64 / epoch, "peak_rss_bytes": peak_kb * 1024,
               "readback": readback,
               "profile": summary.history.last().and_then(|h| h.profile.clone()),
               "valid_rmse": last.valid.as_ref().map(|v| v.rmse),
               "valid_hr@100": last.ranking.as_ref().and_then(|r| r.get("hr@100"))})
    );
    Ok(())
}
