//! A seeded, MovieLens-shaped synthetic data generator.
//!
//! [`generate`] builds a [`Dataset`] in memory; [`write_ml20m_csv`] streams the very same
//! ratings to disk in the ML-20M `ratings.csv` format (and, optionally, a `movies.csv`), so the
//! loaders, filters and splits can be exercised at MovieLens scale without downloading anything.
//!
//! The shape follows MovieLens:
//!
//! * **Item popularity** is Zipf–Mandelbrot: an item of popularity rank `r` (ranks are shuffled
//!   over the ids) is drawn with weight `1 / (r + offset)^exponent`, exponent ~1.
//! * **User activity** is log-normal on top of a floor of [`SynthConfig::min_per_user`] ratings
//!   (20, as in MovieLens), capped at a fraction of the catalogue, and rescaled so the total is
//!   exactly [`SynthConfig::n_ratings`].
//! * **No duplicate `(user, item)` pairs**: each user's items are sampled without replacement, one
//!   user at a time, so no global set of pairs is ever built. Every item is rated at least once.
//! * **Ratings** come from a latent-factor model, `mu + b_u + b_i + <p_u, q_i> + noise`, rounded to
//!   half stars and clamped to `[0.5, 5.0]` (mean ~3.5, standard deviation ~1.0).
//! * **Timestamps** (Unix seconds) increase strictly within each user, inside 1995..2015.
//!
//! Rows are grouped by user (users in id order) and each user's rows are in time order.
//!
//! Everything is a pure function of the configuration: every user draws from its own random
//! stream derived from the seed, which is why the in-memory and the streamed outputs are
//! identical and why the in-memory generator can fill users in parallel yet stay deterministic.

mod meta;
mod plan;
mod random;
mod write;

pub use write::{write_ml20m_csv, write_movies_csv};

use crate::error::{DataError, Result};
use crate::interactions::{Dataset, IdMap, Interactions, ItemInfo, Vocab};
use meta::item_meta;
use plan::{Plan, Scratch};

/// Parameters of the synthetic generator. Start from [`SynthConfig::preset`] or
/// [`SynthConfig::new`] and adjust fields as needed; [`SynthConfig::validate`] says whether a
/// configuration can be generated.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of users (raw ids `"1"..="n_users"`).
    pub n_users: usize,
    /// Number of items (raw ids `"1"..="n_items"`); every item gets at least one rating when
    /// `n_ratings` allows it.
    pub n_items: usize,
    /// Exact number of ratings.
    pub n_ratings: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Least number of ratings of each user (MovieLens: 20), lowered automatically when
    /// `n_ratings / n_users` is smaller.
    pub min_per_user: usize,
    /// Largest share of the catalogue a single user rates, in `(0, 1]`.
    pub max_user_fraction: f64,
    /// Spread (sigma of the underlying normal) of the log-normal user activity.
    pub activity_sigma: f64,
    /// Exponent of the Zipf–Mandelbrot item popularity.
    pub zipf_exponent: f64,
    /// Rank offset of the Zipf–Mandelbrot item popularity; flattens the head.
    pub zipf_offset: f64,
    /// Rank of the latent-factor rating model.
    pub n_factors: usize,
    /// Standard deviation of the rating noise (before rounding to half stars).
    pub noise_std: f64,
    /// Label of the configuration, used in [`Dataset::source`] as `synthetic:<name>`.
    pub name: String,
    /// Whether [`write_ml20m_csv`] also writes `movies.csv` next to `ratings.csv` (default: no;
    /// [`write_movies_csv`] writes it on its own).
    pub write_movies: bool,
}

impl Default for SynthConfig {
    /// The `100k` preset.
    fn default() -> Self {
        Self::new(943, 1_682, 100_000).named("100k")
    }
}

impl SynthConfig {
    /// Names accepted by [`SynthConfig::preset`].
    pub const PRESETS: [&'static str; 3] = ["100k", "1m", "20m"];

    /// A configuration of the given size with the default shape parameters and seed 42.
    pub fn new(n_users: usize, n_items: usize, n_ratings: usize) -> Self {
        Self {
            n_users,
            n_items,
            n_ratings,
            seed: 42,
            min_per_user: 20,
            max_user_fraction: 0.6,
            activity_sigma: 1.2,
            zipf_exponent: 1.0,
            zipf_offset: 10.0,
            n_factors: 8,
            noise_std: 0.65,
            name: "custom".to_string(),
            write_movies: false,
        }
    }

    /// The configuration with the sizes of a MovieLens release: `"100k"` (943 users, 1,682
    /// items, 100,000 ratings), `"1m"` (6,040 x 3,706 x 1,000,209) or `"20m"`
    /// (138,493 x 26,744 x 20,000,263). An `ml-` prefix is accepted too.
    pub fn preset(name: &str) -> Result<Self> {
        let key = name.trim().to_ascii_lowercase();
        let key = key.strip_prefix("ml-").unwrap_or(&key);
        let cfg = match key {
            "100k" => Self::new(943, 1_682, 100_000),
            "1m" => Self::new(6_040, 3_706, 1_000_209),
            "20m" => Self::new(138_493, 26_744, 20_000_263),
            _ => {
                return Err(DataError::Invalid(format!(
                    "unknown synthetic preset {name:?}; expected one of {}",
                    Self::PRESETS.join(", ")
                )));
            }
        };
        Ok(cfg.named(key))
    }

    /// The same configuration with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same configuration with another label.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks that the configuration can be generated: at least one user and one item, ids that
    /// fit `u32`, at least one rating per user, and no more ratings than the users can hold
    /// (`n_users x max_user_fraction x n_items`).
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(DataError::Invalid(format!("synthetic config: {m}")));
        if self.n_users == 0 || self.n_items == 0 {
            return invalid("needs at least one user and one item".into());
        }
        if self.n_users > u32::MAX as usize || self.n_items > u32::MAX as usize {
            return invalid("users and items must fit u32 indices".into());
        }
        if self.n_ratings < self.n_users {
            return invalid(format!(
                "{} ratings cannot give each of {} users a rating",
                self.n_ratings, self.n_users
            ));
        }
        if !(self.max_user_fraction > 0.0 && self.max_user_fraction <= 1.0) {
            return invalid(format!(
                "max_user_fraction {} is not in (0, 1]",
                self.max_user_fraction
            ));
        }
        let checks = [
            ("activity_sigma", self.activity_sigma),
            ("zipf_exponent", self.zipf_exponent),
            ("zipf_offset", self.zipf_offset),
            ("noise_std", self.noise_std),
        ];
        for (name, v) in checks {
            if !(v.is_finite() && v >= 0.0) {
                return invalid(format!("{name} {v} must be finite and non-negative"));
            }
        }
        if self.zipf_offset < 1.0 {
            return invalid(format!(
                "zipf_offset {} must be at least 1",
                self.zipf_offset
            ));
        }
        let cap = self.max_per_user();
        let most = (self.n_users as u128) * (cap as u128);
        if (self.n_ratings as u128) > most {
            return invalid(format!(
                "{} ratings exceed the most {} users can hold ({} each, {} in all)",
                self.n_ratings, self.n_users, cap, most
            ));
        }
        Ok(())
    }

