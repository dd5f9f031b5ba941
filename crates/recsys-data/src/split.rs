//! Seeded splits into train, validation and test parts. Every split is a partition of the rows
//! and every part keeps the full id space (`n_users`, `n_items`).

use std::str::FromStr;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::interactions::Interactions;

/// The size of a part: a fraction of the rows (or users), or a count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Size {
    Ratio(f64),
    Count(usize),
}

impl Size {
    /// The count this size stands for out of `total`.
    pub fn of(&self, total: usize) -> usize {
        match *self {
            Size::Ratio(r) => (r * total as f64).round() as usize,
            Size::Count(c) => c,
        }
    }
}

impl FromStr for Size {
    type Err = DataError;
    /// `0.1` is a ratio, `10000` a count.
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(c) = s.parse::<usize>() {
            return Ok(Size::Count(c));
        }
        match s.parse::<f64>() {
            Ok(r) if (0.0..1.0).contains(&r) => Ok(Size::Ratio(r)),
            _ => Err(DataError::Invalid(format!(
                "size {s:?} is neither a ratio in [0, 1) nor a count"
            ))),
        }
    }
}

/// How to split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SplitMethod {
    /// Rows at random (the ML-20M notebook: 10,000 validation and 500,000 test ratings).
    Random { valid: Size, test: Size },
    /// Rows at random such that every user and every item with at least three ratings appears in
    /// train, validation and test (the NeuMF notebook's aim, as a partition).
    Stratified { valid: Size, test: Size },
    /// Whole users per part (the AutoRec notebook).
    ByUser { valid: Size, test: Size },
    /// Each user's ratings split at random in the given ratios, so every user has the same share
    /// of their ratings in each part (Microsoft Recommenders' `python_stratified_split`).
    PerUser { valid: f64, test: f64 },
    /// Each user's latest rating to test, the one before to validation when `valid` (NCF).
    LeaveLastOut { valid: bool },
    /// One rating per user at random to test, another to validation when `valid`.
    LeaveOneOut { valid: bool },
}

/// The split methods by name (`--split`, `data split --method`, a run's recipe): the methods of
/// [`SplitMethod`] and the five ML-100K folds `u1`..`u5` (their test file, and a random validation
/// part carved from their base file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SplitKind {
    Random,
    Stratified,
    /// Whole users per part.
    #[serde(alias = "by-user")]
    #[cfg_attr(feature = "clap", value(alias = "by-user"))]
    User,
    /// Each user's ratings in the given ratios.
    PerUser,
    LeaveLastOut,
    LeaveOneOut,
    U1,
    U2,
    U3,
    U4,
    U5,
}

impl SplitKind {
    /// The ML-100K fold number of `u1`..`u5`.
    pub fn fold(self) -> Option<usize> {
        match self {
            SplitKind::U1 => Some(1),
            SplitKind::U2 => Some(2),
            SplitKind::U3 => Some(3),
            SplitKind::U4 => Some(4),
            SplitKind::U5 => Some(5),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SplitKind::Random => "random",
            SplitKind::Stratified => "stratified",
            SplitKind::User => "user",
            SplitKind::PerUser => "per-user",
            SplitKind::LeaveLastOut => "leave-last-out",
            SplitKind::LeaveOneOut => "leave-one-out",
            SplitKind::U1 => "u1",
            SplitKind::U2 => "u2",
            SplitKind::U3 => "u3",
            SplitKind::U4 => "u4",
            SplitKind::U5 => "u5",
        }
    }

    /// The method with validation size `valid` and test size `test` (ratios or counts as text);
    /// a fold's validation part is a random part of its base file, and its test size unused.
    pub fn method(self, valid: &str, test: &str) -> Result<SplitMethod> {
        let valid: Size = valid.parse()?;
        let test: Size = if self.fold().is_some() {
            Size::Count(0)
        } else {
            test.parse()?
        };
        let ratio = |s: Size, what: &str| -> Result<f64> {
            match s {
                Size::Ratio(r) => Ok(r),
                Size::Count(0) => Ok(0.0),
                Size::Count(c) => Err(DataError::Invalid(format!(
                    "a per-user split takes ratios, not the {what} count {c}"
                ))),
            }
        };
        Ok(match self {
            SplitKind::Random
            | SplitKind::U1
            | SplitKind::U2
            | SplitKind::U3
            | SplitKind::U4
            | SplitKind::U5 => SplitMethod::Random { valid, test },
            SplitKind::Stratified => SplitMethod::Stratified { valid, test },
            SplitKind::User => SplitMethod::ByUser { valid, test },
            SplitKind::PerUser => SplitMethod::PerUser {
                valid: ratio(valid, "validation")?,
                test: ratio(test, "test")?,
            },
            SplitKind::LeaveLastOut => SplitMethod::LeaveLastOut {
                valid: valid != Size::Count(0),
            },
            SplitKind::LeaveOneOut => SplitMethod::LeaveOneOut {
                valid: valid != Size::Count(0),
            },
        })
    }
}

