//! `recsys eval` and `recsys predict`: a trained run scored on a part of its split, or on one
//! pair; printing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use recsys_data::{Interactions, Remapped};
use recsys_train::{
    Checkpoint, LoadedRun, Part, Protocol, RankingMetrics, RatingMetrics, heldout_ranking, load_run,
};
use serde_json::{Value, json};

use crate::args::BackendArgs;
use crate::prep::{EvalData, Prepared, RunArgs};

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

/// `eval --protocol`: a ranking protocol, or the hidden-ratings check of rating models.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalProtocol {
    Sampled,
    Full,
    Factorized,
    /// Hide --hide ratings of the part, let the model read the rest (with the run's training
    /// data), and score its predictions of the hidden ones.
    Hidden,
}

impl EvalProtocol {
    fn ranking(self) -> Option<Protocol> {
        match self {
            EvalProtocol::Sampled => Some(Protocol::Sampled),
            EvalProtocol::Full => Some(Protocol::Full),
            EvalProtocol::Factorized => Some(Protocol::Factorized),
            EvalProtocol::Hidden => None,
        }
    }
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Which part of the run's split (default: test). With --data naming data of other ids
    /// than the run's, every rating of that data is scored instead.
    #[arg(long, value_enum)]
    part: Option<Part>,
    /// Rank instead of rating metrics: sampled (each held-out pair among fixed negatives, NCF),
    /// full (all items, the user's other known items excluded) or factorized (each held-out
    /// pair among all items: TFRS' top-K accuracy). Implicit runs default to their own
    /// protocol. Or hidden: the hidden-ratings check of rating models (--hide, --seed).
    #[arg(long, value_enum)]
    protocol: Option<EvalProtocol>,
    /// Cutoffs of the ranking metrics.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
    k: Vec<usize>,
    /// Negatives for the sampled protocol, in the NCF `.test.negative` format (default: the
    /// run's `<part>.negative`, drawn once from its seed).
    #[arg(long)]
    negatives: Option<PathBuf>,
    /// How many ratings of the part the hidden protocol hides (all of them when it has fewer).
    #[arg(long, default_value_t = 2000)]
    hide: usize,
    /// Seed of the hidden protocol's choice of ratings (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let run = args.run.load()?;
    if args.protocol != Some(EvalProtocol::Hidden) && (args.seed.is_some()) {
        bail!("--seed applies to --protocol hidden");
    }
    let data = args.run.open_for_eval(&run)?;
    let prep = match data {
        EvalData::Run(prep) => prep,
        EvalData::Other { source, data } => return eval_other(&args, &run, &source, &data),
    };
    let part = args.part.unwrap_or(Part::Test);
    let ranking = match args.protocol {
        Some(p) => p.ranking(),
        None => run.config.task.implicit().map(|t| t.protocol),
    };
    let m = match (args.protocol, ranking) {
        (Some(EvalProtocol::Hidden), _) => {
            let parts = prep.parts();
            // The model reads every rating the run knows of but the hidden ones.
            let context: Vec<&Interactions> = [Part::Train, Part::Valid, Part::Test]
                .into_iter()
                .filter(|&p| p != part)
                .map(|p| parts.get(p))
                .filter(|x| !x.is_empty())
                .collect();
            Metrics::Rating(hidden(&args, &run, &context, parts.get(part))?)
        }
        (_, Some(p)) => heldout_metrics(
            &args.run.run,
            &run,
            &prep,
            part,
            p,
            &args.k,
            args.negatives.as_deref(),
        )?,
        (_, None) if args.negatives.is_some() => {
            bail!("--negatives applies to --protocol sampled")
        }
        (_, None) => Metrics::Rating(run.evaluate(prep.parts().get(part))),
    };
    if args.json {
        let protocol = args
            .protocol
            .map(protocol_name)
            .or_else(|| ranking.map(|p| json!(p)));
        let hidden = (args.protocol == Some(EvalProtocol::Hidden))
            .then(|| json!({"hide": args.hide, "seed": hidden_seed(&args, &run)}));
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(), "model": run.config.model.name(),
                   "backend": run.config.backend.to_string(), "part": part.name(),
                   "protocol": protocol, "hidden": hidden, "metrics": m.json()})
        );
    } else if args.protocol == Some(EvalProtocol::Hidden) {
        m.print(&format!("{} ({} hidden ratings)", part.name(), args.hide));
    } else {
        m.print(part.name());
    }
    Ok(())
}

fn protocol_name(p: EvalProtocol) -> Value {
    json!(match p {
        EvalProtocol::Sampled => "sampled",
        EvalProtocol::Full => "full",
        EvalProtocol::Factorized => "factorized",
        EvalProtocol::Hidden => "hidden",
    })
}

fn hidden_seed(args: &EvalArgs, run: &LoadedRun) -> u64 {
    args.seed.unwrap_or(run.config.train.seed)
}

