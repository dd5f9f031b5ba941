//! Loss functions, each returning a `[1]` tensor (the mean over the elements that count).

use burn::tensor::Tensor;

/// Mean squared error `mean((pred - target)^2)`.
///
/// # Shapes
/// - `pred`, `target`: any shape, equal
/// - output: `[1]`
pub fn mse<const D: usize>(pred: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
    (pred - target).square().mean()
}

/// Mean squared error over the observed entries only: `sum(mask * (pred - target)^2) / sum(mask)`
/// (0 when nothing is observed). `mask` is 1 for observed entries and 0 elsewhere, as AutoRec
/// trains on a user's or item's row of the rating matrix.
///
/// # Shapes
/// - `pred`, `target`, `mask`: `[batch, n]`
/// - output: `[1]`
pub fn masked_mse<const D: usize>(
    pred: Tensor<D>,
    target: Tensor<D>,
    mask: Tensor<D>,
) -> Tensor<1> {
    let se = (pred - target).square() * mask.clone();
    se.sum() / mask.sum().clamp_min(1.0)
}

/// Binary cross-entropy from logits, numerically stable for any magnitude of `logits`:
/// `mean(max(x, 0) - x * t + ln(1 + exp(-|x|)))`, which equals
/// `-mean(t ln σ(x) + (1 - t) ln(1 - σ(x)))` without overflowing `exp`.
///
/// Targets may be soft labels in `[0, 1]` (normalised ratings).
///
/// # Shapes
/// - `logits`, `targets`: any shape, equal
/// - output: `[1]`
pub fn bce_with_logits<const D: usize>(logits: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    let relu = logits.clone().clamp_min(0.0);
    let log_term = logits.clone().abs().neg().exp().log1p();
    (relu - logits * targets + log_term).mean()
}

/// The BPR pairwise loss `-mean ln σ(pos - neg)`, computed stably as the softplus of
/// `neg - pos`.
///
/// # Shapes
/// - `pos`, `neg`: `[batch]`
/// - output: `[1]`
pub fn bpr(pos: Tensor<1>, neg: Tensor<1>) -> Tensor<1> {
    let d = neg - pos;
    (d.clone().clamp_min(0.0) + d.abs().neg().exp().log1p()).mean()
}

/// Binary cross-entropy from probabilities: `-mean(t ln p + (1 - t) ln(1 - p))`, with `p` clamped
/// to `[eps, 1 - eps]` (`eps = 1e-7`, as Keras) so saturated probabilities stay finite.
///
/// Prefer [`bce_with_logits`] when the logits are at hand.
///
/// # Shapes
/// - `probs`, `targets`: any shape, equal
/// - output: `[1]`
pub fn bce<const D: usize>(probs: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    const EPS: f32 = 1e-7;
    let p = probs.clamp(EPS, 1.0 - EPS);
    let pos = targets.clone() * p.clone().log();
    let neg = targets.neg().add_scalar(1.0) * p.neg().add_scalar(1.0).log();
    (pos + neg).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn dev() -> Device {
        Device::flex()
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_into_vec_as::<f32>().unwrap()[0]
    }

    fn t1(v: &[f32]) -> Tensor<1> {
        Tensor::from_floats(v, &dev())
    }

    #[test]
    fn bpr_matches_hand_values() {
        // d = pos - neg: 0 -> ln 2; 2 -> ln(1 + e^-2); -30 -> 30 (no overflow).
        let v = scalar(bpr(t1(&[1.0, 3.0, -30.0]), t1(&[1.0, 1.0, 0.0])));
        let want = (std::f32::consts::LN_2 + (1.0 + (-2.0f32).exp()).ln() + 30.0) / 3.0;
        assert!((v - want).abs() < 1e-4, "{v} vs {want}");
    }

    #[test]
    fn mse_matches_hand_value() {
        // errors 1, -2, 0 -> (1 + 4 + 0) / 3
        let v = scalar(mse(t1(&[2.0, 1.0, 3.0]), t1(&[1.0, 3.0, 3.0])));
        assert!((v - 5.0 / 3.0).abs() < 1e-6, "{v}");
    }

    #[test]
    fn masked_mse_ignores_unobserved() {
        let d = dev();
        let pred = Tensor::<2>::from_floats([[1.0, 100.0], [3.0, 2.0]], &d);
        let target = Tensor::<2>::from_floats([[2.0, 0.0], [1.0, 0.0]], &d);
        let mask = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 0.0]], &d);
        // (1 + 4) / 2
        let v = scalar(masked_mse(pred, target, mask.clone()));
        assert!((v - 2.5).abs() < 1e-6, "{v}");
        let none = scalar(masked_mse(mask.clone(), mask.clone(), mask.zeros_like()));
        assert_eq!(none, 0.0);
    }

    #[test]
    fn bce_forms_agree_and_match_hand_values() {
        let x = [-3.0f32, 0.0, 2.0, 0.5];
        let t = [0.0f32, 1.0, 1.0, 0.25];
        let expected: f32 = x
            .iter()
            .zip(&t)
            .map(|(&x, &t)| {
                let p = 1.0 / (1.0 + (-x).exp());
                -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
            })
            .sum::<f32>()
            / 4.0;
        let from_logits = scalar(bce_with_logits(t1(&x), t1(&t)));
        let probs = burn::tensor::activation::sigmoid(t1(&x));
        let from_probs = scalar(bce(probs, t1(&t)));
        assert!(
            (from_logits - expected).abs() < 1e-5,
            "{from_logits} vs {expected}"
        );
        assert!(
            (from_probs - expected).abs() < 1e-5,
            "{from_probs} vs {expected}"
        );
    }

    #[test]
    fn bce_with_logits_is_finite_for_huge_logits() {
        let v = scalar(bce_with_logits(t1(&[1000.0, -1000.0]), t1(&[1.0, 0.0])));
        assert!(v.is_finite() && v.abs() < 1e-6, "{v}");
        let w = scalar(bce_with_logits(t1(&[1000.0]), t1(&[0.0])));
        assert!((w - 1000.0).abs() < 1e-2, "{w}");
        let p = scalar(bce(t1(&[1.0, 0.0]), t1(&[0.0, 1.0])));
        assert!(p.is_finite() && p > 10.0, "{p}");
    }
}