impl std::fmt::Display for SplitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Train, validation and test parts over one id space.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub train: Interactions,
    pub valid: Interactions,
    pub test: Interactions,
}

/// Splits `data` by `method` with `seed`.
pub fn split(data: &Interactions, method: &SplitMethod, seed: u64) -> Result<Split> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = data.len();
    let part = match method {
        SplitMethod::Random { valid, test } => {
            let (nv, nt) = sizes(n, valid, test, "ratings")?;
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut rng);
            let mut part = vec![0u8; n];
            rows[..nt].iter().for_each(|&r| part[r] = 2);
            rows[nt..nt + nv].iter().for_each(|&r| part[r] = 1);
            part
        }
        SplitMethod::Stratified { valid, test } => {
            let (nv, nt) = sizes(n, valid, test, "ratings")?;
            stratified(data, nv, nt, &mut rng)
        }
        SplitMethod::ByUser { valid, test } => {
            let present: Vec<u32> = {
                let c = data.user_counts();
                (0..data.n_users as u32)
                    .filter(|&u| c[u as usize] > 0)
                    .collect()
            };
            let (nv, nt) = sizes(present.len(), valid, test, "users")?;
            let mut users = present;
            users.shuffle(&mut rng);
            let mut user_part = vec![0u8; data.n_users];
            users[..nt].iter().for_each(|&u| user_part[u as usize] = 2);
            users[nt..nt + nv]
                .iter()
                .for_each(|&u| user_part[u as usize] = 1);
            data.users.iter().map(|&u| user_part[u as usize]).collect()
        }
        SplitMethod::PerUser { valid, test } => {
            if !(0.0..1.0).contains(valid) || !(0.0..1.0).contains(test) || valid + test >= 1.0 {
                return Err(DataError::Invalid(format!(
                    "per-user split ratios must be in [0, 1) and leave room for training, got \
                     validation {valid} and test {test}"
                )));
            }
            let hist = crate::history::UserRows::new(data);
            let mut part = vec![0u8; n];
            for u in 0..data.n_users {
                let mut rows = hist.rows(u as u32).to_vec();
                rows.shuffle(&mut rng);
                let len = rows.len() as f64;
                let nt = (test * len).round() as usize;
                let nv = ((valid * len).round() as usize).min(rows.len() - nt);
                rows[..nt].iter().for_each(|&r| part[r] = 2);
                rows[nt..nt + nv].iter().for_each(|&r| part[r] = 1);
            }
            part
        }
        SplitMethod::LeaveLastOut { valid } => {
            let Some(ts) = data.timestamps.as_ref() else {
                return Err(DataError::Invalid(
                    "leave-last-out needs timestamps, and this data has none".into(),
                ));
            };
            // Latest last; ties keep file order.
            hold_out_per_user(data, *valid, |rows| rows.sort_by_key(|&r| (ts[r], r)))
        }
        SplitMethod::LeaveOneOut { valid } => {
            hold_out_per_user(data, *valid, |rows| rows.shuffle(&mut rng))
        }
    };
    let pick = |p: u8| {
        let rows: Vec<usize> = (0..n).filter(|&r| part[r] == p).collect();
        data.select(&rows)
    };
    Ok(Split {
        train: pick(0),
        valid: pick(1),
        test: pick(2),
    })
}

fn sizes(total: usize, valid: &Size, test: &Size, what: &str) -> Result<(usize, usize)> {
    let (nv, nt) = (valid.of(total), test.of(total));
    if nv + nt > total {
        return Err(DataError::Invalid(format!(
            "validation ({nv}) and test ({nt}) parts are larger than the {total} {what} available"
        )));
    }
    Ok((nv, nt))
}

/// Per user (in row order of `order`'s result), the last row to test and the one before to
/// validation. Users with a single rating keep it in train.
fn hold_out_per_user(
    data: &Interactions,
    valid: bool,
    mut order: impl FnMut(&mut Vec<usize>),
) -> Vec<u8> {
    let hist = crate::history::UserRows::new(data);
    let mut part = vec![0u8; data.len()];
    for u in 0..data.n_users {
        let mut rows = hist.rows(u as u32).to_vec();
        if rows.len() < 2 {
            continue;
        }
        order(&mut rows);
        part[rows[rows.len() - 1]] = 2;
        if valid && rows.len() >= 3 {
            part[rows[rows.len() - 2]] = 1;
        }
    }
    part
}

