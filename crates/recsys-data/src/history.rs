//! Per-user histories in compressed sparse row form, a seeded negative sampler that skips seen
//! items, and fixed test negatives in the NCF `.test.negative` format.

use std::io::Write;
use std::path::Path;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::{DataError, Result};
use crate::interactions::Interactions;

/// The rows of each user (CSR over row indices, in row order).
#[derive(Debug, Clone)]
pub struct UserRows {
    offsets: Vec<usize>,
    rows: Vec<usize>,
}

impl UserRows {
    pub fn new(data: &Interactions) -> Self {
        let counts = data.user_counts();
        let mut offsets = Vec::with_capacity(data.n_users + 1);
        offsets.push(0);
        for c in &counts {
            offsets.push(offsets.last().unwrap() + *c as usize);
        }
        let mut next = offsets.clone();
        let mut rows = vec![0usize; data.len()];
        for (r, &u) in data.users.iter().enumerate() {
            rows[next[u as usize]] = r;
            next[u as usize] += 1;
        }
        Self { offsets, rows }
    }

    pub fn rows(&self, user: u32) -> &[usize] {
        &self.rows[self.offsets[user as usize]..self.offsets[user as usize + 1]]
    }
}

/// Each user's items and ratings, items sorted (CSR). Used to mask seen items, to build
/// AutoRec rows and to sample negatives.
#[derive(Debug, Clone, PartialEq)]
pub struct UserHistory {
    offsets: Vec<u64>,
    items: Vec<u32>,
    ratings: Vec<f32>,
    n_items: usize,
}

impl UserHistory {
    pub fn new(data: &Interactions) -> Self {
        Self::build(
            data.n_users,
            data.n_items,
            &data.users,
            &data.items,
            &data.ratings,
        )
    }

    /// The history of items (rows are items, "users" are their raters): for item-based models.
    pub fn by_item(data: &Interactions) -> Self {
        Self::build(
            data.n_items,
            data.n_users,
            &data.items,
            &data.users,
            &data.ratings,
        )
    }

    fn build(n_rows: usize, n_cols: usize, rows: &[u32], cols: &[u32], ratings: &[f32]) -> Self {
        let mut offsets = vec![0u64; n_rows + 1];
        for &r in rows {
            offsets[r as usize + 1] += 1;
        }
        for k in 0..n_rows {
            offsets[k + 1] += offsets[k];
        }
        let mut next: Vec<u64> = offsets[..n_rows].to_vec();
        let mut items = vec![0u32; rows.len()];
        let mut vals = vec![0f32; rows.len()];
        for k in 0..rows.len() {
            let slot = &mut next[rows[k] as usize];
            items[*slot as usize] = cols[k];
            vals[*slot as usize] = ratings[k];
            *slot += 1;
        }
        for u in 0..n_rows {
            let (a, b) = (offsets[u] as usize, offsets[u + 1] as usize);
            if !items[a..b].is_sorted() {
                let mut pairs: Vec<(u32, f32)> = items[a..b]
                    .iter()
                    .copied()
                    .zip(vals[a..b].iter().copied())
                    .collect();
                pairs.sort_by_key(|p| p.0);
                for (k, (i, v)) in pairs.into_iter().enumerate() {
                    items[a + k] = i;
                    vals[a + k] = v;
                }
            }
        }
        Self {
            offsets,
            items,
            ratings: vals,
            n_items: n_cols,
        }
    }

    pub fn n_users(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// The sorted items of a user.
    pub fn items(&self, user: u32) -> &[u32] {
        &self.items[self.offsets[user as usize] as usize..self.offsets[user as usize + 1] as usize]
    }

    /// The ratings of a user, aligned with [`UserHistory::items`].
    pub fn ratings(&self, user: u32) -> &[f32] {
        &self.ratings
            [self.offsets[user as usize] as usize..self.offsets[user as usize + 1] as usize]
    }

    /// Whether the user has rated the item.
    pub fn contains(&self, user: u32, item: u32) -> bool {
        self.items(user).binary_search(&item).is_ok()
    }

    /// A dense row of the user's ratings (0 where unrated) into `out` (length `n_items`).
    pub fn dense_row(&self, user: u32, out: &mut [f32]) {
        out.fill(0.0);
        for (&i, &r) in self.items(user).iter().zip(self.ratings(user)) {
            out[i as usize] = r;
        }
    }
}

/// Uniform negative sampling that skips each user's seen items, seeded.
pub struct NegativeSampler<'a> {
    history: &'a UserHistory,
    rng: StdRng,
}