/// The hidden-ratings check of a rating run on `part`, the model reading `context` too.
fn hidden(
    args: &EvalArgs,
    run: &LoadedRun,
    context: &[&Interactions],
    part: &Interactions,
) -> Result<RatingMetrics> {
    if run.config.task.implicit().is_some() {
        bail!("--protocol hidden predicts ratings: this run learned implicit feedback");
    }
    Ok(run.hidden_ratings(context, part, args.hide, hidden_seed(args, run))?)
}

/// Scores every rating of `data` (another file's, in the run's ids); pairs with an id the run
/// does not know are counted apart.
fn eval_other(args: &EvalArgs, run: &LoadedRun, source: &str, data: &Remapped) -> Result<()> {
    if run.config.task.implicit().is_some() {
        bail!(
            "{source}: its ids differ from the run's, so it is scored by rating metrics, but \
             this run learned implicit feedback; rank with the run's own data instead"
        );
    }
    if let Some(p) = args.part {
        bail!(
            "--part {} picks a part of the run's own split, but {source} holds other ids than \
             the run's: every rating of it is scored",
            p.name()
        );
    }
    if args.negatives.is_some() {
        bail!("--negatives applies to --protocol sampled, a ranking of the run's own data");
    }
    let x = &data.interactions;
    if x.is_empty() {
        bail!(
            "{source}: none of its {} ratings has a user and an item the run knows",
            data.unknown_pairs
        );
    }
    let hidden_check = match args.protocol {
        None => false,
        Some(EvalProtocol::Hidden) => true,
        Some(_) => bail!(
            "{source}: its ids differ from the run's: ranking protocols need the run's own \
             data; use --protocol hidden or no --protocol"
        ),
    };
    let m = if hidden_check {
        hidden(args, run, &[], x)?
    } else {
        run.evaluate(x)
    };
    if args.json {
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(), "model": run.config.model.name(),
                   "backend": run.config.backend.to_string(), "data": source, "part": "all",
                   "protocol": args.protocol.map(protocol_name),
                   "hidden": hidden_check.then(|| json!({"hide": args.hide, "seed": hidden_seed(args, run)})),
                   "metrics": rating_json(&m),
                   "unknown": {"pairs": data.unknown_pairs, "users": data.unknown_users.len(),
                               "items": data.unknown_items.len(),
                               "first_users": sample(&data.unknown_users),
                               "first_items": sample(&data.unknown_items)}})
        );
        return Ok(());
    }
    let label = if hidden_check {
        format!("{source} ({} hidden ratings)", args.hide)
    } else {
        source.to_string()
    };
    Metrics::Rating(m).print(&label);
    if data.unknown_pairs > 0 {
        println!(
            "  {} pairs left out (ids the run does not know): {} users {:?}{}, {} items {:?}{}",
            data.unknown_pairs,
            data.unknown_users.len(),
            sample(&data.unknown_users),
            if data.unknown_users.len() > 5 {
                "..."
            } else {
                ""
            },
            data.unknown_items.len(),
            sample(&data.unknown_items),
            if data.unknown_items.len() > 5 {
                "..."
            } else {
                ""
            },
        );
    }
    Ok(())
}
/// How `predict --pairs` writes its predictions.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PairsFormat {
    Csv,
    Json,
}

#[derive(Args)]
pub struct PredictArgs {
    #[arg(long)]
    run: PathBuf,
    /// Raw user id, as in the data file.
    #[arg(long, required_unless_present = "pairs", conflicts_with = "pairs")]
    user: Option<String>,
    /// Raw item id, as in the data file.
    #[arg(long, required_unless_present = "pairs", conflicts_with = "pairs")]
    item: Option<String>,
    /// A file of pairs to predict, one `user,item` a line (comma- or tab-separated; further
    /// fields, such as a rating, are ignored; a first line starting with the field `user`,
    /// `userId` or `user_id` is a header). A pair with an id the run does not know is reported
    /// on its line, not an error.
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// Where --pairs writes its predictions (default: stdout).
    #[arg(long, requires = "pairs")]
    out: Option<PathBuf>,
    /// Output of --pairs: csv (line,user,item,prediction,unclamped,error) or json (default:
    /// from --out's extension, .json for JSON; else csv).
    #[arg(long, value_enum, requires = "pairs")]
    format: Option<PairsFormat>,
    #[command(flatten)]
    backend: BackendArgs,
    #[arg(long)]
    json: bool,
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let run = load_run(&args.run, Checkpoint::Best, args.backend.chosen())?;
    if let Some(pairs) = &args.pairs {
        return predict_pairs(&args, &run, pairs);
    }
    let (user, item) = (
        args.user.as_deref().expect("clap requires --user"),
        args.item.as_deref().expect("clap requires --item"),
    );
    let u = run.ids.user(user)?;
    let i = run.ids.item(item)?;
    let raw = run.predict(&[u], &[i])[0];
    let (lo, hi) = run.rating_scale();
    let rating = raw.clamp(lo, hi);
    if args.json {
        println!(
            "{}",
            json!({"user": user, "item": item, "prediction": rating, "unclamped": raw})
        );
    } else {
        println!("user {user} item {item}: predicted rating {rating:.3}");
    }
    Ok(())
}

