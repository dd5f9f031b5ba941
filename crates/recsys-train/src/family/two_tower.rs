//! The two-tower retrieval model ([`TwoTower`]): user and item towers trained with an in-batch
//! softmax on implicit feedback (TensorFlow Recommenders' retrieval task).

use burn::tensor::{Device, Tensor};
use recsys_models::{Retriever, TwoTower, TwoTowerConfig};

use super::{DataShape, Family, Fit, ModelOverrides, take, take_f32, take_switch};
use crate::error::{Result, TrainError};
use crate::record::TrainSummary;
use crate::task::{ImplicitLossKind, ImplicitTask, Task, TaskKind};

/// This family's `[model]` table (the registry names it `two_tower::Config`).
pub type Config = TwoTowerConfig;

impl Family for TwoTowerConfig {
    type Model = TwoTower;
    const MODELS: &'static [&'static str] = &["two-tower"];
    const OLD_NAMES: &'static [&'static str] = &["two_tower", "twotower"];
    const DEFAULT_TASK: TaskKind = TaskKind::Implicit;

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(TwoTowerConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "two-tower"
    }

    fn default_implicit() -> ImplicitTask {
        ImplicitTask::retrieval()
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Config(m.into()));
        match task {
            Task::Rating => bad(
                "two-tower learns from implicit feedback: use the implicit task \
                 (loss softmax or bpr)",
            ),
            Task::Implicit(t) if t.loss == ImplicitLossKind::Bce => {
                bad("two-tower trains with the softmax or bpr loss, not bce")
            }
            Task::Implicit(_) => Ok(()),
        }
    }

    fn apply(&mut self, o: &mut ModelOverrides, _task: &Task) -> Result<()> {
        take(&mut o.embedding_dim, &mut self.embedding_dim);
        take(&mut o.hidden, &mut self.hidden);
        take_f32(&mut o.l2, &mut self.l2);
        take_f32(&mut o.temperature, &mut self.temperature);
        take_switch(&mut o.oov, &mut self.oov);
        take_switch(&mut o.logq, &mut self.logq);
        Ok(())
    }

    fn migrate(model: &mut toml::Table) {
        super::rename_key(model, "dim", "embedding_dim");
    }

    fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }

    fn size(&mut self, data: &DataShape) {
        self.n_users = data.n_users;
        self.n_items = data.n_items;
    }

    fn init(&self, device: &Device) -> Result<TwoTower> {
        Ok(TwoTowerConfig::init(self, device)?)
    }

    fn fit(&self, model: TwoTower, fit: &Fit<'_>) -> Result<TrainSummary> {
        let source = fit.implicit()?;
        fit.on(model.with_item_counts(&fit.train.items), source)
    }

    fn vectors(model: &TwoTower, n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        let device = model.item_embedding.table().device();
        let users = Tensor::arange(0..n_users as i64, &device);
        Some((model.user_vectors(users), model.item_vectors()))
    }

    fn retriever(model: &TwoTower) -> Option<&dyn Retriever> {
        Some(model)
    }

    fn oov_user(&self) -> Option<u32> {
        self.oov.then_some(self.n_users as u32)
    }
}
