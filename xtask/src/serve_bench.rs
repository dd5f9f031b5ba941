//! `cargo xtask bench --suite ann` (the approximate indexes' recall and speed against brute
//! force on synthetic item vectors) and `--suite serve` (a load generator against `recsys serve` over loopback).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recsys_train::ann::{HnswParams, IndexParams, ItemIndex, IvfParams, Measure, Method, RunIndex};
use recsys_train::topk::{Vectors, dot, top_k_streamed};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Clustered vectors like a factorised model's: `clusters` centres, each item a centre plus
/// noise, scaled by a popularity-like factor (norms vary as learned item vectors' do).
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vectors {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = move || -> f32 {
        // Box-Muller.
        let (a, b): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random_range(0.0..1.0));
        (-2.0 * a.ln()).sqrt() * (std::f32::consts::TAU * b).cos()
    };
    let centres: Vec<f32> = (0..clusters * dim).map(|_| normal()).collect();
    let mut values = Vec::with_capacity(n * dim);
    for k in 0..n {
        let c = &centres[(k % clusters) * dim..(k % clusters + 1) * dim];
        let scale = 0.5 + (normal() * 0.3).exp() * 0.5;
        values.extend(c.iter().map(|x| (x + 0.7 * normal()) * scale));
    }
    Vectors { values, n, dim }
}

/// The index kind named `name` (`ivf`, `hnsw`).
pub fn index_method(name: &str) -> Result<Method> {
    match name {
        "ivf" => Ok(Method::Ivf),
        "hnsw" => Ok(Method::Hnsw),
        other => bail!("unknown index method {other:?}: expected ivf or hnsw"),
    }
}

/// What the ann suite measures.
pub struct AnnPlan<'a> {
    pub sizes: &'a [usize],
    pub dim: usize,
    pub queries: usize,
    /// `ivf`, `hnsw`.
    pub methods: &'a [String],
    /// Inverted file: lists scanned, each measured on one index (0: its default).
    pub probes: &'a [usize],
    /// HNSW: `ef_search` values, each measured on one graph.
    pub ef: &'a [usize],
    /// Trained runs whose own item vectors are measured too, each with its users as queries
    /// (the first `queries` of them).
    pub runs: &'a [PathBuf],
}

/// Recall@10 and queries per second of each index against brute force, per catalogue size.
pub fn ann_suite(plan: &AnnPlan<'_>) -> Result<Value> {
    let mut rows = Vec::new();
    for &n in plan.sizes.iter().filter(|&&n| n > 0) {
        eprintln!("ann: {n} items, {} dimensions", plan.dim);
        let items = clustered(n, plan.dim, 200, 1);
        let users = clustered(plan.queries, plan.dim, 200, 2);
        ann_catalogue(plan, "synthetic", &items, &users, &mut rows)?;
    }
    for dir in plan.runs {
        let run = recsys_train::load_run(
            dir,
            recsys_train::Checkpoint::Best,
            Some((recsys_train::BackendKind::Flex, 0)),
        )?;
        let r = recsys_train::retrieval::Retrieval::new(&run)
            .with_context(|| format!("{}: the model has no retrieval vectors", dir.display()))?;
        let users = Vectors {
            n: r.users.n.min(plan.queries),
            dim: r.users.dim,
            values: r.users.values[..r.users.n.min(plan.queries) * r.users.dim].to_vec(),
        };
        eprintln!(
            "ann: run {} ({} items, {} dimensions)",
            dir.display(),
            r.items.n,
            r.items.dim
        );
        ann_catalogue(
            plan,
            &dir.display().to_string(),
            &r.items,
            &users,
            &mut rows,
        )?;
    }
    Ok(json!({"suite": "ann", "rows": rows}))
}

