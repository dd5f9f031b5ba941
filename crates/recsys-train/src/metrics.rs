//! Rating-prediction metrics on plain slices (`pred[k]` against `target[k]`), accumulated in `f64`.

use serde::{Deserialize, Serialize};

fn check(pred: &[f32], target: &[f32]) {
    assert_eq!(
        pred.len(),
        target.len(),
        "predictions and targets differ in length"
    );
}

/// Mean squared error (0 for empty input).
pub fn mse(pred: &[f32], target: &[f32]) -> f64 {
    check(pred, target);
    if pred.is_empty() {
        return 0.0;
    }
    pred.iter()
        .zip(target)
        .map(|(&p, &t)| (p as f64 - t as f64).powi(2))
        .sum::<f64>()
        / pred.len() as f64
}

/// Root mean squared error.
pub fn rmse(pred: &[f32], target: &[f32]) -> f64 {
    mse(pred, target).sqrt()
}

/// Mean absolute error.
pub fn mae(pred: &[f32], target: &[f32]) -> f64 {
    check(pred, target);
    if pred.is_empty() {
        return 0.0;
    }
    pred.iter()
        .zip(target)
        .map(|(&p, &t)| (p as f64 - t as f64).abs())
        .sum::<f64>()
        / pred.len() as f64
}

/// Mean absolute percentage error, in percent, over the entries whose target is non-zero.
pub fn mape(pred: &[f32], target: &[f32]) -> f64 {
    check(pred, target);
    let (sum, n) = pred
        .iter()
        .zip(target)
        .filter(|(_, t)| **t != 0.0)
        .fold((0.0f64, 0usize), |(s, n), (&p, &t)| {
            (s + ((p as f64 - t as f64) / t as f64).abs(), n + 1)
        });
    if n == 0 { 0.0 } else { 100.0 * sum / n as f64 }
}

/// Coefficient of determination `1 - SS_res / SS_tot` (0 when the targets are constant).
pub fn r2(pred: &[f32], target: &[f32]) -> f64 {
    check(pred, target);
    if target.is_empty() {
        return 0.0;
    }
    let mean = target.iter().map(|&t| t as f64).sum::<f64>() / target.len() as f64;
    let ss_tot: f64 = target.iter().map(|&t| (t as f64 - mean).powi(2)).sum();
    let ss_res: f64 = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| (p as f64 - t as f64).powi(2))
        .sum();
    if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    }
}

/// Clamps predictions to the rating scale `[min, max]` in place.
/// Binary cross-entropy of predicted ratings against targets, both min-max normalised to
/// `[0, 1]` on `scale` (the validation loss of a model trained with BCE, Keras version 4).
/// Predictions are clipped to `[1e-7, 1 - 1e-7]` after normalising, as Keras clips.
pub fn bce_on_scale(pred: &[f32], target: &[f32], (min, max): (f32, f32)) -> f64 {
    assert_eq!(pred.len(), target.len(), "bce_on_scale of unequal lengths");
    let eps = 1e-7f64;
    let span = (max - min) as f64;
    let sum: f64 = pred
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let p = ((p - min) as f64 / span).clamp(eps, 1.0 - eps);
            let t = (t - min) as f64 / span;
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum();
    sum / pred.len().max(1) as f64
}

pub fn clamp_to_scale(pred: &mut [f32], (min, max): (f32, f32)) {
    for p in pred {
        *p = p.clamp(min, max);
    }
}

/// All rating metrics of one evaluation. An evaluation of no ratings has no metrics: every
/// value is NaN (`null` in JSON), [`RatingMetrics::get`] gives `None`, and printers say that
/// the part was empty instead of showing a perfect score.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RatingMetrics {
    #[serde(deserialize_with = "nan_if_null")]
    pub rmse: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mae: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mse: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mape: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub r2: f64,
    /// Number of ratings evaluated.
    pub n: usize,
}

