//! Matrix factorisation ([`Mf`]): a dot product, optionally with biases and a sigmoid output.

use burn::tensor::{Device, Tensor};
use recsys_models::{Mf, MfConfig, MfOutput, Retriever};

use super::{
    DataShape, Family, Fit, ModelOverrides, RatingLoss, pairs_task, take, take_f32, take_switch,
};
use crate::error::Result;
use crate::record::TrainSummary;
use crate::task::{Task, TaskKind};

/// This family's `[model]` table (the registry names it `mf::Config`).
pub type Config = MfConfig;

impl Family for MfConfig {
    type Model = Mf;
    const MODELS: &'static [&'static str] = &["mf"];

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(MfConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "mf"
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        pairs_task("mf", task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, task: &Task) -> Result<()> {
        take(&mut o.embedding_dim, &mut self.embedding_dim);
        take_f32(&mut o.l2, &mut self.l2);
        take_switch(&mut o.bias, &mut self.bias);
        let rating_range = std::mem::take(&mut o.rating_range);
        let output = match (task.kind(), o.rating_loss.take(), rating_range) {
            (TaskKind::Implicit, _, _) | (_, Some(RatingLoss::Bce), _) => Some(MfOutput::Logit),
            (_, _, true) => Some(MfOutput::ScaledSigmoid),
            _ => None,
        };
        if let Some(output) = output {
            self.output = output;
        }
        Ok(())
    }

    fn check_normalize(&self, kind: recsys_data::NormalizeKind) -> Result<()> {
        if self.output == MfOutput::Logit {
            return Err(crate::error::TrainError::Config(format!(
                "--normalize {}: mf with --loss bce already scales ratings into [0, 1] for its \
                 sigmoid; use --normalize none",
                kind.name()
            )));
        }
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
        (self.rating_min, self.rating_max) = data.scale;
        if data.implicit || self.bias {
            self.global_mean = data.mean as f32;
        }
    }

    fn init(&self, device: &Device) -> Result<Mf> {
        Ok(MfConfig::init(self, device)?)
    }

    fn fit(&self, model: Mf, fit: &Fit<'_>) -> Result<TrainSummary> {
        match fit.implicit {
            Some(_) => fit.pairs(model),
            // Per-row penalty weights come from the training ratings' counts.
            None => fit.pairs(model.with_frequency_weights(fit.train)),
        }
    }

    fn vectors(model: &Mf, _n_users: usize) -> Option<(Tensor<2>, Tensor<2>)> {
        // The factors `p_u`, `q_i` without the retrieval vectors' constant and bias columns,
        // which would make every item look alike under cosine.
        Some((model.user_embedding.table(), model.item_embedding.table()))
    }

    fn retriever(model: &Mf) -> Option<&dyn Retriever> {
        Some(model)
    }

    fn sanity(_name: &str, shape: &DataShape, seed: u64) -> Option<Self> {
        Some(
            MfConfig::new(shape.n_users, shape.n_items)
                .with_embedding_dim(32)
                .with_bias(true)
                .with_global_mean(shape.mean as f32)
                .with_output(MfOutput::Linear)
                .with_seed(seed),
        )
    }
}
