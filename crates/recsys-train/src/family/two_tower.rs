//! The two-tower retrieval model ([`TwoTower`]): user and item towers trained with an in-batch
//! softmax on implicit feedback (TensorFlow Recommenders' retrieval task).

use burn::tensor::{Device, Tensor};
use recsys_models::{Retriever, TwoTower, TwoTowerConfig};

use super::{DataShape, Family, Fit, ModelOverrides, take, take_f32, take_switch};
use crate::error::{Result, TrainError};
use crate::metrics::{Metric, RankMetric};
use crate::optim::Algorithm;
use crate::record::TrainSummary;
use crate::task::{ImplicitLossKind, ImplicitTask, Protocol, Task, TaskKind};
use crate::trainer::TrainConfig;

/// This family's `[model]` table (the registry names it `two_tower::Config`).
pub type Config = TwoTowerConfig;

impl Family for TwoTowerConfig {
    type Model = TwoTower;
    const MODELS: &'static [&'static str] = &["two-tower"];
    const OLD_NAMES: &'static [&'static str] = &["two_tower", "twotower"];
    const DEFAULT_TASK: TaskKind = TaskKind::Implicit;

    /// Dimension 128, temperature 0.85 and the logQ popularity correction: README's ML-100K
    /// full-ranking figure (the best validation NDCG@10 of 14 variants).
    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(TwoTowerConfig::new(1, 1)
            .with_embedding_dim(128)
            .with_temperature(0.85)
            .with_logq(true))
    }

    /// Adagrad 0.05 (Keras's accumulator settings), batches of 1,024, up to 30 epochs chosen by
    /// validation NDCG@10, stopping after 5 without a better one.
    fn train_defaults(&self, _task: &Task, train: &mut TrainConfig) {
        train.epochs = 30;
        train.batch_size = 1024;
        train.patience = Some(5);
        train.metric = Metric::Rank(RankMetric::Ndcg, 10);
        train.optimizer.lr = 0.05;
        train.optimizer.algorithm = Algorithm::Adagrad {
            lr_decay: 0.0,
            epsilon: 1e-7,
            initial_accumulator: 0.1,
        };
    }

    fn name(&self) -> &'static str {
        "two-tower"
    }

    /// The in-batch softmax, validated by ranking all items with each user's known items left
    /// out (what a recommendation shows).
    fn default_implicit() -> ImplicitTask {
        ImplicitTask {
            protocol: Protocol::Full,
            ..ImplicitTask::retrieval()
        }
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
        take(&mut o.logq, &mut self.logq);
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
