//! The baseline predictor ([`Baseline`]): global mean plus user and item biases (Surprise's
//! `BaselineOnly`); for ranking, popularity learned from the data.

use burn::tensor::Device;
use recsys_models::baseline::{Baseline, BaselineConfig, BaselineFit};
use recsys_models::{MfOutput, Retriever};

use super::{
    DataShape, Family, Fit, FoldIn, Link, ModelOverrides, fit_user, pairs_task, take, take_f32,
};
use crate::error::{Result, TrainError};
use crate::record::TrainSummary;
use crate::task::{Task, TaskKind};

/// This family's `[model]` table (the registry names it `baseline::Config`).
pub type Config = BaselineConfig;

impl Family for BaselineConfig {
    type Model = Baseline;
    const MODELS: &'static [&'static str] = &["baseline"];

    fn named(_name: &str, _task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        Ok(BaselineConfig::new(1, 1))
    }

    fn name(&self) -> &'static str {
        "baseline"
    }

    fn check_task(&self, task: &Task) -> Result<()> {
        if self.fit == BaselineFit::Als && task.kind() != TaskKind::Rating {
            return Err(TrainError::Config(
                "baseline --algo als fits ratings: use --algo sgd for implicit feedback".into(),
            ));
        }
        pairs_task("baseline", task)
    }

    fn apply(&mut self, o: &mut ModelOverrides, task: &Task) -> Result<()> {
        take_f32(&mut o.l2, &mut self.l2);
        take(&mut o.baseline_fit, &mut self.fit);
        if task.kind() == TaskKind::Implicit {
            self.output = MfOutput::Logit;
        }
        Ok(())
    }

    fn set_seed(&mut self, _seed: u64) {
        // Biases start at zero: nothing is drawn.
    }

    fn size(&mut self, data: &DataShape) {
        self.n_users = data.n_users;
        self.n_items = data.n_items;
        (self.rating_min, self.rating_max) = data.scale;
        self.global_mean = data.mean as f32;
    }

    fn init(&self, device: &Device) -> Result<Baseline> {
        Ok(BaselineConfig::init(self, device)?)
    }

    fn fit(&self, model: Baseline, fit: &Fit<'_>) -> Result<TrainSummary> {
        match self.fit {
            BaselineFit::Sgd => fit.pairs(model),
            BaselineFit::Als => fit.closed_form(self.fit_als(fit.train, fit.device())?),
        }
    }

    fn retriever(model: &Baseline) -> Option<&dyn Retriever> {
        Some(model)
    }

    fn link(&self) -> Link {
        Link::of_output(self.output, self.rating_min, self.rating_max)
    }

    /// The user bias `b_u` against the frozen item biases, with the training penalty of a user
    /// of `n` ratings (`n · λ`).
    fn fold_in(&self, _model: &Baseline, user: &FoldIn<'_>) -> Option<Vec<f32>> {
        let items = user.item_vectors; // [b_i, 1]
        let n_items = items.len() / 2;
        let offset = self
            .output
            .offset(self.global_mean, self.rating_min, self.rating_max);
        let (mut f, mut r) = (Vec::new(), Vec::new());
        for &(i, rating) in user.history {
            if (i as usize) < n_items {
                f.push(offset + items[2 * i as usize]);
                r.push(rating);
            }
        }
        let n = r.len().max(1) as f64;
        let a = vec![1.0; r.len()];
        let x = fit_user(&a, &f, &r, &[(n * self.l2 as f64).max(1e-3 * n)], self.link());
        Some(vec![1.0, x[0] as f32 + offset])
    }
}
