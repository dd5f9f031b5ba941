//! Rating predictions and rating metrics of a trained model.

use burn::tensor::Device;
use recsys_data::{Interactions, Normalizer};
use recsys_models::RatingModel;

use crate::batch::index_tensor;
use crate::metrics::RatingMetrics;

/// Predicted ratings of `(users[k], items[k])`, in batches of `batch_size`, on `device` (a plain
/// device for a model from [`Module::valid`](burn::module::Module::valid) or a loaded one).
pub fn predict<M: RatingModel>(
    model: &M,
    users: &[u32],
    items: &[u32],
    batch_size: usize,
    device: &Device,
) -> Vec<f32> {
    assert_eq!(users.len(), items.len(), "users and items differ in length");
    let batch_size = batch_size.max(1);
    let mut out = Vec::with_capacity(users.len());
    for start in (0..users.len()).step_by(batch_size) {
        let end = (start + batch_size).min(users.len());
        let pred = model.predict(
            index_tensor(&users[start..end], device),
            index_tensor(&items[start..end], device),
        );
        out.extend(
            pred.into_data()
                .try_into_vec_as::<f32>()
                .expect("float predictions"),
        );
    }
    out
}

/// Rating metrics of `model` on `data` (ratings on the rating scale): the model's predictions
/// mapped back through `normalizer` (what the model learned on), then clamped to `scale` if
/// given.
pub fn evaluate<M: RatingModel>(
    model: &M,
    data: &Interactions,
    batch_size: usize,
    scale: Option<(f32, f32)>,
    normalizer: &Normalizer,
    device: &Device,
) -> RatingMetrics {
    let mut pred = predict(model, &data.users, &data.items, batch_size, device);
    denormalize(normalizer, &mut pred);
    RatingMetrics::compute(&pred, &data.ratings, scale)
}

/// Maps a model's outputs back to the rating scale.
pub fn denormalize(normalizer: &Normalizer, pred: &mut [f32]) {
    if !normalizer.is_none() {
        pred.iter_mut().for_each(|p| *p = normalizer.inverse(*p));
    }
}
