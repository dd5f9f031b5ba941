//! The popularity baseline ([`Popularity`]), fitted in closed form: shrunk item means for
//! ratings, shares of the positives for implicit feedback.

use burn::tensor::Device;
use recsys_models::{Popularity, PopularityConfig, Retriever};

use super::{DataShape, Family, Fit, ModelOverrides, take_f32};
use crate::error::Result;
use crate::record::TrainSummary;
use crate::task::{Task, TaskKind};

/// This family's `[model]` table (the registry names it `popularity::Config`).
pub type Config = PopularityConfig;

impl Family for PopularityConfig {
    type Model = Popularity;
    const MODELS: &'static [&'static str] = &["popularity"];

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(PopularityConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "popularity"
    }

    fn check_task(&self, _task: &Task) -> Result<()> {
        // Ratings (shrunk means) and implicit feedback (counts), whatever the implicit loss:
        // nothing is learned by a loss.
        Ok(())
    }

    fn apply(&mut self, o: &mut ModelOverrides, task: &Task) -> Result<()> {
        take_f32(&mut o.shrinkage, &mut self.shrinkage);
        self.by_count = task.kind() == TaskKind::Implicit;
        Ok(())
    }

    fn set_seed(&mut self, _seed: u64) {
        // Nothing is drawn.
    }

    fn size(&mut self, data: &DataShape) {
        self.n_users = data.n_users;
        self.n_items = data.n_items;
        self.global_mean = data.mean as f32;
    }

    fn init(&self, device: &Device) -> Result<Popularity> {
        Ok(PopularityConfig::init(self, device)?)
    }

    fn fit(&self, _model: Popularity, fit: &Fit<'_>) -> Result<TrainSummary> {
        fit.closed_form(PopularityConfig::fit_on(self, fit.train, fit.device())?)
    }

    fn retriever(model: &Popularity) -> Option<&dyn Retriever> {
        Some(model)
    }
}
