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

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::error::{DataError, Result};
use crate::interactions::{Dataset, IdMap, Interactions, ItemInfo, Vocab};

/// 1995-01-01T00:00:00Z.
const T_START: i64 = 788_918_400;
/// 2015-01-01T00:00:00Z (exclusive).
const T_END: i64 = 1_420_070_400;

/// The genres of the MovieLens 20M release, with rough relative frequencies.
const GENRES: [(&str, f64); 19] = [
    ("Drama", 13.3),
    ("Comedy", 8.4),
    ("Thriller", 4.2),
    ("Romance", 4.1),
    ("Action", 3.5),
    ("Crime", 2.9),
    ("Horror", 2.6),
    ("Documentary", 2.5),
    ("Adventure", 2.3),
    ("Sci-Fi", 1.7),
    ("Mystery", 1.5),
    ("Fantasy", 1.4),
    ("War", 1.2),
    ("Children", 1.1),
    ("Musical", 1.0),
    ("Animation", 1.0),
    ("Western", 0.7),
    ("Film-Noir", 0.3),
    ("IMAX", 0.2),
];

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
    }
}

/// Streams the data set of [`generate`] to `path` in the ML-20M `ratings.csv` format: a
/// `userId,movieId,rating,timestamp` header, then one `\n`-terminated line per rating such as
/// `17,2571,3.5,1112486027` (raw ids, ratings with one decimal, Unix seconds). The `20m` preset
/// gives a file of about 530 MB, like the real one.
///
/// When [`SynthConfig::write_movies`] is set, `movies.csv` (see [`write_movies_csv`]) is written
/// into the same folder as well.
///
/// Memory stays at the size of the model (a few bytes per user and item): no rating is held as a
/// string beyond the current user's lines. Files are written to a temporary name and renamed
/// into place, so an interrupted run leaves no partial file behind.
///
/// Returns the number of ratings written (`cfg.n_ratings`).
pub fn write_ml20m_csv(cfg: &SynthConfig, path: &Path) -> Result<u64> {
    cfg.validate()?;
    let plan = Plan::new(cfg);
    let rows = write_atomically(path, |w| {
        w.write_all(b"userId,movieId,rating,timestamp\n")?;

        let mut scratch = Scratch::new(cfg.n_items);
        let most = plan.counts.iter().copied().max().unwrap_or(0) as usize;
        let (mut items, mut ratings, mut times) =
            (vec![0u32; most], vec![0f32; most], vec![0i64; most]);
        let mut line = Vec::with_capacity(most * 32);
        for u in 0..cfg.n_users {
            let k = plan.counts[u] as usize;
            plan.fill_user(
                u,
                &mut scratch,
                &mut items[..k],
                &mut ratings[..k],
                &mut times[..k],
            );
            line.clear();
            for j in 0..k {
                push_uint(&mut line, u as u64 + 1);
                line.push(b',');
                push_uint(&mut line, items[j] as u64 + 1);
                line.push(b',');
                line.extend_from_slice(half_star_text(ratings[j]).as_bytes());
                line.push(b',');
                push_uint(&mut line, times[j] as u64);
                line.push(b'\n');
            }
            w.write_all(&line)?;
        }
        Ok(cfg.n_ratings as u64)
    })?;
    if cfg.write_movies {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        write_movies_csv(cfg, &dir.join("movies.csv"))?;
    }
    Ok(rows)
}

/// Writes the item metadata of [`generate`] to `path` in the ML-20M `movies.csv` format:
/// a `movieId,title,genres` header, titles such as `Synthetic movie 17 (1998)` (every tenth title
/// has a comma, `Synthetic movie 10, The (1994)`, and is quoted as RFC 4180 requires) and genres
/// joined by `|`. Returns the number of movies written (`cfg.n_items`).
pub fn write_movies_csv(cfg: &SynthConfig, path: &Path) -> Result<u64> {
    cfg.validate()?;
    let meta = item_meta(cfg);
    write_atomically(path, |w| {
        let mut line = String::with_capacity(128);
        line.push_str("movieId,title,genres\n");
        for i in 0..cfg.n_items {
            line.push_str(&(i + 1).to_string());
            line.push(',');
            push_csv_field(&mut line, &meta.title(i));
            line.push(',');
            for (k, g) in meta.genres(i).into_iter().enumerate() {
                if k > 0 {
                    line.push('|');
                }
                line.push_str(g);
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
            line.clear();
        }
        Ok(cfg.n_items as u64)
    })
}

/// Writes through a buffered temporary file next to `path`, then renames it into place; the
/// temporary file is removed when anything fails.
fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<u64>,
) -> Result<u64> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let bytes = body(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(bytes)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}