/// One line of a `--pairs` file.
struct PairLine {
    line: usize,
    user: String,
    item: String,
    /// Dense indices, or what the run does not know.
    ids: std::result::Result<(u32, u32), String>,
}

/// Reads the pairs of `path`: `user,item[,...]` a line (or tab-separated).
fn read_pairs(path: &Path, run: &LoadedRun) -> Result<Vec<PairLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let delimiter = if line.contains('\t') { '\t' } else { ',' };
        let mut fields = line.split(delimiter).map(str::trim);
        let (user, item) = match (fields.next(), fields.next()) {
            (Some(u), Some(i)) if !u.is_empty() && !i.is_empty() => (u, i),
            _ => bail!(
                "{}:{}: expected user,item (comma- or tab-separated), got {line:?}",
                path.display(),
                k + 1
            ),
        };
        if k == 0 && ["user", "userid", "user_id"].contains(&user.to_lowercase().as_str()) {
            continue;
        }
        let ids = match (run.ids.user(user), run.ids.item(item)) {
            (Ok(u), Ok(i)) => Ok((u, i)),
            (Err(_), Ok(_)) => Err(format!("unknown user {user}")),
            (Ok(_), Err(_)) => Err(format!("unknown item {item}")),
            (Err(_), Err(_)) => Err(format!("unknown user {user} and item {item}")),
        };
        out.push(PairLine {
            line: k + 1,
            user: user.to_string(),
            item: item.to_string(),
            ids,
        });
    }
    Ok(out)
}

/// `predict --pairs`: predictions of every pair of a file, written as CSV or JSON.
fn predict_pairs(args: &PredictArgs, run: &LoadedRun, path: &Path) -> Result<()> {
    let lines = read_pairs(path, run)?;
    let known: Vec<(u32, u32)> = lines.iter().filter_map(|l| l.ids.clone().ok()).collect();
    let users: Vec<u32> = known.iter().map(|p| p.0).collect();
    let items: Vec<u32> = known.iter().map(|p| p.1).collect();
    let mut raw = run.predict(&users, &items).into_iter();
    let (lo, hi) = run.rating_scale();
    let format = args.format.unwrap_or_else(|| {
        match args
            .out
            .as_ref()
            .and_then(|o| o.extension())
            .and_then(|e| e.to_str())
        {
            Some(e) if e.eq_ignore_ascii_case("json") => PairsFormat::Json,
            _ => PairsFormat::Csv,
        }
    });
    let rows: Vec<(&PairLine, Option<f32>)> = lines
        .iter()
        .map(|l| {
            (
                l,
                l.ids
                    .is_ok()
                    .then(|| raw.next().expect("one prediction a pair")),
            )
        })
        .collect();
    let unknown = rows.iter().filter(|r| r.1.is_none()).count();
    let mut text = String::new();
    match format {
        PairsFormat::Csv => {
            text.push_str("line,user,item,prediction,unclamped,error\n");
            for (l, p) in &rows {
                let (pred, unclamped, error) = match (p, &l.ids) {
                    (Some(p), _) => (p.clamp(lo, hi).to_string(), p.to_string(), String::new()),
                    (None, Err(e)) => (String::new(), String::new(), e.clone()),
                    (None, Ok(_)) => unreachable!("a known pair is predicted"),
                };
                text.push_str(&format!(
                    "{},{},{},{pred},{unclamped},{}\n",
                    l.line,
                    csv_field(&l.user),
                    csv_field(&l.item),
                    csv_field(&error)
                ));
            }
        }
        PairsFormat::Json => {
            let list: Vec<Value> = rows
                .iter()
                .map(|(l, p)| match (p, &l.ids) {
                    (Some(p), _) => json!({"line": l.line, "user": l.user, "item": l.item,
                                           "prediction": p.clamp(lo, hi), "unclamped": p}),
                    (None, ids) => json!({"line": l.line, "user": l.user, "item": l.item,
                                          "error": ids.clone().err()}),
                })
                .collect();
            text = json!({"run_dir": args.run.display().to_string(), "pairs": rows.len(),
                          "predicted": rows.len() - unknown, "unknown": unknown,
                          "predictions": list})
            .to_string();
            text.push('\n');
        }
    }
    match &args.out {
        Some(out) => {
            recsys_data::io::write_atomic(out, text.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            if args.json {
                println!(
                    "{}",
                    json!({"pairs": rows.len(), "predicted": rows.len() - unknown,
                           "unknown": unknown, "out": out.display().to_string()})
                );
            } else {
                println!(
                    "{} pairs: {} predicted, {unknown} with ids the run does not know; written to {}",
                    rows.len(),
                    rows.len() - unknown,
                    out.display()
                );
            }
        }
        None => {
            print!("{text}");
            if unknown > 0 {
                eprintln!(
                    "{unknown} of {} pairs have ids the run does not know",
                    rows.len()
                );
            }
        }
    }
    Ok(())
}

/// The first five of `ids`.
fn sample(ids: &[String]) -> Vec<&str> {
    ids.iter().take(5).map(String::as_str).collect()
}

/// A CSV field, quoted when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
