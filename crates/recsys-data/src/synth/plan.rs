//! The generator's model (activity, popularity, item parameters) and the filling of a user's rows.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::SynthConfig;
use super::random::{Alias, TAG_PLAN, TAG_USER, normal, stream};

/// 1995-01-01T00:00:00Z.
pub(super) const T_START: i64 = 788_918_400;
/// 2015-01-01T00:00:00Z (exclusive).
pub(super) const T_END: i64 = 1_420_070_400;

/// Everything shared by all users: activity, popularity, item parameters and the items each user
/// must rate so that every item is rated. O(n_users + n_items x n_factors) memory.
pub(super) struct Plan {
    n_items: usize,
    n_factors: usize,
    seed: u64,
    noise_std: f32,
    factor_std: f32,
    /// Ratings of each user.
    pub(super) counts: Vec<u32>,
    /// Prefix sums of `counts` (`n_users + 1` entries).
    pub(super) offsets: Vec<usize>,
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
    pub(super) fn new(cfg: &SynthConfig) -> Self {
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
    pub(super) fn fill_user(
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
pub(super) struct Scratch {
    marks: Vec<u64>,
    keys: Vec<(f64, u32)>,
    user_factors: Vec<f32>,
    spacing: Vec<f64>,
}

impl Scratch {
    pub(super) fn new(n_items: usize) -> Self {
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