/// Appends a CSV field, quoted (RFC 4180) when it holds a comma, a quote or a line break.
fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Appends the decimal digits of `v`.
fn push_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[k..]);
}

/// `3.5` -> `"3.5"`, `4.0` -> `"4.0"`, as ML-20M writes ratings.
fn half_star_text(r: f32) -> &'static str {
    const TEXT: [&str; 11] = [
        "0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0",
    ];
    TEXT[((r * 2.0).round() as usize).min(10)]
}

/// A random stream of its own for each purpose (`tag`) and index, derived from the seed.
fn stream(seed: u64, tag: u64, index: u64) -> StdRng {
    let mix = splitmix(splitmix(seed ^ splitmix(tag)) ^ index);
    StdRng::seed_from_u64(mix)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const TAG_PLAN: u64 = 1;
const TAG_USER: u64 = 2;
const TAG_META: u64 = 3;

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Vose's alias table: O(1) draws from a fixed discrete distribution.
struct Alias {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl Alias {
    fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| prob[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            prob[l] -= 1.0 - prob[s];
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in large.into_iter().chain(small) {
            prob[i] = 1.0;
        }
        Self { prob, alias }
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f64>() < self.prob[i] {
            i as u32
        } else {
            self.alias[i]
        }
    }
}

/// Everything shared by all users: activity, popularity, item parameters and the items each user
/// must rate so that every item is rated. O(n_users + n_items x n_factors) memory.
struct Plan {
    n_items: usize,
    n_factors: usize,
    seed: u64,
    noise_std: f32,
    factor_std: f32,
    /// Ratings of each user.
    counts: Vec<u32>,
    /// Prefix sums of `counts` (`n_users + 1` entries).
    offsets: Vec<usize>,
    /// Popularity weight of each item (Zipf–Mandelbrot over shuffled ranks).
    weights: Vec<f64>,
    popularity: Alias,
    item_bias: Vec<f32>,
    item_factors: Vec<f32>,
    /// Items each user is bound to rate (compressed rows: `designated_offsets[u]..[u + 1]`).
    designated: Vec<u32>,
    designated_offsets: Vec<usize>,
}

/// Global mean of the rating model, before rounding and clamping.
const MU: f32 = 3.45;
const USER_BIAS_STD: f64 = 0.5;
const ITEM_BIAS_STD: f64 = 0.38;
/// Item bias from popularity: the most popular items rate this much higher than the least.
const POPULARITY_BIAS: f32 = 0.4;
/// Variance of the dot product `<p_u, q_i>`.
const DOT_VARIANCE: f64 = 0.35;

impl Plan {
    fn new(cfg: &SynthConfig) -> Self {
        let mut rng = stream(cfg.seed, TAG_PLAN, 0);
        let (n_users, n_items) = (cfg.n_users, cfg.n_items);

        // Item popularity: Zipf–Mandelbrot weights over a random ranking of the ids.
        let mut rank: Vec<u32> = (0..n_items as u32).collect();
        rank.shuffle(&mut rng);
        let weights: Vec<f64> = rank
            .iter()
            .map(|&r| (r as f64 + cfg.zipf_offset).powf(-cfg.zipf_exponent))
            .collect();
        let popularity = Alias::new(&weights);

        // Item parameters: bias (higher for popular items) and latent factors.
        let k = cfg.n_factors.max(1);
        let factor_std = (DOT_VARIANCE / k as f64).sqrt().sqrt() as f32;
        let item_bias = rank
            .iter()
            .map(|&r| {
                let head = 0.5 - r as f32 / n_items as f32;
                (ITEM_BIAS_STD * normal(&mut rng)) as f32 + POPULARITY_BIAS * head
            })
            .collect();
        let item_factors = (0..n_items * cfg.n_factors)
            .map(|_| normal(&mut rng) as f32 * factor_std)
            .collect();

        let counts = user_counts(cfg, &mut rng);
        let mut offsets = Vec::with_capacity(n_users + 1);
        offsets.push(0usize);
        for &c in &counts {
            offsets.push(offsets.last().unwrap() + c as usize);
        }
        let (designated, designated_offsets) = designate(&counts, n_items, &mut rng);

        Self {
            n_items,
            n_factors: cfg.n_factors,
            seed: cfg.seed,
            noise_std: cfg.noise_std as f32,
            factor_std,
            counts,
            offsets,
            weights,
            popularity,
            item_bias,
            item_factors,
            designated,
            designated_offsets,
        }
    }

    /// Fills user `u`'s rows: distinct items, their ratings and increasing timestamps.
    /// All slices have length `counts[u]`.
    fn fill_user(
        &self,
        u: usize,
        s: &mut Scratch,
        items: &mut [u32],
        ratings: &mut [f32],
        times: &mut [i64],
    ) {
        let k = items.len();
        let mut rng = stream(self.seed, TAG_USER, u as u64);

        // Items: the designated ones, then popularity draws without replacement.
        let desig = &self.designated[self.designated_offsets[u]..self.designated_offsets[u + 1]];
        items[..desig.len()].copy_from_slice(desig);
        for &i in desig {
            s.mark(i);
        }
        let need = k - desig.len();
        if need * 8 > self.n_items {
            // Heavy user: weighted sampling without replacement over the whole catalogue
            // (Efraimidis–Spirakis keys), cheaper than rejection when most of the mass is taken.
            s.keys.clear();
            for i in 0..self.n_items as u32 {
                if !s.is_marked(i) {
                    let e = -(1.0 - rng.random::<f64>()).ln();
                    s.keys.push((e / self.weights[i as usize], i));
                }
            }
            s.keys
                .select_nth_unstable_by(need - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let chosen = &mut s.keys[..need];
            chosen.sort_unstable_by_key(|&(_, i)| i);
            for (slot, &(_, i)) in items[desig.len()..].iter_mut().zip(chosen.iter()) {
                *slot = i;
            }
        } else {
            let mut filled = desig.len();
            while filled < k {
                let i = self.popularity.sample(&mut rng);
                if !s.is_marked(i) {
                    s.mark(i);
                    items[filled] = i;
                    filled += 1;
                }
            }
        }
        for &i in items.iter() {
            s.unmark(i);
        }
        items.shuffle(&mut rng);

        // Ratings: mu + b_u + b_i + <p_u, q_i> + noise, rounded to half stars.
        let b_u = (USER_BIAS_STD * normal(&mut rng)) as f32;
        s.user_factors.clear();
        for _ in 0..self.n_factors {
            s.user_factors
                .push(normal(&mut rng) as f32 * self.factor_std);
        }
        for (r, &i) in ratings.iter_mut().zip(items.iter()) {
            let i = i as usize;
            let q = &self.item_factors[i * self.n_factors..(i + 1) * self.n_factors];
            let dot: f32 = s.user_factors.iter().zip(q).map(|(a, b)| a * b).sum();
            let x = MU + b_u + self.item_bias[i] + dot + self.noise_std * normal(&mut rng) as f32;
            *r = ((x * 2.0).round() / 2.0).clamp(0.5, 5.0);
        }

        // Timestamps: a session of random length somewhere in 1995..2015, strictly increasing.
        let window = (T_END - T_START) as f64;
        let min_span = 60.0 * (k as f64 + 1.0);
        let span =
            (3600.0 * (rng.random::<f64>() * (window / 3600.0).ln()).exp()).clamp(min_span, window);
        let start = T_START as f64 + rng.random::<f64>() * (window - span);
        // Sorted uniform positions from normalised exponential spacings, in O(k).
        s.spacing.clear();
        let mut acc = 0.0;
        for _ in 0..k {
            acc += -(1.0 - rng.random::<f64>()).ln();
            s.spacing.push(acc);
        }
        let total = acc - (1.0 - rng.random::<f64>()).ln();
        let mut prev = i64::MIN;
        for (t, &c) in times.iter_mut().zip(&s.spacing) {
            let v = (start + c / total * (span - k as f64)) as i64;
            prev = v.max(prev.saturating_add(1));
            *t = prev;
        }
    }
}

/// Per-thread working memory of [`Plan::fill_user`].
struct Scratch {
    marks: Vec<u64>,
    keys: Vec<(f64, u32)>,
    user_factors: Vec<f32>,
    spacing: Vec<f64>,
}

impl Scratch {
    fn new(n_items: usize) -> Self {
        Self {
            marks: vec![0; n_items.div_ceil(64)],
            keys: Vec::new(),
            user_factors: Vec::new(),
            spacing: Vec::new(),
        }
    }
    fn mark(&mut self, i: u32) {
        self.marks[(i >> 6) as usize] |= 1 << (i & 63);
    }
    fn unmark(&mut self, i: u32) {
        self.marks[(i >> 6) as usize] &= !(1 << (i & 63));
    }
    fn is_marked(&self, i: u32) -> bool {
        self.marks[(i >> 6) as usize] & (1 << (i & 63)) != 0
    }
}

/// Number of ratings of each user: the floor plus a log-normal share of the rest, capped, with
/// the rounding remainder handed out so the total is exact.
fn user_counts(cfg: &SynthConfig, rng: &mut StdRng) -> Vec<u32> {
    let n = cfg.n_users;
    let floor = cfg.min_per_user_effective();
    let room = (cfg.max_per_user() - floor) as f64;
    let extra_total = (cfg.n_ratings - floor * n) as f64;
    let activity: Vec<f64> = (0..n)
        .map(|_| (cfg.activity_sigma * normal(rng)).exp())
        .collect();

    // Water-filling: extra_u = min(room, lambda * activity_u) with sum = extra_total.
    let mut saturated = vec![false; n];
    let mut extra = vec![0f64; n];
    loop {
        let free: f64 = extra_total - saturated.iter().filter(|&&s| s).count() as f64 * room;
        let mass: f64 = (0..n).filter(|&u| !saturated[u]).map(|u| activity[u]).sum();
        let lambda = if mass > 0.0 { free / mass } else { 0.0 };
        let mut changed = false;
        for u in 0..n {
            if !saturated[u] && lambda * activity[u] >= room {
                saturated[u] = true;
                changed = true;
            }
        }
        if !changed {
            for u in 0..n {
                extra[u] = if saturated[u] {
                    room
                } else {
                    lambda * activity[u]
                };
            }
            break;
        }
    }
    let mut counts: Vec<u32> = extra
        .iter()
        .map(|&e| floor as u32 + e.floor() as u32)
        .collect();
    let mut left = cfg.n_ratings as i64 - counts.iter().map(|&c| c as i64).sum::<i64>();
    // Largest fractional parts first, then round-robin while any user has room.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        (extra[b] - extra[b].floor())
            .total_cmp(&(extra[a] - extra[a].floor()))
            .then(a.cmp(&b))
    });
    let cap = cfg.max_per_user() as u32;
    while left > 0 {
        let before = left;
        for &u in &order {
            if left == 0 {
                break;
            }
            if counts[u] < cap {
                counts[u] += 1;
                left -= 1;
            }
        }
        assert!(left < before, "validated configuration always has room");
    }
    counts
}

/// Binds every item (while capacity lasts) to one user who must rate it, so that no item is left
/// without ratings. A user is bound to at most a quarter of their ratings where possible.
/// Returns the bound items in compressed rows by user.
fn designate(counts: &[u32], n_items: usize, rng: &mut StdRng) -> (Vec<u32>, Vec<usize>) {
    let n_users = counts.len();
    let mut cap: Vec<u32> = counts.iter().map(|&c| (c / 4).max(1).min(c)).collect();
    if cap.iter().map(|&c| c as usize).sum::<usize>() < n_items {
        cap.copy_from_slice(counts);
    }
    let capacity: usize = cap.iter().map(|&c| c as usize).sum();
    let mut order: Vec<u32> = (0..n_items as u32).collect();
    order.shuffle(rng);
    order.truncate(n_items.min(capacity));

    let by_activity = Alias::new(&cap.iter().map(|&c| c as f64).collect::<Vec<_>>());
    let mut owner = Vec::with_capacity(order.len());
    let mut used = vec![0u32; n_users];
    for _ in 0..order.len() {
        let mut u = by_activity.sample(rng) as usize;
        let mut tries = 0;
        while used[u] >= cap[u] {
            tries += 1;
            u = if tries < 32 {
                by_activity.sample(rng) as usize
            } else {
                (u + 1) % n_users
            };
        }
        used[u] += 1;
        owner.push(u);
    }

    let mut offsets = vec![0usize; n_users + 1];
    for u in 0..n_users {
        offsets[u + 1] = offsets[u] + used[u] as usize;
    }
    let mut fill = offsets.clone();
    let mut designated = vec![0u32; order.len()];
    for (&item, &u) in order.iter().zip(&owner) {
        designated[fill[u]] = item;
        fill[u] += 1;
    }
    (designated, offsets)
}

/// Titles and genres of the items, from a stream of their own so that [`write_movies_csv`]
/// needs nothing else.
struct ItemMeta {
    years: Vec<u16>,
    genres: Vec<u32>,
}

impl ItemMeta {
    fn title(&self, i: usize) -> String {
        let id = i + 1;
        if id.is_multiple_of(10) {
            format!("Synthetic movie {id}, The ({})", self.years[i])
        } else {
            format!("Synthetic movie {id} ({})", self.years[i])
        }
    }

    /// Genre names in alphabetical order, as MovieLens lists them.
    fn genres(&self, i: usize) -> Vec<&'static str> {
        let mask = self.genres[i];
        let mut names: Vec<&str> = GENRES
            .iter()
            .enumerate()
            .filter(|(g, _)| mask & (1 << g) != 0)
            .map(|(_, (name, _))| *name)
            .collect();
        names.sort_unstable();
        names
    }
}

