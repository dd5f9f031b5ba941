//! `recsys recommend`, `recsys similar`, `recsys export`: top-K items for users, items similar
//! to an item, and the learned user and item vectors of a trained run.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use recsys_data::{Interactions, UserHistory};
use recsys_train::ann::RunIndex;
use recsys_train::retrieval::Retrieval;
use recsys_train::topk::{self, Vectors};
use serde_json::{Value, json};

use crate::prep::{Prepared, RunArgs};

#[derive(Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Raw user id, as in the data file.
    #[arg(
        long,
        required_unless_present = "all_users",
        conflicts_with = "all_users"
    )]
    user: Option<String>,
    /// Top-K of every user, written as CSV to --out.
    #[arg(long, requires = "out")]
    all_users: bool,
    /// CSV file for --all-users (user,rank,item,score,title), written atomically.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How many items.
    #[arg(short, long, default_value = "10")]
    k: usize,
    /// Leave out every item the run knows the user rated: the training part and the
    /// validation part carved from the training data.
    #[arg(long)]
    exclude_seen: bool,
    /// An unknown --user maps to the model's out-of-vocabulary row (two-tower runs trained with
    /// --oov) instead of failing.
    #[arg(long)]
    oov: bool,
    /// How many of the user's highest-rated known items to show next to the recommendations.
    #[arg(long, default_value = "5")]
    top_rated: usize,
    /// Brute force even when the run has an approximate index (`recsys index`).
    #[arg(long)]
    exact: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("query").required(true).args(["item", "title", "pairs"])))]
pub struct SimilarArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Raw item id, as in the data file.
    #[arg(long)]
    item: Option<String>,
    /// Exact item title, e.g. "Star Wars (1977)".
    #[arg(long)]
    title: Option<String>,
    /// How many items.
    #[arg(short, long, default_value = "10")]
    k: usize,
    /// List every pair of items at least --threshold similar (computed in blocks, without the
    /// full item x item matrix), as CSV to --out or to stdout.
    #[arg(long, requires = "threshold")]
    pairs: bool,
    /// The smallest cosine similarity listed by --pairs.
    #[arg(long)]
    threshold: Option<f32>,
    /// Where --pairs writes its CSV (default: stdout).
    #[arg(long, requires = "pairs")]
    out: Option<PathBuf>,
    /// Brute force even when the run has an approximate index (`recsys index`).
    #[arg(long)]
    exact: bool,
    #[arg(long)]
    json: bool,
}

/// How `export` writes vectors.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Npy,
    Csv,
}

impl ExportFormat {
    fn name(self) -> &'static str {
        match self {
            ExportFormat::Npy => "npy",
            ExportFormat::Csv => "csv",
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    run: RunArgs,
    /// npy (users.npy, items.npy, and users.csv / items.csv with ids and titles) or csv (the
    /// vectors in users.csv / items.csv).
    #[arg(long, value_enum, default_value_t = ExportFormat::Npy)]
    format: ExportFormat,
    /// Output directory (created; must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Also write the full score matrix, scores.npy (users x items), for catalogues up to 50
    /// million scores.
    #[arg(long)]
    scores: bool,
    #[arg(long)]
    json: bool,
}

/// `k` clamped to the catalogue, with a warning.
fn clamp_k(k: usize, n_items: usize) -> Result<usize> {
    if k == 0 {
        bail!("-k must be at least 1");
    }
    if k > n_items {
        eprintln!(
            "warning: -k {k} is larger than the catalogue ({n_items} items); using {n_items}"
        );
    }
    Ok(k.min(n_items))
}

fn title(prep: &Prepared, item: u32) -> Option<&str> {
    prep.dataset.title(item)
}

/// A CSV field, quoted when needed.
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:width$}")
    } else {
        let t: String = s.chars().take(width - 1).collect();
        format!("{t}…")
    }
}