impl<'a> NegativeSampler<'a> {
    pub fn new(history: &'a UserHistory, seed: u64) -> Self {
        Self {
            history,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// `k` distinct unseen items of `user` (without replacement), or an error when the user has
    /// fewer than `k` unseen items.
    pub fn sample(&mut self, user: u32, k: usize) -> Result<Vec<u32>> {
        let seen = self.history.items(user);
        let n_items = self.history.n_items();
        let unseen = n_items - seen.len();
        if k > unseen {
            return Err(DataError::Invalid(format!(
                "user index {user} has {unseen} unseen items, fewer than the {k} negatives asked for"
            )));
        }
        let mut out = Vec::with_capacity(k);
        if k * 3 > unseen {
            // Dense regime: draw from the explicit list of unseen items.
            let mut pool: Vec<u32> = (0..n_items as u32)
                .filter(|i| seen.binary_search(i).is_err())
                .collect();
            for j in 0..k {
                let pick = self.rng.random_range(j..pool.len());
                pool.swap(j, pick);
                out.push(pool[j]);
            }
            return Ok(out);
        }
        while out.len() < k {
            let i = self.rng.random_range(0..n_items as u32);
            if seen.binary_search(&i).is_err() && !out.contains(&i) {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// One unseen item of `user` (with replacement across calls), for per-epoch training
    /// negatives. The user must have an unseen item.
    pub fn one(&mut self, user: u32) -> u32 {
        let seen = self.history.items(user);
        let n_items = self.history.n_items() as u32;
        assert!(
            (seen.len() as u32) < n_items,
            "user {user} has seen every item"
        );
        loop {
            let i = self.rng.random_range(0..n_items);
            if seen.binary_search(&i).is_err() {
                return i;
            }
        }
    }
}

/// Fixed test candidates: for each held-out (user, item), sampled negatives the user never
/// rated (NCF: 99). Stored once from the seed and reused.
#[derive(Debug, Clone, PartialEq)]
pub struct TestNegatives {
    pub cases: Vec<TestCase>,
}

/// One held-out positive and its negatives (dense indices).
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub user: u32,
    pub item: u32,
    pub negatives: Vec<u32>,
}

impl TestNegatives {
    /// Samples `k` negatives for every row of `test`, skipping items of `seen` (all the user's
    /// known ratings) and the positive itself.
    pub fn sample(test: &Interactions, seen: &UserHistory, k: usize, seed: u64) -> Result<Self> {
        let mut sampler = NegativeSampler::new(seen, seed);
        let mut cases = Vec::with_capacity(test.len());
        for (&u, &i) in test.users.iter().zip(&test.items) {
            let mut negatives = sampler.sample(u, k + 1)?;
            negatives.retain(|&n| n != i);
            negatives.truncate(k);
            cases.push(TestCase {
                user: u,
                item: i,
                negatives,
            });
        }
        Ok(Self { cases })
    }

    /// Writes the NCF `.test.negative` format: `(user,item)` then the negatives, tab-separated.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic_with(path, |w| {
            for c in &self.cases {
                write!(w, "({},{})", c.user, c.item)?;
                for n in &c.negatives {
                    write!(w, "\t{n}")?;
                }
                writeln!(w)?;
            }
            Ok(())
        })
    }

    /// Reads the NCF `.test.negative` format, checking every index against `n_users` and
    /// `n_items` and that every line has the same number of negatives. (The NCF paper's own
    /// ML-1M file lists a user's held-out item among its negatives on a few lines; such files
    /// are read as they are.)
    pub fn read(path: &Path, n_users: usize, n_items: usize) -> Result<Self> {
        let text = crate::io::read_utf8(path)?;
        let mut cases = Vec::new();
        let mut width: Option<usize> = None;
        for (k, line) in text.lines().enumerate() {
            let ln = k as u64 + 1;
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let err = |m: String| DataError::parse(path, ln, m);
            let mut fields = line.split('\t');
            let head = fields.next().unwrap_or("");
            let pair = head
                .strip_prefix('(')
                .and_then(|h| h.strip_suffix(')'))
                .ok_or_else(|| err(format!("expected \"(user,item)\" first, found {head:?}")))?;
            let (u, i) = pair
                .split_once(',')
                .ok_or_else(|| err(format!("expected \"(user,item)\", found {head:?}")))?;
            let num = |s: &str, what: &str, bound: usize| -> Result<u32> {
                let v: u32 = s
                    .trim()
                    .parse()
                    .map_err(|_| err(format!("{what} {s:?} is not an index")))?;
                if v as usize >= bound {
                    return Err(err(format!(
                        "{what} {v} is out of range (the data has {bound})"
                    )));
                }
                Ok(v)
            };
            let user = num(u, "user", n_users)?;
            let item = num(i, "item", n_items)?;
            let negatives = fields
                .map(|f| num(f, "negative item", n_items))
                .collect::<Result<Vec<_>>>()?;
            match width {
                None => width = Some(negatives.len()),
                Some(w) if w != negatives.len() => {
                    return Err(err(format!(
                        "{} negatives, where earlier lines have {w}",
                        negatives.len()
                    )));
                }
                _ => {}
            }
            cases.push(TestCase {
                user,
                item,
                negatives,
            });
        }
        if cases.is_empty() {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
                detail: " (no test cases)".into(),
            });
        }
        Ok(Self { cases })
    }
}