/// JSON writes NaN as `null`; read it back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl RatingMetrics {
    /// Metrics of `pred` against `target`, with predictions clamped to `scale` first if given.
    pub fn compute(pred: &[f32], target: &[f32], scale: Option<(f32, f32)>) -> Self {
        if pred.is_empty() {
            return Self::empty();
        }
        let clamped;
        let pred = match scale {
            Some(scale) => {
                clamped = {
                    let mut p = pred.to_vec();
                    clamp_to_scale(&mut p, scale);
                    p
                };
                &clamped[..]
            }
            None => pred,
        };
        RatingMetrics {
            rmse: rmse(pred, target),
            mae: mae(pred, target),
            mse: mse(pred, target),
            mape: mape(pred, target),
            r2: r2(pred, target),
            n: pred.len(),
        }
    }

    /// The metrics of an evaluation of no ratings: none (NaN), `n = 0`.
    pub fn empty() -> Self {
        Self {
            rmse: f64::NAN,
            mae: f64::NAN,
            mse: f64::NAN,
            mape: f64::NAN,
            r2: f64::NAN,
            n: 0,
        }
    }

    /// The value of a rating metric (`None` for a ranking metric, and for an evaluation of no
    /// ratings).
    pub fn get(&self, metric: Metric) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        Some(match metric {
            Metric::Rmse => self.rmse,
            Metric::Mae => self.mae,
            Metric::Mse => self.mse,
            Metric::Mape => self.mape,
            Metric::R2 => self.r2,
            Metric::Rank(..) => return None,
        })
    }
}

/// A ranking metric at a cutoff (see [`crate::ranking`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankMetric {
    Hr,
    Ndcg,
    Recall,
    Precision,
    Map,
    Mrr,
}

impl RankMetric {
    pub fn name(self) -> &'static str {
        match self {
            RankMetric::Hr => "hr",
            RankMetric::Ndcg => "ndcg",
            RankMetric::Recall => "recall",
            RankMetric::Precision => "precision",
            RankMetric::Map => "map",
            RankMetric::Mrr => "mrr",
        }
    }
}

/// The metric that selects the best epoch and drives early stopping: a rating metric on the
/// validation ratings, or a ranking metric such as `hr@10` on the validation ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Metric {
    #[default]
    Rmse,
    Mae,
    Mse,
    Mape,
    R2,
    /// A ranking metric at K.
    Rank(RankMetric, usize),
}

impl Metric {
    pub fn name(self) -> String {
        self.to_string()
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::R2 | Metric::Rank(..))
    }

    pub fn is_ranking(self) -> bool {
        matches!(self, Metric::Rank(..))
    }

    /// Whether `candidate` beats `best`.
    pub fn improves(self, candidate: f64, best: f64) -> bool {
        if self.higher_is_better() {
            candidate > best
        } else {
            candidate < best
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Metric::Rmse => f.write_str("rmse"),
            Metric::Mae => f.write_str("mae"),
            Metric::Mse => f.write_str("mse"),
            Metric::Mape => f.write_str("mape"),
            Metric::R2 => f.write_str("r2"),
            Metric::Rank(m, k) => write!(f, "{}@{k}", m.name()),
        }
    }
}