fn item_meta(cfg: &SynthConfig) -> ItemMeta {
    let mut rng = stream(cfg.seed, TAG_META, 0);
    let genre_pick = Alias::new(&GENRES.iter().map(|g| g.1).collect::<Vec<_>>());
    let mut years = Vec::with_capacity(cfg.n_items);
    let mut genres = Vec::with_capacity(cfg.n_items);
    for _ in 0..cfg.n_items {
        // Mostly recent films: 2014 minus an exponential age of mean 18 years, from 1915 on.
        let age = -(1.0 - rng.random::<f64>()).ln() * 18.0;
        years.push((2014.0 - age).max(1915.0) as u16);
        let n_genres = 1 + rng.random_range(0..3);
        let mut mask = 0u32;
        for _ in 0..n_genres {
            mask |= 1 << genre_pick.sample(&mut rng);
        }
        genres.push(mask);
    }
    ItemMeta { years, genres }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthConfig {
        SynthConfig::new(300, 500, 20_000).named("small")
    }

    fn check_shape(ds: &Dataset, cfg: &SynthConfig) {
        let x = &ds.interactions;
        assert_eq!(x.n_users, cfg.n_users);
        assert_eq!(x.n_items, cfg.n_items);
        assert_eq!(x.len(), cfg.n_ratings);
        assert_eq!(ds.ids.n_users(), cfg.n_users);
        assert_eq!(ds.ids.n_items(), cfg.n_items);
        assert_eq!(ds.items.len(), cfg.n_items);
        assert_eq!(ds.ids.users.raw_id(0), "1");
        assert_eq!(
            ds.ids.items.raw_id(cfg.n_items as u32 - 1),
            cfg.n_items.to_string()
        );
        // Validates lengths and index ranges.
        Interactions::new(
            x.users.clone(),
            x.items.clone(),
            x.ratings.clone(),
            x.timestamps.clone(),
            x.n_users,
            x.n_items,
        )
        .unwrap();

        let uc = x.user_counts();
        assert!(
            uc.iter().all(|&c| c >= 20),
            "min user count {}",
            uc.iter().min().unwrap()
        );
        assert!(
            x.item_counts().iter().all(|&c| c >= 1),
            "an item has no ratings"
        );

        let mut keys: Vec<u64> = x
            .users
            .iter()
            .zip(&x.items)
            .map(|(&u, &i)| Interactions::pair_key(u, i))
            .collect();
        keys.sort_unstable();
        assert!(
            keys.windows(2).all(|w| w[0] != w[1]),
            "duplicate (user, item) pair"
        );

        // Rows grouped by user, in time order, inside 1995..2015.
        let ts = x.timestamps.as_ref().unwrap();
        for r in 1..x.len() {
            assert!(x.users[r - 1] <= x.users[r]);
            if x.users[r - 1] == x.users[r] {
                assert!(
                    ts[r - 1] < ts[r],
                    "timestamps not increasing for user {}",
                    x.users[r]
                );
            }
        }
        assert!(ts.iter().all(|&t| (T_START..T_END).contains(&t)));

        assert!(
            x.ratings
                .iter()
                .all(|&r| (0.5..=5.0).contains(&r) && (r * 2.0).fract() == 0.0)
        );
        let mean = x.mean_rating();
        let var = x
            .ratings
            .iter()
            .map(|&r| (r as f64 - mean).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        assert!((3.35..=3.65).contains(&mean), "mean rating {mean}");
        assert!(
            (0.85..=1.15).contains(&var.sqrt()),
            "rating std {}",
            var.sqrt()
        );
    }

    #[test]
    fn preset_100k() {
        let cfg = SynthConfig::preset("100k").unwrap();
        assert_eq!(
            (cfg.n_users, cfg.n_items, cfg.n_ratings),
            (943, 1_682, 100_000)
        );
        let ds = generate(&cfg);
        check_shape(&ds, &cfg);
        assert_eq!(ds.source, "synthetic:100k");
        assert_eq!(ds.scale, (0.5, 5.0));
        assert_eq!(
            ds.title(16),
            Some(ds.items[16].as_ref().unwrap().title.as_str())
        );
        assert!(ds.title(16).unwrap().starts_with("Synthetic movie 17 ("));
        assert!(!ds.items[16].as_ref().unwrap().genres.is_empty());
    }

    #[test]
    fn preset_1m() {
        let cfg = SynthConfig::preset("ml-1m").unwrap();
        assert_eq!(
            (cfg.n_users, cfg.n_items, cfg.n_ratings),
            (6_040, 3_706, 1_000_209)
        );
        check_shape(&generate(&cfg), &cfg);
    }

    #[test]
    fn preset_20m_sizes_and_unknown_preset() {
        let cfg = SynthConfig::preset("20m").unwrap();
        assert_eq!(
            (cfg.n_users, cfg.n_items, cfg.n_ratings),
            (138_493, 26_744, 20_000_263)
        );
        cfg.validate().unwrap();
        let err = SynthConfig::preset("5m").unwrap_err().to_string();
        assert!(err.contains("100k, 1m, 20m"), "{err}");
    }

    /// The full 20M preset in memory (slow in debug builds): `cargo test --release -- --ignored`.
    #[test]
    #[ignore]
    fn preset_20m_in_memory() {
        let cfg = SynthConfig::preset("20m").unwrap();
        let t = std::time::Instant::now();
        let ds = generate(&cfg);
        eprintln!("20m generated in {:.1?}", t.elapsed());
        check_shape(&ds, &cfg);
    }

    #[test]
    fn deterministic_for_a_seed() {
        let cfg = small();
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a, b);
        let c = generate(&cfg.clone().with_seed(7));
        assert_ne!(a.interactions, c.interactions);
    }

    #[test]
    fn small_config_shape() {
        let cfg = small();
        check_shape(&generate(&cfg), &cfg);
    }

    #[test]
    fn popularity_is_skewed() {
        let ds = generate(&SynthConfig::preset("100k").unwrap());
        let mut counts = ds.interactions.item_counts();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = counts[..counts.len() / 10].iter().sum();
        let share = top as f64 / ds.interactions.len() as f64;
        assert!(
            share > 0.3,
            "top 10% of items hold only {share:.2} of the ratings"
        );
        let most = ds.interactions.user_counts().into_iter().max().unwrap();
        assert!(most > 200, "most active user has only {most} ratings");
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(SynthConfig::new(0, 10, 10).validate().is_err());
        assert!(SynthConfig::new(10, 10, 5).validate().is_err());
        // 10 users x 6 items each (60% of 10) = 60 ratings at most.
        assert!(SynthConfig::new(10, 10, 61).validate().is_err());
        let tight = SynthConfig::new(10, 10, 60);
        tight.validate().unwrap();
        let ds = generate(&tight);
        assert_eq!(ds.interactions.user_counts(), vec![6; 10]);
    }

    #[test]
    fn tiny_configs_cover_every_item() {
        // Fewer ratings per user than the MovieLens floor of 20, more items than ratings per user.
        let cfg = SynthConfig::new(50, 400, 600);
        let ds = generate(&cfg);
        let x = &ds.interactions;
        assert_eq!(x.len(), 600);
        assert!(x.user_counts().iter().all(|&c| c >= 12));
        assert!(x.item_counts().iter().all(|&c| c >= 1));
    }

    #[test]
    fn csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = small();
        cfg.write_movies = true;
        let path = dir.path().join("ratings.csv");
        assert_eq!(write_ml20m_csv(&cfg, &path).unwrap(), cfg.n_ratings as u64);
        let ds = generate(&cfg);
        let x = &ds.interactions;

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("userId,movieId,rating,timestamp\n"));
        assert!(text.ends_with('\n') && !text.contains('\r'));
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            vec!["userId", "movieId", "rating", "timestamp"]
        );
        let mut rows = 0;
        for (k, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            assert_eq!(rec[0].parse::<u32>().unwrap(), x.users[k] + 1);
            assert_eq!(rec[1].parse::<u32>().unwrap(), x.items[k] + 1);
            assert!(
                rec[2].contains('.'),
                "rating {:?} not written like 3.5",
                &rec[2]
            );
            assert_eq!(rec[2].parse::<f32>().unwrap(), x.ratings[k]);
            assert_eq!(
                rec[3].parse::<i64>().unwrap(),
                x.timestamps.as_ref().unwrap()[k]
            );
            rows += 1;
        }
        assert_eq!(rows, cfg.n_ratings);

        let mut reader = csv::Reader::from_path(dir.path().join("movies.csv")).unwrap();
        assert_eq!(
            reader.headers().unwrap(),
            vec!["movieId", "title", "genres"]
        );
        let mut n = 0;
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.unwrap();
            let info = ds.items[i].as_ref().unwrap();
            assert_eq!(rec[0].parse::<usize>().unwrap(), i + 1);
            assert_eq!(&rec[1], info.title);
            assert_eq!(rec[2].split('|').collect::<Vec<_>>(), info.genres);
            n += 1;
        }
        assert_eq!(n, cfg.n_items);
        let movies = std::fs::read_to_string(dir.path().join("movies.csv")).unwrap();
        assert!(
            movies.contains("\n10,\"Synthetic movie 10, The ("),
            "titles with commas are quoted"
        );

        // Nothing but the two files (no temporary files left).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn csv_without_movies() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = SynthConfig::new(30, 40, 700);
        cfg.write_movies = false;
        let path = dir.path().join("r.csv");
        write_ml20m_csv(&cfg, &path).unwrap();
        assert!(!dir.path().join("movies.csv").exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 701);
    }

    #[test]
    fn alias_table_matches_weights() {
        let w = [1.0, 2.0, 3.0, 4.0];
        let a = Alias::new(&w);
        let mut rng = StdRng::seed_from_u64(1);
        let mut hits = [0usize; 4];
        for _ in 0..100_000 {
            hits[a.sample(&mut rng) as usize] += 1;
        }
        for (h, w) in hits.iter().zip(w) {
            let p = *h as f64 / 100_000.0;
            assert!((p - w / 10.0).abs() < 0.01, "{hits:?}");
        }
    }

    #[test]
    fn number_formatting() {
        let mut v = Vec::new();
        push_uint(&mut v, 0);
        v.push(b' ');
        push_uint(&mut v, 1_112_486_027);
        assert_eq!(v, b"0 1112486027");
        assert_eq!(half_star_text(3.5), "3.5");
        assert_eq!(half_star_text(4.0), "4.0");
        let mut s = String::new();
        push_csv_field(&mut s, "a \"b\", c");
        assert_eq!(s, "\"a \"\"b\"\", c\"");
    }
}
