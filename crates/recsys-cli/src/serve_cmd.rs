//! `recsys serve` (runs behind HTTP, `recsys-serve`) and `recsys index` (an approximate
//! nearest-neighbour index of a run's item vectors, `recsys_train::ann`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use recsys_serve::{ADMIN_TOKEN_ENV, Limits, LoadOptions, ServeConfig};
use recsys_train::ann::{
    HnswParams, INDEX_FILE, IndexParams, ItemIndex, IvfParams, Method, RunIndex,
};
use recsys_train::{Checkpoint, load_run};
use serde_json::json;

use crate::args::BackendArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// A run directory, or NAME=DIR; repeat to serve several (the first is the default model).
    #[arg(long, required = true)]
    run: Vec<String>,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    #[arg(long, value_enum, default_value_t = Checkpoint::Best)]
    checkpoint: Checkpoint,
    #[command(flatten)]
    backend: BackendArgs,
    /// Brute-force top-K even for runs with an index.
    #[arg(long)]
    exact: bool,
    /// The largest k a request may ask for.
    #[arg(long, default_value = "1000")]
    max_k: usize,
    /// The most pairs one /v1/score request may send.
    #[arg(long, default_value = "10000")]
    max_pairs: usize,
    /// The largest request body, in bytes.
    #[arg(long, default_value = "1048576")]
    max_body: usize,
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let runs = args
        .run
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((name, dir)) if !name.is_empty() => Ok((name.to_string(), PathBuf::from(dir))),
            Some(_) => bail!("--run {spec:?}: the name before '=' is empty"),
            None => {
                let dir = PathBuf::from(spec);
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| spec.clone());
                Ok((name, dir))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let config = ServeConfig {
        runs,
        addr: args.addr.clone(),
        load: LoadOptions {
            checkpoint: args.checkpoint,
            backend: args.backend.chosen(),
            exact: args.exact,
        },
        limits: Limits {
            max_k: args.max_k,
            max_pairs: args.max_pairs,
            max_batch: Limits::default().max_batch,
            max_body: args.max_body,
        },
        admin_token: std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .filter(|t| !t.is_empty()),
    };
    recsys_serve::serve_blocking(&config, |addr, runs| {
        for r in runs {
            let d = r.describe();
            eprintln!(
                "serving {} ({}, {} users, {} items{}) from {}",
                r.name,
                d["model"].as_str().unwrap_or(""),
                d["n_users"],
                d["n_items"],
                match d["index_method"].as_str() {
                    Some("ivf") => ", inverted-file index",
                    Some("hnsw") => ", HNSW index",
                    _ => "",
                },
                r.dir.display()
            );
        }
        // The address on stdout, alone on its line, for scripts that start on port 0.
        println!("listening on http://{addr}");
    })
    .context("recsys serve")?;
    eprintln!("stopped");
    Ok(())
}

#[derive(Args)]
pub struct IndexArgs {
    /// A run directory written by `recsys train`; the index is written into it.
    #[arg(long)]
    run: PathBuf,
    #[arg(long, value_enum, default_value_t = Checkpoint::Best)]
    checkpoint: Checkpoint,
    #[command(flatten)]
    backend: BackendArgs,
    /// The kind of index: an inverted file of k-means lists, or an HNSW graph.
    #[arg(long, value_enum, default_value_t = Method::Ivf)]
    method: Method,
    /// Inverted file: lists (0: about 4 √items).
    #[arg(long, default_value = "0")]
    lists: usize,
    /// Inverted file: lists scanned per query (0: 2.5 √lists, at least 8).
    #[arg(long, default_value = "0")]
    probes: usize,
    /// HNSW: candidates kept while building.
    #[arg(long, default_value = "100")]
    ef_construction: usize,
    /// HNSW: candidates kept while searching.
    #[arg(long, default_value = "100")]
    ef_search: usize,
    #[arg(long)]
    json: bool,
}

pub fn index(args: IndexArgs) -> Result<()> {
    let run = load_run(&args.run, args.checkpoint, args.backend.chosen())?;
    let params = IndexParams {
        method: args.method,
        ivf: IvfParams {
            lists: args.lists,
            probes: args.probes,
            ..IvfParams::default()
        },
        hnsw: HnswParams {
            ef_construction: args.ef_construction,
            ef_search: args.ef_search,
            ..HnswParams::default()
        },
    };
    let started = Instant::now();
    let index = RunIndex::build(&run, params)?;
    let n_items = index.n_items;
    let (ip, cos) = (index.inner_product.is_some(), index.cosine.is_some());
    let (lists, probes) = match index.inner_product.as_ref().or(index.cosine.as_ref()) {
        Some(ItemIndex::Ivf(i)) => (Some(i.lists()), Some(i.probes())),
        _ => (None, None),
    };
    index.save(&args.run)?;
    let seconds = started.elapsed().as_secs_f64();
    let path = args.run.join(INDEX_FILE);
    if args.json {
        println!(
            "{}",
            json!({"run_dir": args.run.display().to_string(), "index": path.display().to_string(),
                   "n_items": n_items, "inner_product": ip, "cosine": cos,
                   "method": params.method, "lists": lists, "probes": probes,
                   "ef_construction": params.hnsw.ef_construction,
                   "ef_search": params.hnsw.ef_search,
                   "seconds": seconds})
        );
    } else {
        println!(
            "{} of {n_items} items ({}) written to {} in {seconds:.1} s",
            match (params.method, lists, probes) {
                (Method::Ivf, Some(l), Some(p)) =>
                    format!("inverted file ({l} lists, {p} scanned per query)"),
                _ => "HNSW index".to_string(),
            },
            match (ip, cos) {
                (true, true) => "inner product for recommend, cosine for similar",
                (true, false) => "inner product for recommend",
                _ => "cosine for similar",
            },
            path.display()
        );
    }
    Ok(())
}