/// A random partition with every user and item of at least three ratings in all three parts.
///
/// Rows are visited in random order: a row goes to a part its user or item still lacks when
/// both keep enough unassigned rows for their other missing parts; then the rest fill test and
/// validation up to their sizes; a last pass repairs any gap by moving a spare row.
fn stratified(data: &Interactions, nv: usize, nt: usize, rng: &mut StdRng) -> Vec<u8> {
    const UNSET: u8 = u8::MAX;
    let n = data.len();
    let (nu, ni) = (data.n_users, data.n_items);
    // have[entity][part]: rows of the entity in the part; entities 0..nu users, nu.. items.
    let mut have = vec![[0u32; 3]; nu + ni];
    let mut left: Vec<u32> = data
        .user_counts()
        .into_iter()
        .chain(data.item_counts())
        .collect();
    let eligible: Vec<bool> = left.iter().map(|&c| c >= 3).collect();
    let missing = |have: &[u32; 3], e: usize| -> u32 {
        if eligible[e] {
            have.iter().filter(|&&h| h == 0).count() as u32
        } else {
            0
        }
    };
    let mut part = vec![UNSET; n];
    let mut counts = [0usize; 3];
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(rng);
    for &r in &rows {
        let (u, i) = (data.users[r] as usize, nu + data.items[r] as usize);
        for p in [2usize, 1, 0] {
            let wanted = (eligible[u] && have[u][p] == 0) || (eligible[i] && have[i][p] == 0);
            if !wanted {
                continue;
            }
            let ok = |e: usize| {
                let still = missing(&have[e], e) - u32::from(eligible[e] && have[e][p] == 0);
                left[e] > still
            };
            if ok(u) && ok(i) {
                part[r] = p as u8;
                have[u][p] += 1;
                have[i][p] += 1;
                left[u] -= 1;
                left[i] -= 1;
                counts[p] += 1;
                break;
            }
        }
    }
    for &r in &rows {
        if part[r] != UNSET {
            continue;
        }
        let (u, i) = (data.users[r] as usize, nu + data.items[r] as usize);
        let p = if have[u][0] == 0 || have[i][0] == 0 {
            0
        } else if counts[2] < nt {
            2
        } else if counts[1] < nv {
            1
        } else {
            0
        };
        part[r] = p as u8;
        have[u][p] += 1;
        have[i][p] += 1;
        counts[p] += 1;
    }
    // Repair: an eligible entity missing a part takes one of its rows from a part where both the
    // row's user and item have a spare.
    let mut by_entity: Vec<Vec<usize>> = vec![Vec::new(); nu + ni];
    for r in 0..n {
        by_entity[data.users[r] as usize].push(r);
        by_entity[nu + data.items[r] as usize].push(r);
    }
    for e in 0..nu + ni {
        if !eligible[e] {
            continue;
        }
        for p in 0..3 {
            if have[e][p] > 0 {
                continue;
            }
            let found = by_entity[e].iter().copied().find(|&r| {
                let q = part[r] as usize;
                let (u, i) = (data.users[r] as usize, nu + data.items[r] as usize);
                have[u][q] > 1 && have[i][q] > 1
            });
            if let Some(r) = found {
                let q = part[r] as usize;
                let (u, i) = (data.users[r] as usize, nu + data.items[r] as usize);
                have[u][q] -= 1;
                have[i][q] -= 1;
                have[u][p] += 1;
                have[i][p] += 1;
                part[r] = p as u8;
            }
        }
    }
    part
}

/// Fold `fold` (1-based) of `k` seeded folds of `data`'s rows: `(rest, fold)`. The rows are
/// shuffled once with `seed` and cut into `k` parts of equal size (within one row), so the folds of
/// one seed partition the data and each row is in exactly one test fold.
pub fn k_fold(
    data: &Interactions,
    k: usize,
    fold: usize,
    seed: u64,
) -> Result<(Interactions, Interactions)> {
    if k < 2 || fold == 0 || fold > k {
        return Err(DataError::Invalid(format!(
            "fold {fold} of {k}: there must be at least 2 folds, numbered from 1"
        )));
    }
    if data.len() < k {
        return Err(DataError::Invalid(format!(
            "{k} folds of {} ratings: fewer ratings than folds",
            data.len()
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows: Vec<usize> = (0..data.len()).collect();
    rows.shuffle(&mut rng);
    let (start, end) = ((fold - 1) * rows.len() / k, fold * rows.len() / k);
    let mut test: Vec<usize> = rows[start..end].to_vec();
    let mut rest: Vec<usize> = rows[..start].iter().chain(&rows[end..]).copied().collect();
    test.sort_unstable();
    rest.sort_unstable();
    Ok((data.select(&rest), data.select(&test)))
}

/// Users (or items, with `items`) with at least three ratings that a part lacks.
pub fn coverage_gaps(all: &Interactions, split: &Split) -> usize {
    let counts = all.user_counts();
    let item_counts = all.item_counts();
    let mut gaps = 0;
    for part in [&split.train, &split.valid, &split.test] {
        let pu = part.user_counts();
        let pi = part.item_counts();
        gaps += (0..all.n_users)
            .filter(|&u| counts[u] >= 3 && pu[u] == 0)
            .count();
        gaps += (0..all.n_items)
            .filter(|&i| item_counts[i] >= 3 && pi[i] == 0)
            .count();
    }
    gaps
}