impl From<Metric> for String {
    fn from(m: Metric) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Metric {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let unknown = || {
            format!(
                "unknown metric {s:?}: expected rmse, mae, mse, mape, r2, or hr, ndcg, recall, \
                 precision, map or mrr at a cutoff such as hr@10"
            )
        };
        if let Some((name, k)) = lower.split_once('@') {
            let m = match name {
                "hr" => RankMetric::Hr,
                "ndcg" => RankMetric::Ndcg,
                "recall" => RankMetric::Recall,
                "precision" => RankMetric::Precision,
                "map" => RankMetric::Map,
                "mrr" => RankMetric::Mrr,
                _ => return Err(unknown()),
            };
            let k: usize = k.parse().map_err(|_| unknown())?;
            if k == 0 {
                return Err(format!("{s:?}: the cutoff K must be at least 1"));
            }
            return Ok(Metric::Rank(m, k));
        }
        match lower.as_str() {
            "rmse" => Ok(Metric::Rmse),
            "mae" => Ok(Metric::Mae),
            "mse" => Ok(Metric::Mse),
            "mape" => Ok(Metric::Mape),
            "r2" => Ok(Metric::R2),
            _ => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod bce_tests {
    use super::bce_on_scale;

    #[test]
    fn bce_matches_hand_values() {
        // Scale 1..5: prediction 3 is p = 0.5, target 5 is t = 1: -ln 0.5.
        let v = bce_on_scale(&[3.0], &[5.0], (1.0, 5.0));
        assert!((v - std::f64::consts::LN_2).abs() < 1e-12);
        // p = 0.75, t = 0.25: -(0.25 ln 0.75 + 0.75 ln 0.25).
        let want = -(0.25f64 * 0.75f64.ln() + 0.75 * 0.25f64.ln());
        assert!((bce_on_scale(&[4.0], &[2.0], (1.0, 5.0)) - want).abs() < 1e-9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: [f32; 4] = [3.0, 4.5, 2.0, 5.0];
    const T: [f32; 4] = [4.0, 4.0, 2.0, 3.0];
    // errors: -1, 0.5, 0, 2

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn hand_computed_values() {
        close(mse(&P, &T), (1.0 + 0.25 + 0.0 + 4.0) / 4.0); // 1.3125
        close(rmse(&P, &T), 1.3125f64.sqrt());
        close(mae(&P, &T), (1.0 + 0.5 + 0.0 + 2.0) / 4.0); // 0.875
        close(mape(&P, &T), 100.0 * (0.25 + 0.125 + 0.0 + 2.0 / 3.0) / 4.0);
        // mean(T) = 3.25; SS_tot = 0.5625 + 0.5625 + 1.5625 + 0.0625 = 2.75; SS_res = 5.25
        close(r2(&P, &T), 1.0 - 5.25 / 2.75);
    }

    #[test]
    fn edge_cases() {
        close(rmse(&[], &[]), 0.0);
        close(mape(&[1.0], &[0.0]), 0.0);
        close(r2(&[1.0, 2.0], &[3.0, 3.0]), 0.0);
        close(r2(&T, &T), 1.0);
    }

    #[test]
    fn clamping_to_the_scale() {
        let m = RatingMetrics::compute(&[0.0, 6.0, 3.0], &[1.0, 5.0, 3.0], Some((1.0, 5.0)));
        close(m.rmse, 0.0);
        assert_eq!(m.n, 3);
        let raw = RatingMetrics::compute(&[0.0, 6.0, 3.0], &[1.0, 5.0, 3.0], None);
        close(raw.mae, 2.0 / 3.0);
        close(raw.get(Metric::Mae).unwrap(), raw.mae);
        assert!(raw.get(Metric::Rank(RankMetric::Hr, 10)).is_none());
    }

    #[test]
    fn metric_direction() {
        assert!(Metric::Rmse.improves(0.9, 1.0));
        assert!(!Metric::Rmse.improves(1.0, 1.0));
        assert!(Metric::R2.improves(0.5, 0.4));
        assert_eq!("R2".parse::<Metric>().unwrap(), Metric::R2);
        let hr: Metric = "HR@10".parse().unwrap();
        assert_eq!(hr, Metric::Rank(RankMetric::Hr, 10));
        assert_eq!(hr.to_string(), "hr@10");
        assert!(hr.improves(0.7, 0.6));
        assert!("ndcg@0".parse::<Metric>().is_err());
        assert!("auc@x".parse::<Metric>().is_err());
    }

    #[test]
    fn an_empty_evaluation_has_no_metrics_not_perfect_ones() {
        let m = RatingMetrics::compute(&[], &[], Some((1.0, 5.0)));
        assert_eq!(m.n, 0);
        assert!(m.rmse.is_nan() && m.r2.is_nan());
        assert_eq!(m.get(Metric::Rmse), None);
        // Written as null in metrics.jsonl, and read back.
        let line = serde_json::to_string(&m).unwrap();
        assert!(line.contains("\"rmse\":null"), "{line}");
        let back: RatingMetrics = serde_json::from_str(&line).unwrap();
        assert!(back.rmse.is_nan() && back.n == 0);
    }
}