    /// Most ratings a single user gets.
    fn max_per_user(&self) -> usize {
        ((self.max_user_fraction * self.n_items as f64).ceil() as usize).clamp(1, self.n_items)
    }

    /// Least ratings a single user gets (after lowering to what the totals allow).
    fn min_per_user_effective(&self) -> usize {
        self.min_per_user
            .min(self.n_ratings / self.n_users)
            .min(self.max_per_user())
            .max(1)
    }
}

/// Generates the whole data set in memory.
///
/// Columns take `n_ratings x 20` bytes (about 400 MB for the `20m` preset); users are filled in
/// parallel on all available cores, with a result that does not depend on the number of cores.
///
/// # Panics
///
/// When [`SynthConfig::validate`] fails; call it first on untrusted configurations.
pub fn generate(cfg: &SynthConfig) -> Dataset {
    if let Err(e) = cfg.validate() {
        panic!("{e}");
    }
    let plan = Plan::new(cfg);
    let n = cfg.n_ratings;
    let mut users = vec![0u32; n];
    let mut items = vec![0u32; n];
    let mut ratings = vec![0f32; n];
    let mut timestamps = vec![0i64; n];

    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(cfg.n_users);
    // Contiguous user ranges with about the same number of ratings each.
    let mut bounds = vec![0usize];
    for t in 1..threads {
        let target = n * t / threads;
        let u = plan
            .offsets
            .partition_point(|&o| o < target)
            .min(cfg.n_users);
        bounds.push(u.max(*bounds.last().unwrap()));
    }
    bounds.push(cfg.n_users);

    std::thread::scope(|scope| {
        let (mut us, mut is, mut rs, mut ts) = (
            &mut users[..],
            &mut items[..],
            &mut ratings[..],
            &mut timestamps[..],
        );
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let len = plan.offsets[hi] - plan.offsets[lo];
            let (u_part, u_rest) = std::mem::take(&mut us).split_at_mut(len);
            let (i_part, i_rest) = std::mem::take(&mut is).split_at_mut(len);
            let (r_part, r_rest) = std::mem::take(&mut rs).split_at_mut(len);
            let (t_part, t_rest) = std::mem::take(&mut ts).split_at_mut(len);
            (us, is, rs, ts) = (u_rest, i_rest, r_rest, t_rest);
            let plan = &plan;
            scope.spawn(move || {
                let mut scratch = Scratch::new(cfg.n_items);
                let base = plan.offsets[lo];
                for u in lo..hi {
                    let range = plan.offsets[u] - base..plan.offsets[u + 1] - base;
                    u_part[range.clone()].fill(u as u32);
                    plan.fill_user(
                        u,
                        &mut scratch,
                        &mut i_part[range.clone()],
                        &mut r_part[range.clone()],
                        &mut t_part[range],
                    );
                }
            });
        }
    });

    let raw = |n: usize| (1..=n).map(|k| k.to_string()).collect::<Vec<_>>();
    let ids = IdMap {
        users: Vocab::from_raw(raw(cfg.n_users)).expect("distinct raw ids"),
        items: Vocab::from_raw(raw(cfg.n_items)).expect("distinct raw ids"),
    };
    let meta = item_meta(cfg);
    let item_infos = (0..cfg.n_items)
        .map(|i| {
            Some(ItemInfo {
                title: meta.title(i),
                genres: meta.genres(i).into_iter().map(str::to_string).collect(),
            })
        })
        .collect();
    Dataset {
        interactions: Interactions {
            users,
            items,
            ratings,
            timestamps: Some(timestamps),
            n_users: cfg.n_users,
            n_items: cfg.n_items,
        },
        ids,
        items: item_infos,
        scale: (0.5, 5.0),
        source: format!("synthetic:{}", cfg.name),
        scale_inferred: false,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
