//! `recsys data stats|split|filter|synth|fetch`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use recsys_data::{
    DEFAULT_SOURCE, Dataset, DelimitedSpec, Duplicates, Format, Interactions, LoadOptions,
    SplitKind, TestNegatives, UserHistory, fetch, open, synth,
};
use serde_json::json;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Exploratory statistics: counts, sparsity, rating histogram, top items and users, pivot.
    Stats {
        #[command(flatten)]
        source: SourceArgs,
        /// How many top items and users to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Rows and columns of the top-users x top-items pivot table.
        #[arg(long, default_value_t = 15)]
        pivot: usize,
        #[arg(long)]
        json: bool,
    },
    /// Split into train, validation and test files (CSV with raw ids).
    Split {
        #[command(flatten)]
        source: SourceArgs,
        /// How to split; u1..u5 are the ML-100K folds.
        #[arg(long, value_enum, default_value_t = SplitKind::Random)]
        method: SplitKind,
        /// Validation size: a ratio (0.1) or a count (10000).
        #[arg(long, default_value = "0.1")]
        valid: String,
        /// Test size: a ratio (0.1) or a count (500000).
        #[arg(long, default_value = "0.1")]
        test: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Also write NCF-style fixed test negatives (`test.negative`) with this many per case.
        #[arg(long)]
        test_negatives: Option<usize>,
        /// Output folder for train.csv, valid.csv, test.csv.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Filter ratings and write the rest as CSV.
    Filter {
        #[command(flatten)]
        source: SourceArgs,
        /// Drop items with fewer ratings (the NeuMF notebook uses 3).
        #[arg(long, default_value_t = 0)]
        min_item_ratings: u32,
        /// Drop users with fewer ratings.
        #[arg(long, default_value_t = 0)]
        min_user_ratings: u32,
        /// Repeat the two minimums until both hold (k-core).
        #[arg(long)]
        k_core: bool,
        /// Keep only the N most active users (the AutoRec notebook keeps 60,000).
        #[arg(long)]
        top_users: Option<usize>,
        /// Keep ratings above this value as implicit positives (rating 1); the retrieval notebook uses 3.
        #[arg(long)]
        implicit_above: Option<f32>,
        /// Output CSV file (userId,movieId,rating[,timestamp]).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Generate MovieLens-shaped synthetic data in the ML-20M CSV format.
    Synth {
        /// The shape of ML-100K, ML-1M or ML-20M.
        #[arg(long, default_value = "100k",
              value_parser = clap::builder::PossibleValuesParser::new(synth::SynthConfig::PRESETS))]
        preset: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output folder for ratings.csv and movies.csv.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Download a MovieLens release from GroupLens (sha256-checked) into the cache.
    Fetch {
        #[arg(value_enum)]
        release: fetch::Release,
        /// Cache folder (default: $RECSYS_CACHE, else ~/.cache/recsys).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Install this already-downloaded zip instead of downloading (checked the same way).
        #[arg(long)]
        zip: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// Where the data comes from.
#[derive(Args, Clone)]
pub struct SourceArgs {
    /// A MovieLens folder, a ratings file, or `synthetic:<100k|1m|20m>[:seed]`.
    #[arg(long, default_value = DEFAULT_SOURCE)]
    pub data: String,
    /// ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-latest, csv or tsv (detected when absent).
    #[arg(long)]
    pub format: Option<String>,
    /// Field separator of a generic file (`,`, `\t`, `::`, ...).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// A generic file starts with a header line.
    #[arg(long)]
    pub header: bool,
    /// Zero-based columns of a generic file: user,item,rating[,timestamp].
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<usize>>,
    /// Rating scale of a generic file, `min,max`; ratings outside are an error.
    #[arg(long, value_delimiter = ',')]
    pub scale: Option<Vec<f32>>,
    /// Duplicate (user, item) pairs: an error naming both lines, or keep the first, the last
    /// or every rating.
    #[arg(long, value_enum, default_value_t = Duplicates::Error)]
    pub duplicates: Duplicates,
    /// Keep only ratings above this value, as positives of implicit feedback (rating 1 on a
    /// 0-1 scale): the TensorFlow Recommenders recipe keeps ratings > 3.
    #[arg(long)]
    pub positives_above: Option<f32>,
    /// Key items by title (items sharing a title merge), as TensorFlow Recommenders does.
    #[arg(long)]
    pub items_by_title: bool,
    /// How a run's recipe read its data (a replay): used instead of the flags above.
    #[arg(skip)]
    pub recorded: Option<LoadOptions>,
}

impl SourceArgs {
    pub fn options(&self) -> Result<LoadOptions> {
        if let Some(recorded) = &self.recorded {
            return Ok(recorded.clone());
        }
        let mut format = self
            .format
            .as_deref()
            .map(str::parse::<Format>)
            .transpose()?;
        let generic = self.delimiter.is_some()
            || self.columns.is_some()
            || self.scale.is_some()
            || self.header;
        if generic {
            let mut spec = match format {
                Some(Format::Delimited(s)) => s,
                None => DelimitedSpec::default(),
                Some(_) => bail!(
                    "--delimiter, --columns, --scale and --header apply to --format csv or tsv"
                ),
            };
            if let Some(d) = &self.delimiter {
                spec.delimiter = d.replace("\\t", "\t");
            }
            spec.header |= self.header;
            if let Some(c) = &self.columns {
                if !(3..=4).contains(&c.len()) {
                    bail!(
                        "--columns takes user,item,rating[,timestamp], got {} numbers",
                        c.len()
                    );
                }
                spec.user_col = c[0];
                spec.item_col = c[1];
                spec.rating_col = c[2];
                spec.timestamp_col = c.get(3).copied();
            }
            if let Some(s) = &self.scale {
                if s.len() != 2 || !s.iter().all(|v| v.is_finite()) || s[0] >= s[1] {
                    let given: Vec<String> = s.iter().map(f32::to_string).collect();
                    bail!(
                        "--scale {}: takes min,max, two finite numbers with min < max",
                        given.join(",")
                    );
                }
                spec.scale = Some((s[0], s[1]));
            }
            format = Some(Format::Delimited(spec));
        }
        Ok(LoadOptions {
            format,
            duplicates: self.duplicates,
        })
    }

    pub fn open(&self) -> Result<Dataset> {
        let mut ds = open(&self.data, &self.options()?)?;
        for note in &ds.notes {
            eprintln!("note: {note}");
        }
        if let Some(t) = self.positives_above {
            ds = ds.implicit(t);
            if ds.interactions.is_empty() {
                bail!("{}: no rating is above {t}", ds.source);
            }
        }
        if self.items_by_title {
            ds = ds.items_by_title()?;
        }
        Ok(ds)
    }
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Stats {
            source,
            top,
            pivot,
            json,
        } => {
            let ds = source.open()?;
            let st = recsys_data::stats(&ds, top, pivot);
            if json {
                println!("{}", serde_json::to_string(&st)?);
            } else {
                print_stats(&st);
            }
        }
        DataCommand::Split {
            source,
            method,
            valid,
            test,
            seed,
            test_negatives,
            out,
            json,
        } => {
            let ds = source.open()?;
            let (train, valid_part, test_part) = if let Some(k) = method.fold() {
                let (train, test) = recsys_data::ml100k_fold(Path::new(&source.data), k, &ds.ids)?;
                let empty = train.select(&[]);
                (train, empty, test)
            } else {
                let m = method.method(&valid, &test)?;
                let s = recsys_data::split(&ds.interactions, &m, seed)?;
                (s.train, s.valid, s.test)
            };
            let mut written = Vec::new();
            if let Some(dir) = &out {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for (name, part) in [
                    ("train.csv", &train),
                    ("valid.csv", &valid_part),
                    ("test.csv", &test_part),
                ] {
                    let p = dir.join(name);
                    write_ratings_csv(&ds, part, &p)?;
                    written.push(p.display().to_string());
                }
                if let Some(k) = test_negatives {
                    let all = UserHistory::new(&ds.interactions);
                    let neg = TestNegatives::sample(&test_part, &all, k, seed)?;
                    let p = dir.join("test.negative");
                    neg.write(&p)?;
                    written.push(p.display().to_string());
                }
            }
            if json {
                println!(
                    "{}",
                    json!({"method": method, "seed": seed, "train": train.len(), "valid": valid_part.len(),
                           "test": test_part.len(), "users": ds.interactions.n_users, "items": ds.interactions.n_items,
                           "files": written})
                );
            } else {
                println!("split {method} (seed {seed}) of {}", ds.source);
                println!(
                    "  train {:>10}\n  valid {:>10}\n  test  {:>10}",
                    train.len(),
                    valid_part.len(),
                    test_part.len()
                );
                for w in &written {
                    println!("  wrote {w}");
                }
            }
        }
        DataCommand::Filter {
            source,
            min_item_ratings,
            min_user_ratings,
            k_core,
            top_users,
            implicit_above,
            out,
            json,
        } => {
            let ds = source.open()?;
            let before = (
                ds.interactions.n_users,
                ds.interactions.n_items,
                ds.interactions.len(),
            );
            let mut f = ds.min_counts(min_user_ratings, min_item_ratings, k_core);
            if let Some(n) = top_users {
                f = f.top_users(n);
            }
            if let Some(t) = implicit_above {
                f = f.implicit(t);
            }
            if let Some(p) = &out {
                write_ratings_csv(&f, &f.interactions, p)?;
            }
            let after = (
                f.interactions.n_users,
                f.interactions.n_items,
                f.interactions.len(),
            );
            if json {
                println!(
                    "{}",
                    json!({"before": {"users": before.0, "items": before.1, "ratings": before.2},
                           "after": {"users": after.0, "items": after.1, "ratings": after.2},
                           "out": out.as_ref().map(|p| p.display().to_string())})
                );
            } else {
                println!(
                    "          {:>10} {:>10} {:>12}",
                    "users", "items", "ratings"
                );
                println!(
                    "before    {:>10} {:>10} {:>12}",
                    before.0, before.1, before.2
                );
                println!("after     {:>10} {:>10} {:>12}", after.0, after.1, after.2);
                if let Some(p) = &out {
                    println!("wrote {}", p.display());
                }
            }
        }
        DataCommand::Synth {
            preset,
            seed,
            out,
            json,
        } => {
            let cfg = synth::SynthConfig::preset(&preset)?.with_seed(seed);
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let ratings = out.join("ratings.csv");
            let rows = synth::write_ml20m_csv(&cfg, &ratings)?;
            synth::write_movies_csv(&cfg, &out.join("movies.csv"))?;
            if json {
                println!(
                    "{}",
                    json!({"preset": preset, "seed": seed, "ratings": rows, "out": out.display().to_string()})
                );
            } else {
                println!("wrote {rows} ratings to {}", ratings.display());
            }
        }
        DataCommand::Fetch {
            release,
            cache,
            zip,
            json,
        } => {
            let cache = cache.unwrap_or_else(fetch::default_cache_dir);
            let dir = match zip {
                Some(zip) => fetch::install_zip(release, &zip, &cache)?,
                None => fetch::fetch(release, &cache, !json)?,
            };
            if json {
                println!(
                    "{}",
                    json!({"release": release.to_string(), "path": dir.display().to_string()})
                );
            } else {
                println!("{release} is in {}", dir.display());
            }
        }
    }
    Ok(())
}

/// Writes interactions as `userId,movieId,rating[,timestamp]` with raw ids (readable back by
/// the loader as a generic CSV with a header).
pub(crate) fn write_ratings_csv(ds: &Dataset, part: &Interactions, path: &Path) -> Result<()> {
    use std::io::Write;
    recsys_data::io::write_atomic_with(path, |w| {
        let ts = part.timestamps.as_ref();
        writeln!(
            w,
            "userId,movieId,rating{}",
            if ts.is_some() { ",timestamp" } else { "" }
        )?;
        for k in 0..part.len() {
            write!(
                w,
                "{},{},{}",
                ds.ids.users.raw_id(part.users[k]),
                ds.ids.items.raw_id(part.items[k]),
                part.ratings[k]
            )?;
            match ts {
                Some(t) => writeln!(w, ",{}", t[k])?,
                None => writeln!(w)?,
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn print_stats(st: &recsys_data::Stats) {
    println!("{}", st.source);
    println!("  users      {:>12}", st.users);
    println!("  items      {:>12}", st.items);
    println!("  ratings    {:>12}", st.ratings);
    println!("  sparsity   {:>12.4}%", st.sparsity * 100.0);
    println!("  mean       {:>12.4}", st.mean_rating);
    println!("  std        {:>12.4}", st.std_rating);
    println!(
        "  range      {:>12}",
        format!("{} .. {}", st.min_rating, st.max_rating)
    );
    let (u, i) = (&st.ratings_per_user, &st.ratings_per_item);
    println!(
        "  per user   min {} / median {} / mean {:.1} / max {}",
        u.min, u.median, u.mean, u.max
    );
    println!(
        "  per item   min {} / median {} / mean {:.1} / max {}",
        i.min, i.median, i.mean, i.max
    );
    println!("\nrating histogram");
    let peak = st.histogram.iter().map(|h| h.1).max().unwrap_or(1).max(1);
    for (r, c) in &st.histogram {
        println!("  {r:>4} {c:>10}  {}", "#".repeat((c * 40).div_ceil(peak)));
    }
    println!("\nmost rated items");
    println!("  {:>8}  {:>7}  {:>5}  title", "id", "ratings", "mean");
    for it in &st.top_items {
        println!(
            "  {:>8}  {:>7}  {:>5.2}  {}",
            it.item_id,
            it.count,
            it.mean_rating,
            it.title.as_deref().unwrap_or("-")
        );
    }
    println!("\nmost active users");
    println!("  {:>8}  {:>7}  {:>5}", "id", "ratings", "mean");
    for u in &st.top_users {
        println!("  {:>8}  {:>7}  {:>5.2}", u.user_id, u.count, u.mean_rating);
    }
    let p = &st.pivot;
    if !p.user_ids.is_empty() {
        println!(
            "\ntop {} users x top {} items (ratings)",
            p.user_ids.len(),
            p.item_ids.len()
        );
        print!("  {:>6} |", "user");
        for i in &p.item_ids {
            print!("{i:>6}");
        }
        println!();
        for (u, row) in p.user_ids.iter().zip(&p.ratings) {
            print!("  {u:>6} |");
            for c in row {
                match c {
                    Some(r) => print!("{r:>6}"),
                    None => print!("{:>6}", "."),
                }
            }
            println!();
        }
    }
}
