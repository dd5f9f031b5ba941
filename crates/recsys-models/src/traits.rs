//! The interfaces every model family implements.
//!
//! - [`Scorer`]: scores `(user, item)` pairs and whole catalogues; what evaluation and `predict` use.
//! - [`Retriever`]: a [`Scorer`] whose scores are (a monotone function of) dot products of user
//!   and item vectors, so candidates can come from a vector index.
//! - [`RatingModel`]: what the trainer needs: a training loss on the model's batch type
//!   ([`RatingBatch`] of rated pairs, or [`RowBatch`] of dense rating-matrix rows for AutoRec), and
//!   an optional penalty term (regularisation) kept apart so it can be reported separately.

use burn::module::Module;
use burn::tensor::{Int, Tensor};

/// Every `(user, item)` pair of `users × 0..n_items`, for models that score pairs one by one
/// (`score_all` as one batch of `score`).
///
/// # Shapes
/// - `users`: `[batch]`
/// - output: two `[batch * n_items]` index tensors, user-major
pub fn pairs_with_every_item(
    users: Tensor<1, Int>,
    n_items: usize,
) -> (Tensor<1, Int>, Tensor<1, Int>) {
    let [batch] = users.dims();
    let device = users.device();
    let u = users
        .reshape([batch, 1])
        .expand([batch, n_items])
        .reshape([batch * n_items]);
    let i = Tensor::<1, Int>::arange(0..n_items as i64, &device)
        .reshape([1, n_items])
        .expand([batch, n_items])
        .reshape([batch * n_items]);
    (u, i)
}

/// Scores user-item pairs.
///
/// For rating models the score is the predicted rating (on the rating scale the model was
/// configured with); for implicit-feedback models it is a ranking score. Either way, larger means
/// "more relevant", so `score_all` can be ranked directly.
pub trait Scorer {
    /// Number of items the model scores (the width of [`Scorer::score_all`]).
    fn n_items(&self) -> usize;

    /// Scores of the pairs `(users[k], items[k])`.
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]` (dense indices)
    /// - output: `[batch]`
    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1>;

    /// Scores of every item for each user; row `k` equals `score(users[k], 0..n_items)`.
    ///
    /// # Shapes
    /// - `users`: `[batch]`
    /// - output: `[batch, n_items]`
    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2>;
}

/// A [`Scorer`] that factorises: `score(u, i)` is a monotone increasing function of
/// `user_vectors(u) · item_vectors()[i]`.
pub trait Retriever: Scorer {
    /// # Shapes
    /// - `users`: `[batch]`
    /// - output: `[batch, d]`
    fn user_vectors(&self, users: Tensor<1, Int>) -> Tensor<2>;

    /// Vectors of all items.
    ///
    /// # Shapes
    /// - output: `[n_items, d]`
    fn item_vectors(&self) -> Tensor<2>;
}

/// A mini-batch of rated pairs on a device.
///
/// For implicit feedback, `ratings` holds the labels (1 for observed, 0 for sampled negatives).
/// With `negatives`, the batch is a set of BPR triples `(users[k], items[k], negatives[k])`: the
/// user prefers the (positive) item to the negative, and models train with the pairwise loss
/// ([`pairwise_loss`]).
#[derive(Debug, Clone)]
pub struct RatingBatch {
    /// `[batch]` dense user indices.
    pub users: Tensor<1, Int>,
    /// `[batch]` dense item indices.
    pub items: Tensor<1, Int>,
    /// `[batch]` targets.
    pub ratings: Tensor<1>,
    /// `[batch]` sampled negative items of BPR triples.
    pub negatives: Option<Tensor<1, Int>>,
}

/// The BPR loss (Rendle et al., UAI 2009) of a batch with negatives:
/// `-mean ln σ(z(u, i) - z(u, j))`, with the penalties of both lookups summed; `None` for a batch
/// of plain pairs. `logits` returns the logits of pairs and their penalty.
pub fn pairwise_loss(
    batch: &RatingBatch,
    logits: impl Fn(Tensor<1, Int>, Tensor<1, Int>) -> (Tensor<1>, Option<Tensor<1>>),
) -> Option<ModelLoss> {
    let negatives = batch.negatives.clone()?;
    let (pos, p1) = logits(batch.users.clone(), batch.items.clone());
    let (neg, p2) = logits(batch.users.clone(), negatives);
    let penalty = match (p1, p2) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    Some(ModelLoss {
        loss: crate::losses::bpr(pos, neg),
        penalty,
    })
}

impl RatingBatch {
    /// A batch of plain (user, item, target) pairs.
    pub fn pairs(users: Tensor<1, Int>, items: Tensor<1, Int>, ratings: Tensor<1>) -> Self {
        Self {
            users,
            items,
            ratings,
            negatives: None,
        }
    }

    pub fn len(&self) -> usize {
        self.users.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A mini-batch of rows of the rating matrix (users' rows over items, or items' rows over users),
/// dense on a device, for models that reconstruct whole rows (AutoRec).
#[derive(Debug, Clone)]
pub struct RowBatch {
    /// `[batch, n]` ratings, 0 where unobserved.
    pub rows: Tensor<2>,
    /// `[batch, n]` 1 where observed, 0 elsewhere.
    pub mask: Tensor<2>,
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.rows.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A training loss split into the data term and an optional penalty (e.g. L2 on embeddings).
#[derive(Debug, Clone)]
pub struct ModelLoss {
    /// `[1]` the data term (MSE, BCE, ...), averaged over the batch.
    pub loss: Tensor<1>,
    /// `[1]` the regularisation term, already weighted; `None` when the model has none.
    pub penalty: Option<Tensor<1>>,
}

impl ModelLoss {
    /// `loss + penalty`: what is differentiated.
    pub fn total(&self) -> Tensor<1> {
        match &self.penalty {
            Some(p) => self.loss.clone() + p.clone(),
            None => self.loss.clone(),
        }
    }
}

/// A model the trainer can fit.
///
/// Models that learn from rated `(user, item)` pairs (MF, RecommenderNet, Regressor) take a
/// [`RatingBatch`]; models that reconstruct whole rows of the rating matrix (AutoRec) take a
/// [`RowBatch`]. Evaluation always goes through [`RatingModel::predict`] on pairs.
pub trait RatingModel: Module + Scorer {
    /// What one training step consumes.
    type Batch;

    /// The training loss on a batch (the model's own choice of MSE / BCE / ...).
    fn loss(&self, batch: &Self::Batch) -> ModelLoss;

    /// Predicted ratings for evaluation, on the rating scale. Defaults to [`Scorer::score`].
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch]`
    fn predict(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.score(users, items)
    }
}