pub fn recommend(args: RecommendArgs) -> Result<()> {
    let run = args.run.load()?;
    let prep = args.run.open_data(&run)?;
    let n_items = run.n_items();
    let k = clamp_k(args.k, n_items)?;
    // Every rating the run knows of: the training part and the validation part (a refit run
    // trained on both; any run chose its epochs by the latter).
    let known = Interactions::concat(&[&prep.train, &prep.valid]);
    let history = UserHistory::new(&known);
    let seen = args.exclude_seen.then_some(&history);
    let ids = &run.ids;

    if args.all_users {
        let out = args.out.as_ref().expect("clap requires --out");
        let users: Vec<u32> = (0..ids.n_users() as u32).collect();
        let lists = topk::recommend(&run, &users, k, seen);
        let mut rows = 0usize;
        recsys_data::io::write_atomic_with(out, |w| {
            writeln!(w, "user,rank,item,score,title")?;
            for (u, list) in users.iter().zip(&lists) {
                for (r, &(i, s)) in list.iter().enumerate() {
                    writeln!(
                        w,
                        "{},{},{},{},{}",
                        csv(ids.users.raw_id(*u)),
                        r + 1,
                        csv(ids.items.raw_id(i)),
                        s,
                        csv(title(&prep, i).unwrap_or(""))
                    )?;
                    rows += 1;
                }
            }
            Ok(())
        })
        .with_context(|| format!("cannot write {}", out.display()))?;
        if args.json {
            println!(
                "{}",
                json!({"run_dir": args.run.run.display().to_string(),
                       "model": run.config.model.family(), "users": users.len(), "k": k,
                       "exclude_seen": args.exclude_seen, "rows": rows,
                       "out": out.display().to_string()})
            );
        } else {
            println!(
                "top-{k} of {} users ({rows} rows) written to {}",
                users.len(),
                out.display()
            );
        }
        return Ok(());
    }

    let raw_user = args.user.as_deref().expect("clap requires --user");
    let u = match (ids.user(raw_user), args.oov, run.oov_user()) {
        (Ok(u), _, _) => u,
        (Err(_), true, Some(oov)) => {
            eprintln!(
                "user {raw_user:?} is not in the run's id map: recommending from its \
                 out-of-vocabulary row"
            );
            oov
        }
        (Err(e), true, None) => {
            return Err(e).with_context(|| {
                format!(
                    "user {raw_user:?} is not in the run's id map, and this {} run keeps no \
                     out-of-vocabulary row (train a two-tower with --oov)",
                    run.config.model.family()
                )
            });
        }
        (Err(e), false, _) => {
            return Err(e).with_context(|| format!("user {raw_user:?} is not in the run's id map"));
        }
    };
    // An out-of-vocabulary user has no known items.
    let (own_items, own_ratings): (&[u32], &[f32]) = if (u as usize) < history.n_users() {
        (history.items(u), history.ratings(u))
    } else {
        (&[], &[])
    };
    // Through the run's approximate index when it has one (seen items still left out).
    let indexed = if args.exact {
        None
    } else {
        Retrieval::with_index_of(&run, &args.run.run)?.filter(|r| r.has_index())
    };
    let found = indexed.as_ref().and_then(|r| {
        let mut skip: Vec<u32> = if args.exclude_seen {
            own_items.to_vec()
        } else {
            Vec::new()
        };
        skip.sort_unstable();
        r.indexed_top_k(r.user(u), k, &skip)
    });
    // The index that answered (none when the run has none, or its candidates ran out).
    let searched = found
        .as_ref()
        .and(indexed.as_ref())
        .and_then(|r| r.index.as_ref())
        .map(|i| i.params.method);
    let list = match found {
        Some(scored) => scored
            .into_iter()
            .map(|(i, s)| (i, run.shown_score(s)))
            .collect(),
        None => topk::recommend(&run, &[u], k, seen).remove(0),
    };
    // The user's own highest-rated known items (rating desc, then item index).
    let mut rated: Vec<(u32, f32)> = own_items
        .iter()
        .copied()
        .zip(own_ratings.iter().copied())
        .collect();
    rated.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    rated.truncate(args.top_rated);

    if args.json {
        let recs: Vec<Value> = list
            .iter()
            .enumerate()
            .map(|(r, &(i, s))| {
                json!({"rank": r + 1, "item": ids.items.raw_id(i), "title": title(&prep, i), "score": s})
            })
            .collect();
        let top: Vec<Value> = rated
            .iter()
            .map(|&(i, r)| json!({"item": ids.items.raw_id(i), "title": title(&prep, i), "rating": r}))
            .collect();
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(),
                   "model": run.config.model.family(), "user": raw_user, "k": k,
                   "exclude_seen": args.exclude_seen, "n_known_items": own_items.len(),
                   "index": searched,
                   "recommendations": recs, "top_rated": top})
        );
        return Ok(());
    }
    println!(
        "user {raw_user}: top {} of {n_items} items ({}{})",
        list.len(),
        run.config.model.family(),
        if args.exclude_seen {
            ", known items excluded"
        } else {
            ""
        }
    );
    println!(
        "{:>4}  {:>7}  {:<44}  | {:>6}  highest-rated known items",
        "rank", "score", "recommended", "rating"
    );
    for r in 0..list.len().max(rated.len()) {
        let left = match list.get(r) {
            Some(&(i, s)) => format!(
                "{:>4}  {s:>7.3}  {}",
                r + 1,
                cut(&prep.dataset.item_label(i), 44)
            ),
            None => format!("{:59}", ""),
        };
        let right = match rated.get(r) {
            Some(&(i, rating)) => format!("{rating:>6.1}  {}", prep.dataset.item_label(i)),
            None => String::new(),
        };
        println!("{left}  | {right}");
    }
    Ok(())
}

