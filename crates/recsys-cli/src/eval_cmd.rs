//! `recsys eval` and `recsys predict`: a trained run scored on a part of its split, or on one
//! pair; printing.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use recsys_train::{
    Checkpoint, LoadedRun, Part, Protocol, RankingMetrics, RatingMetrics, heldout_ranking, load_run,
};
use serde_json::{Value, json};

use crate::args::BackendArgs;
use crate::prep::{Prepared, RunArgs};

/// Rating or ranking metrics of one evaluation.
pub enum Metrics {
    Rating(RatingMetrics),
    Ranking(&'static str, RankingMetrics),
}

impl Metrics {
    pub fn json(&self) -> Value {
        match self {
            Metrics::Rating(m) => rating_json(m),
            Metrics::Ranking(_, m) if m.n() == 0 => {
                json!({"n": 0, "note": "no lists: the part has no held-out pairs to rank"})
            }
            Metrics::Ranking(_, m) => json!(m),
        }
    }

    pub fn print(&self, label: &str) {
        match self {
            Metrics::Rating(m) if m.n == 0 => println!("{label}: no ratings (nothing to score)"),
            Metrics::Ranking(protocol, m) if m.n() == 0 => {
                println!("{label}: no lists ({protocol} ranking: nothing to rank)")
            }
            Metrics::Rating(m) => println!(
                "{label}: rmse {:.4}  mae {:.4}  mse {:.4}  mape {:.2}%  r2 {:.4}  ({} ratings)",
                m.rmse, m.mae, m.mse, m.mape, m.r2, m.n
            ),
            Metrics::Ranking(protocol, m) => {
                let mut ks: Vec<usize> =
                    m.0.keys()
                        .filter_map(|k| k.strip_prefix("hr@")?.parse().ok())
                        .collect();
                ks.sort_unstable();
                println!("{label} ({protocol} ranking, {} lists):", m.n());
                for k in ks {
                    let g = |name: &str| m.get(&format!("{name}@{k}")).unwrap_or(f64::NAN);
                    println!(
                        "  @{k:<4} hr {:.4}  ndcg {:.4}  recall {:.4}  precision {:.4}  map {:.4}  mrr {:.4}",
                        g("hr"),
                        g("ndcg"),
                        g("recall"),
                        g("precision"),
                        g("map"),
                        g("mrr")
                    );
                }
                if let (Some(mrr), Some(auc)) = (m.get("mrr"), m.get("auc")) {
                    println!("  mrr {mrr:.4}  auc {auc:.4}");
                }
            }
        }
    }
}

/// Rating metrics as JSON; an evaluation of no ratings has `null` metrics and a note, never a
/// score of 0.
pub fn rating_json(m: &RatingMetrics) -> Value {
    if m.n == 0 {
        return json!({"rmse": null, "mae": null, "mse": null, "mape": null, "r2": null, "n": 0,
                      "note": "no ratings: the part is empty"});
    }
    json!({"rmse": m.rmse, "mae": m.mae, "mse": m.mse, "mape": m.mape, "r2": m.r2, "n": m.n})
}

/// The ranking metrics of `part` under `protocol` (see [`heldout_ranking`]).
pub fn heldout_metrics(
    dir: &Path,
    run: &LoadedRun,
    prep: &Prepared,
    part: Part,
    protocol: Protocol,
    ks: &[usize],
    negatives: Option<&Path>,
) -> Result<Metrics> {
    let task = heldout_ranking(dir, run, prep.parts(), part, protocol, ks, negatives)?;
    Ok(Metrics::Ranking(task.protocol(), run.rank(&task)))
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Which part of the run's split.
    #[arg(long, value_enum, default_value_t = Part::Test)]
    part: Part,
    /// Rank instead of rating metrics: sampled (each held-out pair among fixed negatives, NCF),
    /// full (all items, the user's other known items excluded) or factorized (each held-out
    /// pair among all items: TFRS' top-K accuracy). Implicit runs default to their own
    /// protocol.
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Cutoffs of the ranking metrics.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
    k: Vec<usize>,
    /// Negatives for the sampled protocol, in the NCF `.test.negative` format (default: the
    /// run's `<part>.negative`, drawn once from its seed).
    #[arg(long)]
    negatives: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let run = args.run.load()?;
    let prep = args.run.open_data(&run)?;
    let protocol = args
        .protocol
        .or_else(|| run.config.task.implicit().map(|t| t.protocol));
    let m = match protocol {
        Some(p) => heldout_metrics(
            &args.run.run,
            &run,
            &prep,
            args.part,
            p,
            &args.k,
            args.negatives.as_deref(),
        )?,
        None if args.negatives.is_some() => bail!("--negatives applies to --protocol sampled"),
        None => Metrics::Rating(run.evaluate(prep.parts().get(args.part))),
    };
    if args.json {
        let protocol = protocol.map(|p| json!(p));
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(), "model": run.config.model.name(),
                   "backend": run.config.backend.to_string(), "part": args.part.name(),
                   "protocol": protocol, "metrics": m.json()})
        );
    } else {
        m.print(args.part.name());
    }
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    run: PathBuf,
    /// Raw user id, as in the data file.
    #[arg(long)]
    user: String,
    /// Raw item id, as in the data file.
    #[arg(long)]
    item: String,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long)]
    json: bool,
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let run = load_run(&args.run, Checkpoint::Best, args.backend.chosen())?;
    let u = run.ids.user(&args.user)?;
    let i = run.ids.item(&args.item)?;
    let raw = run.predict(&[u], &[i])[0];
    let (lo, hi) = run.rating_scale();
    let rating = raw.clamp(lo, hi);
    if args.json {
        println!(
            "{}",
            json!({"user": args.user, "item": args.item, "prediction": rating, "unclamped": raw})
        );
    } else {
        println!(
            "user {} item {}: predicted rating {rating:.3}",
            args.user, args.item
        );
    }
    Ok(())
}
