//! Tree-structured Parzen estimators (Bergstra et al. 2011, "Algorithms for Hyper-Parameter
//! Optimization"), independent per parameter as in Optuna's default `TPESampler`.
//!
//! The finished trials are split into the best `gamma` share ("good") and the rest ("bad"). Each
//! group becomes a density over a parameter's internal interval (see
//! [`Domain::internal_bounds`]): for numbers a mixture of truncated Gaussians, one per observed
//! value plus a wide prior, with widths from the gaps to the neighbouring values; for choices
//! the counts plus one. [`CANDIDATES`] values are drawn from the good density and the one with
//! the largest ratio good / bad is kept.

use rand::Rng;
use rand::rngs::StdRng;

use super::{Domain, Params, Space};

/// Share of the finished trials that counts as good.
pub const GAMMA: f64 = 0.25;
/// Values drawn from the good density per parameter and trial.
pub const CANDIDATES: usize = 24;

/// The values of the next trial from `history` (finished trials, lower values better).
pub fn sample(space: &Space, history: &[(Params, f64)], rng: &mut StdRng) -> Params {
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by(|&a, &b| history[a].1.total_cmp(&history[b].1).then(a.cmp(&b)));
    let n_good = ((GAMMA * history.len() as f64).ceil() as usize).clamp(1, history.len());
    let (good, bad) = order.split_at(n_good);
    space
        .params
        .iter()
        .map(|p| {
            let observed = |rows: &[usize]| -> Vec<f64> {
                rows.iter()
                    .filter_map(|&i| history[i].0.get(&p.key))
                    .filter_map(|v| p.domain.internal_of(v))
                    .collect()
            };
            let x = sample_param(&p.domain, &observed(good), &observed(bad), rng);
            (p.key.clone(), p.domain.value_at(x))
        })
        .collect()
}

/// One parameter's internal coordinate, from its good and bad observations.
pub fn sample_param(domain: &Domain, good: &[f64], bad: &[f64], rng: &mut StdRng) -> f64 {
    match domain {
        Domain::Choice(items) => {
            let l = Categorical::new(items.len(), good);
            let g = Categorical::new(items.len(), bad);
            best_of(rng, |rng| l.sample(rng), |x| l.ln_pdf(x) - g.ln_pdf(x))
        }
        _ => {
            let (low, high) = domain.internal_bounds().expect("a numeric domain");
            let l = Parzen::new(good, low, high);
            let g = Parzen::new(bad, low, high);
            best_of(rng, |rng| l.sample(rng), |x| l.ln_pdf(x) - g.ln_pdf(x))
        }
    }
}

/// Of [`CANDIDATES`] draws, the one with the highest score.
fn best_of(
    rng: &mut StdRng,
    mut draw: impl FnMut(&mut StdRng) -> f64,
    score: impl Fn(f64) -> f64,
) -> f64 {
    let mut best = (f64::NEG_INFINITY, f64::NAN);
    for _ in 0..CANDIDATES {
        let x = draw(rng);
        let s = score(x);
        if best.1.is_nan() || s > best.0 {
            best = (s, x);
        }
    }
    best.1
}

/// Counts plus one per choice, as probabilities.
struct Categorical {
    p: Vec<f64>,
}

impl Categorical {
    fn new(n: usize, observed: &[f64]) -> Self {
        let mut counts = vec![1.0; n];
        for &x in observed {
            counts[(x as usize).min(n - 1)] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        Self {
            p: counts.into_iter().map(|c| c / total).collect(),
        }
    }

    fn sample(&self, rng: &mut StdRng) -> f64 {
        let mut u = rng.random::<f64>();
        for (i, p) in self.p.iter().enumerate() {
            if u < *p {
                return i as f64;
            }
            u -= p;
        }
        (self.p.len() - 1) as f64
    }

    fn ln_pdf(&self, x: f64) -> f64 {
        self.p[x as usize].ln()
    }
}

/// An equal-weight mixture of Gaussians truncated to `[low, high]`: one per observation and a
/// prior centred on the interval with its whole width.
struct Parzen {
    low: f64,
    high: f64,
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    /// The mass of each Gaussian inside `[low, high]`.
    mass: Vec<f64>,
}

impl Parzen {
    fn new(observed: &[f64], low: f64, high: f64) -> Self {
        let width = high - low;
        let prior = 0.5 * (low + high);
        let mut mus: Vec<f64> = observed.iter().map(|x| x.clamp(low, high)).collect();
        mus.push(prior);
        let mut order: Vec<usize> = (0..mus.len()).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        // Each width is the larger gap to a neighbour (the interval's ends bound the outermost),
        // at least the width over min(100, n + 1) so close values still spread a little.
        let min_sigma = width / (mus.len() as f64).min(100.0);
        let mut sigmas = vec![width; mus.len()];
        for (rank, &i) in order.iter().enumerate() {
            let left = if rank == 0 { low } else { mus[order[rank - 1]] };
            let right = if rank + 1 == order.len() {
                high
            } else {
                mus[order[rank + 1]]
            };
            sigmas[i] = (mus[i] - left).max(right - mus[i]).clamp(min_sigma, width);
        }
        let last = mus.len() - 1;
        sigmas[last] = width;
        let mass = mus
            .iter()
            .zip(&sigmas)
            .map(|(&mu, &s)| (normal_cdf((high - mu) / s) - normal_cdf((low - mu) / s)).max(1e-12))
            .collect();
        Self {
            low,
            high,
            mus,
            sigmas,
            mass,
        }
    }

    fn sample(&self, rng: &mut StdRng) -> f64 {
        let i = rng.random_range(0..self.mus.len());
        for _ in 0..100 {
            let x = self.mus[i] + self.sigmas[i] * standard_normal(rng);
            if (self.low..=self.high).contains(&x) {
                return x;
            }
        }
        self.mus[i]
    }

    fn ln_pdf(&self, x: f64) -> f64 {
        let n = self.mus.len() as f64;
        let sum: f64 = (0..self.mus.len())
            .map(|i| {
                let z = (x - self.mus[i]) / self.sigmas[i];
                (-0.5 * z * z).exp()
                    / (self.sigmas[i] * (2.0 * std::f64::consts::PI).sqrt())
                    / self.mass[i]
            })
            .sum();
        (sum / n).max(1e-300).ln()
    }
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The standard normal CDF, through `erf` (Abramowitz and Stegun 7.1.26, error below 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let sign = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}