/// [`ann_suite`]'s figures for one catalogue `items`, queried by each of `users`.
fn ann_catalogue(
    plan: &AnnPlan<'_>,
    source: &str,
    items: &Vectors,
    users: &Vectors,
    rows: &mut Vec<Value>,
) -> Result<()> {
    let (n, dim, queries, k) = (items.n, items.dim, users.n, 10);
    // Brute force as `--exact` serves it: every item scored, streamed through a heap of k.
    let started = Instant::now();
    let exact: Vec<Vec<u32>> = (0..queries)
        .map(|q| {
            let u = users.row(q);
            top_k_streamed(n, k, &[], |i| dot(u, items.row(i)))
                .iter()
                .map(|s| s.0)
                .collect()
        })
        .collect();
    let brute_qps = queries as f64 / started.elapsed().as_secs_f64();
    // Recall@10 and queries per second of one setting, single-threaded as brute force.
    let measure = |index: &ItemIndex| {
        let started = Instant::now();
        let found: Vec<Vec<u32>> = (0..queries)
            .map(|q| {
                let u = users.row(q);
                index
                    .search(u, k, |_| false, |i| dot(u, items.row(i as usize)))
                    .unwrap_or_default()
                    .iter()
                    .map(|s| s.0)
                    .collect()
            })
            .collect();
        let qps = queries as f64 / started.elapsed().as_secs_f64();
        let hits: usize = found
            .iter()
            .zip(&exact)
            .map(|(f, e)| f.iter().filter(|i| e.contains(i)).count())
            .sum();
        (hits as f64 / (k * queries) as f64, qps)
    };
    for method in plan.methods {
        // One index per catalogue: neither the lists nor the graph depend on the setting
        // searched with.
        let params = IndexParams {
            method: index_method(method)?,
            hnsw: HnswParams {
                ef_construction: 100,
                ef_search: plan.ef.first().copied().unwrap_or(100),
                seed: 42,
            },
            ..IndexParams::default()
        };
        let started = Instant::now();
        let mut index = ItemIndex::build(items, Measure::InnerProduct, &params);
        let build_s = started.elapsed().as_secs_f64();
        let settings: &[usize] = match params.method {
            Method::Ivf => plan.probes,
            Method::Hnsw => plan.ef,
        };
        for &setting in settings {
            let label = match &mut index {
                ItemIndex::Ivf(ivf) => {
                    ivf.set_probes(if setting == 0 {
                        IvfParams::probes_for(ivf.lists())
                    } else {
                        setting
                    });
                    format!("{} lists, {} probed", ivf.lists(), ivf.probes())
                }
                ItemIndex::Hnsw(graph) => {
                    graph.set_ef_search(setting)?;
                    format!("ef_search {setting}")
                }
            };
            let (recall, ann_qps) = measure(&index);
            eprintln!(
                "  {method} {label}: build {build_s:.1} s, recall@10 {recall:.4}, {ann_qps:.0} q/s vs brute force {brute_qps:.0} q/s ({:.1}x)",
                ann_qps / brute_qps
            );
            let mut row = json!({"source": source, "n_items": n, "dim": dim, "queries": queries,
                                 "method": method, "build_seconds": build_s,
                                 "recall_at_10": recall, "ann_qps": ann_qps,
                                 "brute_force_qps": brute_qps, "speedup": ann_qps / brute_qps});
            match &index {
                ItemIndex::Ivf(ivf) => {
                    row["lists"] = json!(ivf.lists());
                    row["probes"] = json!(ivf.probes());
                }
                ItemIndex::Hnsw(_) => {
                    row["ef_construction"] = json!(100);
                    row["ef_search"] = json!(setting);
                }
            }
            rows.push(row);
        }
    }
    Ok(())
}

/// What the load generator is asked.
pub struct LoadPlan {
    /// The index the run is served with (`None`: exact top-K).
    pub index: Option<Method>,
    pub requests: usize,
    pub concurrency: usize,
    pub time_limit: Duration,
    pub k: usize,
}

/// Trains (once, kept in `work`) an MF run on `data` and serves it in this process; drives it
/// with `plan`. Bounded: at most `plan.requests` requests and `plan.time_limit`.
pub fn serve_suite(data: &str, work: &Path, plan: &LoadPlan) -> Result<Value> {
    // One run per data source, kept for later invocations.
    let name: String = data
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let run_dir = work.join(format!("serve-mf-{}", name.trim_matches('-')));
    if !run_dir.join("manifest.json").exists() {
        eprintln!(
            "serve: training an MF run on {data} into {}",
            run_dir.display()
        );
        train_mf(data, &run_dir)?;
    }
    let index_path = run_dir.join(recsys_train::ann::INDEX_FILE);
    match plan.index {
        None if index_path.exists() => std::fs::remove_file(&index_path)?,
        None => {}
        Some(method) => {
            let run = recsys_train::load_run(
                &run_dir,
                recsys_train::Checkpoint::Best,
                Some((recsys_train::BackendKind::Flex, 0)),
            )?;
            let params = IndexParams {
                method,
                ..IndexParams::default()
            };
            let started = Instant::now();
            let index = RunIndex::build(&run, params)?;
            eprintln!(
                "serve: {method:?} index of {} items built in {:.1} s",
                index.n_items,
                started.elapsed().as_secs_f64()
            );
            index.save(&run_dir)?;
        }
    }
    let config = recsys_serve::ServeConfig {
        runs: vec![("mf".into(), run_dir.clone())],
        addr: "127.0.0.1:0".into(),
        load: recsys_serve::LoadOptions {
            backend: Some((recsys_train::BackendKind::Flex, 0)),
            ..Default::default()
        },
        limits: Default::default(),
        admin_token: None,
    };
    let runs = recsys_serve::load_runs(&config)?;
    let users: Vec<String> = runs[0].run.ids.users.raw_ids().to_vec();
    let n_items = runs[0].n_items();
    let server = recsys_serve::spawn_runs(&config, runs)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(drive(server.addr, users, plan))?;
    server.stop()?;
    let mut out = result;
    out["n_items"] = json!(n_items);
    out["index"] = json!(plan.index);
    out["loadavg_before"] = json!(load.trim());
    out["suite"] = json!("serve");
    Ok(out)
}