pub fn similar(args: SimilarArgs) -> Result<()> {
    let run = args.run.load()?;
    // The vectors first: an unsupported model fails before the data is read.
    let items = topk::item_vectors(&run)?;
    let prep = args.run.open_data(&run)?;
    let ids = &run.ids;
    if args.pairs {
        let threshold = args.threshold.expect("clap requires --threshold");
        if !(-1.0..=1.0).contains(&threshold) {
            bail!("--threshold {threshold} is not a cosine similarity (between -1 and 1)");
        }
        let pairs = topk::similar_pairs(&items, threshold);
        let write = |w: &mut dyn Write| -> std::io::Result<()> {
            writeln!(w, "item_a,item_b,similarity,title_a,title_b")?;
            for &(a, b, sim) in &pairs {
                writeln!(
                    w,
                    "{},{},{sim},{},{}",
                    csv(ids.items.raw_id(a)),
                    csv(ids.items.raw_id(b)),
                    csv(title(&prep, a).unwrap_or("")),
                    csv(title(&prep, b).unwrap_or(""))
                )?;
            }
            Ok(())
        };
        match &args.out {
            Some(path) => {
                recsys_data::io::write_atomic_with(path, |w| write(w))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                if args.json {
                    println!(
                        "{}",
                        json!({"run_dir": args.run.run.display().to_string(), "threshold": threshold,
                               "pairs": pairs.len(), "out": path.display().to_string()})
                    );
                } else {
                    println!(
                        "{} item pairs with cosine similarity >= {threshold} written to {}",
                        pairs.len(),
                        path.display()
                    );
                }
            }
            None => {
                let stdout = std::io::stdout();
                let mut lock = std::io::BufWriter::new(stdout.lock());
                write(&mut lock).and_then(|_| lock.flush())?;
            }
        }
        return Ok(());
    }
    let query = match (&args.item, &args.title) {
        (Some(raw), _) => ids
            .item(raw)
            .with_context(|| format!("item {raw:?} is not in the run's id map"))?,
        (None, Some(t)) => prep.dataset.item_by_title(t)?,
        (None, None) => unreachable!("clap requires --item or --title"),
    };
    let k = clamp_k(args.k, run.n_items().saturating_sub(1))?;
    let index = if args.exact {
        None
    } else {
        RunIndex::load(&args.run.run, run.n_items())?.and_then(|i| i.cosine)
    };
    let cosine = |i: u32| topk::cosine_to_pair(&items, query, i);
    let found = index
        .as_ref()
        .and_then(|g| g.search(items.row(query as usize), k, |i| i == query, cosine));
    let searched = found.as_ref().and(index.as_ref()).map(|i| i.method());
    let list = found.unwrap_or_else(|| topk::similar_items(&items, query, k));
    if args.json {
        let sims: Vec<Value> = list
            .iter()
            .enumerate()
            .map(|(r, &(i, s))| {
                json!({"rank": r + 1, "item": ids.items.raw_id(i), "title": title(&prep, i), "similarity": s})
            })
            .collect();
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(),
                   "model": run.config.model.family(), "item": ids.items.raw_id(query),
                   "title": title(&prep, query), "k": k, "index": searched, "similar": sims})
        );
        return Ok(());
    }
    println!(
        "items most similar to {} (cosine of {}-d item vectors):",
        prep.dataset.item_label(query),
        items.dim
    );
    for (r, &(i, s)) in list.iter().enumerate() {
        println!("{:>4}  {s:>6.3}  {}", r + 1, prep.dataset.item_label(i));
    }
    Ok(())
}

fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    fill(&mut w)
        .and_then(|_| w.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `users.csv` or `items.csv`: index, raw id, (title,) and with `vectors` the vector columns.
fn write_table(
    path: &Path,
    raw: &[String],
    titles: Option<&dyn Fn(u32) -> String>,
    vectors: Option<&Vectors>,
) -> Result<()> {
    write_file(path, |w| {
        write!(w, "index,id")?;
        if titles.is_some() {
            write!(w, ",title")?;
        }
        if let Some(v) = vectors {
            for d in 0..v.dim {
                write!(w, ",v{d}")?;
            }
        }
        writeln!(w)?;
        for (k, id) in raw.iter().enumerate() {
            write!(w, "{k},{}", csv(id))?;
            if let Some(t) = titles {
                write!(w, ",{}", csv(&t(k as u32)))?;
            }
            if let Some(v) = vectors {
                for x in v.row(k) {
                    write!(w, ",{x}")?;
                }
            }
            writeln!(w)?;
        }
        Ok(())
    })
}

/// The largest score matrix `export --scores` writes (200 MB of `f32`).
const MAX_SCORE_MATRIX: usize = 50_000_000;

pub fn export(args: ExportArgs) -> Result<()> {
    let npy = args.format == ExportFormat::Npy;
    let run = args.run.load()?;
    let (users, items) = topk::embeddings(&run)?;
    // Titles where the data can be read; the vectors are written either way.
    let prep = match args.run.open_data(&run) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("warning: no titles ({e:#})");
            None
        }
    };
    let out = &args.out;
    if out.exists() {
        let empty_dir = out.is_dir()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !empty_dir {
            bail!(
                "{} already exists (and is not an empty folder); choose another --out",
                out.display()
            );
        }
    }
    let Some(name) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        bail!("--out {} does not name a folder", out.display());
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if parent.exists() && !parent.is_dir() {
        bail!(
            "cannot write --out {}: {} is not a folder",
            out.display(),
            parent.display()
        );
    }
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {} for --out", parent.display()))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).with_context(|| {
        format!(
            "cannot write to {} (--out {})",
            parent.display(),
            out.display()
        )
    })?;
    let ids = &run.ids;
    let titles = |i: u32| {
        prep.as_ref()
            .and_then(|p| p.dataset.title(i))
            .unwrap_or("")
            .to_string()
    };
    let result = (|| -> Result<Vec<String>> {
        let mut files = Vec::new();
        if npy {
            for (f, v) in [("users.npy", &users), ("items.npy", &items)] {
                let bytes = v.to_npy();
                write_file(&tmp.join(f), |w| w.write_all(&bytes))?;
                files.push(f.to_string());
            }
        }
        let vecs = |v| (!npy).then_some(v);
        write_table(
            &tmp.join("users.csv"),
            ids.users.raw_ids(),
            None,
            vecs(&users),
        )?;
        write_table(
            &tmp.join("items.csv"),
            ids.items.raw_ids(),
            Some(&titles),
            vecs(&items),
        )?;
        files.extend(["users.csv".to_string(), "items.csv".to_string()]);
        if args.scores {
            let (n_users, n_items) = (ids.users.len(), run.n_items());
            if n_users * n_items > MAX_SCORE_MATRIX {
                bail!(
                    "--scores: {n_users} users x {n_items} items is more than {MAX_SCORE_MATRIX} \
                     scores; use `recsys recommend --all-users` for top-K lists instead"
                );
            }
            let users_idx: Vec<u32> = (0..n_users as u32).collect();
            let scores = Vectors {
                values: run.score_all(&users_idx),
                n: n_users,
                dim: n_items,
            };
            let bytes = scores.to_npy();
            write_file(&tmp.join("scores.npy"), |w| w.write_all(&bytes))?;
            files.push("scores.npy".to_string());
        }
        if out.exists() {
            std::fs::remove_dir(out)
                .with_context(|| format!("cannot replace {}", out.display()))?;
        }
        std::fs::rename(&tmp, out)
            .with_context(|| format!("cannot move the export into {}", out.display()))?;
        Ok(files)
    })();
    let files = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if args.json {
        println!(
            "{}",
            json!({"run_dir": args.run.run.display().to_string(),
                   "model": run.config.model.family(), "format": args.format.name(),
                   "out": out.display().to_string(), "files": files,
                   "users": users.n, "items": items.n, "dim": users.dim})
        );
    } else {
        println!(
            "{} user and {} item vectors ({}-d) written to {} ({})",
            users.n,
            items.n,
            users.dim,
            out.display(),
            files.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_when_needed() {
        assert_eq!(csv("a"), "a");
        assert_eq!(csv("Seven, The"), "\"Seven, The\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
