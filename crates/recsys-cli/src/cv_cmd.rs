//! `recsys cv`: the same training as `recsys train` on every fold of a cross-validation (the
//! ML-100K files `u1`..`u5`, or k seeded folds of any data), each into a run directory of its
//! own; each fold's test metrics, their mean and standard deviation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use recsys_data::SplitKind;
use recsys_train::{ConfigFile, setup, train_run};
use serde_json::{Value, json};

use crate::prep::prepare;
use crate::train_cmd::{TrainArgs, score};

#[derive(Args)]
pub struct CvArgs {
    /// Every flag of `recsys train`; `--out` is the folder of the folds' run directories
    /// (fold-1, fold-2, ...), `--split` carves each fold's validation part from its training
    /// folds (`--split u1` .. `u5`: the five ML-100K folds instead of seeded ones).
    #[command(flatten)]
    pub train: TrainArgs,
    /// Number of seeded folds of the data (ignored with `--split u1`..`u5`).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
}

/// A fold: its name (the run directory's), the split that makes it, and its seeded fold.
type Fold = (String, SplitKind, Option<[usize; 2]>);

/// The folds: ML-100K's files when `--split` names one of them, else `k` seeded folds.
fn folds(split: SplitKind, k: usize) -> Result<Vec<Fold>> {
    if split.fold().is_some() {
        let files = [
            SplitKind::U1,
            SplitKind::U2,
            SplitKind::U3,
            SplitKind::U4,
            SplitKind::U5,
        ];
        return Ok(files
            .into_iter()
            .map(|s| (s.name().to_string(), s, None))
            .collect());
    }
    if k < 2 {
        bail!("--folds {k}: cross-validation needs at least 2 folds");
    }
    Ok((1..=k)
        .map(|i| (format!("fold-{i}"), split, Some([i, k])))
        .collect())
}

pub fn cv(args: CvArgs) -> Result<()> {
    let started = Instant::now();
    let t = &args.train;
    if t.resume.is_some() {
        bail!("--resume does not apply to recsys cv");
    }
    let file = t.config.as_deref().map(ConfigFile::read).transpose()?;
    let config = setup::draft(t.model(), file.as_ref(), t.overrides())?;
    let folds = folds(t.split.split, args.folds)?;
    let out = t.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("cv-{}-{stamp}", t.model()))
    });
    let mut rows: Vec<(String, PathBuf, usize, BTreeMap<String, f64>)> = Vec::new();
    for (name, split, fold) in &folds {
        let mut split_args = t.split.clone();
        split_args.split = *split;
        split_args.fold = *fold;
        let prep = prepare(&t.source, &split_args, config.train.seed)?;
        if prep.test.is_empty() {
            bail!("fold {name} has no test part");
        }
        let ds = &prep.dataset;
        let mut c = config.clone();
        prep.size(&mut c)?;
        let dir = out.join(name);
        if !t.quiet() {
            eprintln!("{name}: training into {}", dir.display());
        }
        let valid = (!prep.valid.is_empty()).then_some(&prep.valid);
        let summary = train_run(&dir, &c, &ds.ids, &prep.train, valid, t.quiet())?;
        let (_, _, metrics) = score(&dir, &prep)?;
        let values = numbers(&metrics.json());
        rows.push((name.clone(), dir, summary.best_epoch, values));
    }
    // Rating metrics in the order `train` prints them, ranking metrics by name.
    let order = |k: &str| {
        ["rmse", "mae", "mse", "mape", "r2"]
            .iter()
            .position(|m| *m == k)
    };
    let mut names: Vec<String> = rows[0]
        .3
        .keys()
        .filter(|k| k.as_str() != "n")
        .cloned()
        .collect();
    names.sort_by_key(|k| (order(k).unwrap_or(usize::MAX), k.clone()));
    let stats: BTreeMap<String, (f64, f64)> = names
        .iter()
        .map(|k| {
            let v: Vec<f64> = rows.iter().filter_map(|r| r.3.get(k).copied()).collect();
            (k.clone(), mean_std(&v))
        })
        .collect();
    if t.json {
        let per_fold: Vec<Value> = rows
            .iter()
            .map(|(name, dir, best, m)| {
                json!({"fold": name, "run_dir": dir.display().to_string(), "best_epoch": best,
                       "metrics": m})
            })
            .collect();
        let mean: BTreeMap<&String, f64> = stats.iter().map(|(k, v)| (k, v.0)).collect();
        let std: BTreeMap<&String, f64> = stats.iter().map(|(k, v)| (k, v.1)).collect();
        println!(
            "{}",
            json!({
                "model": config.model.name(),
                "out": out.display().to_string(),
                "folds": per_fold,
                "mean": mean,
                "std": std,
                "seconds": started.elapsed().as_secs_f64(),
            })
        );
        return Ok(());
    }
    let shown: Vec<&String> = names.iter().take(6).collect();
    let mut header = format!("{:<8} {:>10}", "fold", "best epoch");
    for k in &shown {
        header += &format!(" {k:>10}");
    }
    println!("{header}");
    for (name, _, best, m) in &rows {
        let mut line = format!("{name:<8} {best:>10}");
        for k in &shown {
            line += &format!(" {:>10.4}", m.get(*k).copied().unwrap_or(f64::NAN));
        }
        println!("{line}");
    }
    for (label, pick) in [("mean", 0), ("std", 1)] {
        let mut line = format!("{label:<8} {:>10}", "");
        for k in &shown {
            let (m, s) = stats[*k];
            line += &format!(" {:>10.4}", if pick == 0 { m } else { s });
        }
        println!("{line}");
    }
    println!(
        "{} folds of {} in {:.0}s; run directories under {}",
        rows.len(),
        config.model.name(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// The numeric entries of a JSON object of metrics.
fn numbers(v: &Value) -> BTreeMap<String, f64> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Mean and standard deviation (over the folds: divided by n, as Surprise's `cross_validate`).
fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}
