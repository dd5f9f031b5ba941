//! RecommenderNet ([`RecommenderNet`]): concatenated embeddings and dense layers (Keras).

use burn::tensor::{Device, Tensor};
use recsys_models::{RecommenderNet, RecommenderNetConfig};

use super::{DataShape, Family, Fit, ModelOverrides, pairs_task, take, take_f32};
use crate::error::Result;
use crate::record::TrainSummary;
use crate::task::{Task, TaskKind};

/// This family's `[model]` table (the registry names it `recommender_net::Config`).
pub type Config = RecommenderNetConfig;

impl Family for RecommenderNetConfig {
    type Model = RecommenderNet;
    const MODELS: &'static [&'static str] = &["recnet", "recommender_net"];

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(RecommenderNetConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "recommender_net"
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        pairs_task("recommender_net", task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, _task: &Task) -> Result<()> {
        take(&mut o.embedding_dim, &mut self.embedding_dim);
        take_f32(&mut o.l2, &mut self.l2);
        take(&mut o.hidden, &mut self.hidden);
        take(&mut o.dropout, &mut self.dropout);
        Ok(())
    }

    fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    fn size(&mut self, data: &DataShape) {
        self.n_users = data.n_users;
        self.n_items = data.n_items;
        (self.rating_min, self.rating_max) = data.scale;
    }

    fn init(&self, device: &Device) -> Result<RecommenderNet> {
        Ok(RecommenderNetConfig::init(self, device)?)
    }

    fn fit(&self, model: RecommenderNet, fit: &Fit<'_>) -> Result<TrainSummary> {
        fit.pairs(model)
    }

    fn vectors(model: &RecommenderNet, _n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        Some((model.user_embedding.table(), model.item_embedding.table()))
    }
}
