//! Item-based KNN with baselines ([`ItemKnn`]), fitted in closed form: ALS baselines and shrunk
//! Pearson or cosine item similarities; predictions read the user's ratings.

use burn::tensor::Device;
use recsys_data::Interactions;
use recsys_models::{ItemKnn, ItemKnnConfig};

use super::{DataShape, Family, Fit, ModelOverrides, rating_only, take, take_f32};
use crate::error::Result;
use crate::record::TrainSummary;
use crate::run_dir::RunDir;
use crate::task::{Task, TaskKind};

/// This family's `[model]` table (the registry names it `item_knn::Config`).
pub type Config = ItemKnnConfig;

impl Family for ItemKnnConfig {
    type Model = ItemKnn;
    const MODELS: &'static [&'static str] = &["item-knn"];

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(ItemKnnConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "item-knn"
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        rating_only("item-knn", task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, _task: &Task) -> Result<()> {
        take(&mut o.neighbours, &mut self.neighbours);
        take_f32(&mut o.shrinkage, &mut self.shrinkage);
        take(&mut o.similarity, &mut self.similarity);
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

    fn init(&self, device: &Device) -> Result<ItemKnn> {
        Ok(ItemKnnConfig::init(self, device)?)
    }

    fn fit(&self, _model: ItemKnn, fit: &Fit<'_>) -> Result<TrainSummary> {
        fit.keep_train_rows()?;
        fit.closed_form(ItemKnnConfig::fit_on(self, fit.train, fit.device())?)
    }

    fn attach(&self, model: ItemKnn, run: &RunDir) -> Result<ItemKnn> {
        Ok(model.with_inputs(&run.read_train_rows((self.n_users, self.n_items))?))
    }

    fn reading(model: &ItemKnn, data: &Interactions) -> Option<ItemKnn> {
        Some(model.clone().with_inputs(data))
    }
}
