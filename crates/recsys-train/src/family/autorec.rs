//! AutoRec ([`AutoRec`]): user- or item-based rows of the rating matrix reconstructed through
//! dense layers. The model reads the training rows at prediction time, so a run keeps them.

use std::sync::Arc;

use burn::tensor::Device;
use recsys_data::Interactions;
use recsys_models::{AutoRec, AutoRecBase, AutoRecConfig};

use super::{DataShape, Family, Fit, ModelOverrides, rating_only, take, take_f32};
use crate::error::Result;
use crate::optim::LrSchedule;
use crate::record::TrainSummary;
use crate::run_dir::RunDir;
use crate::task::{Task, TaskKind};
use crate::trainer::TrainConfig;

/// This family's `[model]` table (the registry names it `autorec::Config`).
pub type Config = AutoRecConfig;

impl Family for AutoRecConfig {
    type Model = AutoRec;
    const MODELS: &'static [&'static str] = &["autorec"];

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(AutoRecConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "autorec"
    }

    /// Adam 0.005 on a cosine schedule over 100 epochs, 32 rows a batch (README's I-AutoRec
    /// figure on ML-100K u1); stops after 20 epochs without a better validation RMSE.
    fn train_defaults(&self, _task: &Task, train: &mut TrainConfig) {
        train.epochs = 100;
        train.batch_size = 32;
        train.patience = Some(20);
        train.optimizer.lr = 0.005;
        train.optimizer.schedule = LrSchedule::Cosine { min_lr: 0.0 };
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        rating_only("autorec", task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, _task: &Task) -> Result<()> {
        take_f32(&mut o.l2, &mut self.l2);
        take(&mut o.hidden, &mut self.hidden);
        take(&mut o.dropout, &mut self.dropout);
        take(&mut o.activation, &mut self.activation);
        take(&mut o.base, &mut self.base);
        Ok(())
    }

    fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    fn size(&mut self, data: &DataShape) {
        self.n_users = data.n_users;
        self.n_items = data.n_items;
    }

    fn init(&self, device: &Device) -> Result<AutoRec> {
        Ok(AutoRecConfig::init(self, device)?)
    }

    fn fit(&self, model: AutoRec, fit: &Fit<'_>) -> Result<TrainSummary> {
        fit.keep_train_rows()?;
        let rows = Arc::new(model.rows_of(fit.train));
        fit.on(model.with_inputs(rows.clone()), &*rows)
    }

    fn attach(&self, model: AutoRec, run: &RunDir) -> Result<AutoRec> {
        let rows = model.rows_of(&run.read_train_rows((self.n_users, self.n_items))?);
        Ok(model.with_inputs(Arc::new(rows)))
    }

    /// U-AutoRec reconstructs a user's row of ratings over the items, whatever the number of
    /// users; I-AutoRec's rows are items over the trained users, which a new user is not among.
    fn folds_in_rows(&self) -> bool {
        self.base == AutoRecBase::User
    }

    fn reading(model: &AutoRec, data: &Interactions) -> Option<AutoRec> {
        let rows = model.rows_of(data);
        Some(model.clone().with_inputs(Arc::new(rows)))
    }
}