fn train_mf(data: &str, out: &Path) -> Result<()> {
    let recipe = recsys_train::DataRecipe {
        source: data.to_string(),
        ..Default::default()
    };
    let parts = recsys_train::replay::replay(&recipe, None)?;
    let ds = &parts.dataset;
    // Serving speed does not depend on how well the vectors were learned: beyond a million
    // ratings one epoch of larger batches gives the catalogue's shape in minutes.
    let large = parts.train.len() > 1_000_000;
    let model = recsys_models::MfConfig::new(ds.ids.n_users(), ds.ids.n_items())
        .with_embedding_dim(32)
        .with_bias(true)
        .with_global_mean(parts.train.mean_rating() as f32);
    let cfg = recsys_train::RunConfig {
        model: recsys_train::ModelConfig::from(model),
        train: recsys_train::TrainConfig {
            epochs: if large { 1 } else { 5 },
            batch_size: if large { 16_384 } else { 2048 },
            ..Default::default()
        },
        backend: recsys_train::BackendKind::Flex,
        device_index: 0,
        rating_scale: [ds.scale.0, ds.scale.1],
        task: Default::default(),
        data: recipe,
        normalize: Default::default(),
        normalizer: Default::default(),
    };
    recsys_train::train_run(out, &cfg, &ds.ids, &parts.train, Some(&parts.valid), true)?;
    Ok(())
}

/// `concurrency` keep-alive connections, each sending `POST /v1/recommend` for random users
/// until the shared request budget or the time limit runs out.
async fn drive(addr: std::net::SocketAddr, users: Vec<String>, plan: &LoadPlan) -> Result<Value> {
    let users = Arc::new(users);
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + plan.time_limit;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..plan.concurrency {
        let (users, next) = (users.clone(), next.clone());
        let (budget, k) = (plan.requests, plan.k);
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64);
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while next.fetch_add(1, Ordering::Relaxed) < budget && Instant::now() < deadline {
                let user = &users[rng.random_range(0..users.len())];
                let body = format!(r#"{{"user": "{user}", "k": {k}, "exclude_seen": true}}"#);
                let req = format!(
                    "POST /v1/recommend HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let t = Instant::now();
                stream.write_all(req.as_bytes()).await?;
                let status = read_response(&mut stream, &mut buf).await?;
                lat.push(t.elapsed());
                if status != 200 {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        lat.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0
    };
    let rps = lat.len() as f64 / seconds;
    eprintln!(
        "serve: {} requests in {seconds:.1} s at concurrency {}: {rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {errors} errors",
        lat.len(),
        plan.concurrency,
        pct(0.5),
        pct(0.99)
    );
    Ok(
        json!({"requests": lat.len(), "seconds": seconds, "concurrency": plan.concurrency,
              "k": plan.k, "requests_per_second": rps, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
              "errors": errors}),
    )
}

/// Reads one HTTP/1.1 response (headers and a `content-length` body); its status.
async fn read_response(stream: &mut tokio::net::TcpStream, buf: &mut [u8]) -> Result<u16> {
    let mut have = 0usize;
    loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        have += n;
        let text = &buf[..have];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&text[..end]).context("response head")?;
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("status line")?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .context("content-length")?;
            let total = end + 4 + len;
            if total > buf.len() {
                bail!("response larger than the buffer");
            }
            while have < total {
                let n = stream.read(&mut buf[have..total]).await?;
                if n == 0 {
                    bail!("the server closed the connection");
                }
                have += n;
            }
            return Ok(status);
        }
        if have == buf.len() {
            bail!("response head larger than the buffer");
        }
    }
}

/// The data the serve suite trains on: `$RECSYS_DATA_DIR/ml-100k` when present, else ML-100K's
/// synthetic stand-in.
pub fn serve_data() -> String {
    std::env::var_os("RECSYS_DATA_DIR")
        .map(|d| PathBuf::from(d).join("ml-100k"))
        .filter(|p| p.exists())
        .map_or("synthetic:100k".to_string(), |p| p.display().to_string())
}
