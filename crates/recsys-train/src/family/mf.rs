//! Matrix factorisation ([`Mf`]): a dot product, optionally with biases and a sigmoid output.

use burn::tensor::{Device, Tensor};
use recsys_models::{EmbeddingInit, Mf, MfConfig, MfOutput, Retriever};

use super::{
    DataShape, Family, Fit, FoldIn, Link, ModelOverrides, RatingLoss, fit_user, pairs_task, take,
    take_f32,
};
use crate::error::Result;
use crate::optim::LrSchedule;
use crate::record::TrainSummary;
use crate::task::{Task, TaskKind};
use crate::trainer::TrainConfig;

/// This family's `[model]` table (the registry names it `mf::Config`).
pub type Config = MfConfig;

impl Family for MfConfig {
    type Model = Mf;
    const MODELS: &'static [&'static str] = &["mf"];

    const SCALES_BATCH: bool = true;

    /// Biased MF with small initial vectors and no L2 on the biases. Ratings: 64 factors, L2
    /// 0.15 weighted by `(n̄ / n)^0.5` per row (README's ML-100K u1..u5 figures). Implicit
    /// feedback: 128 factors, L2 0.0001 (README's leave-last-out MF row).
    fn named(_name: &str, task: TaskKind, _o: &mut ModelOverrides) -> Result<Self> {
        let config = MfConfig::new(1, 1)
            .with_bias(true)
            .with_init(EmbeddingInit::Normal { std: 0.01 })
            .with_l2_bias(Some(0.0));
        Ok(match task {
            TaskKind::Rating => config
                .with_embedding_dim(64)
                .with_l2(0.15)
                .with_l2_frequency_exponent(0.5),
            TaskKind::Implicit => config.with_embedding_dim(128).with_l2(0.0001),
        })
    }

    /// Ratings: Adam 0.003 on a cosine schedule over 40 epochs, batches of 512, refit. Implicit
    /// feedback: Adam 0.001, 20 epochs, batches of 256, refit. Both stop early after 8 (ratings)
    /// or 5 epochs without a better validation figure.
    fn train_defaults(&self, task: &Task, train: &mut TrainConfig) {
        train.refit = true;
        match task {
            Task::Rating => {
                train.epochs = 40;
                train.batch_size = 512;
                train.patience = Some(8);
                train.optimizer.lr = 0.003;
                train.optimizer.schedule = LrSchedule::Cosine { min_lr: 0.0 };
            }
            Task::Implicit(_) => {
                train.epochs = 20;
                train.batch_size = 256;
                train.patience = Some(5);
                train.optimizer.lr = 0.001;
            }
        }
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
        take(&mut o.bias, &mut self.bias);
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

    fn link(&self) -> Link {
        Link::of_output(self.output, self.rating_min, self.rating_max)
    }

    /// Ridge least squares of `[p_u, b_u]` against the frozen `q_i`, `b_i` and offset, with the
    /// training penalty a user of `n` ratings had: `n · λ · (n̄ / n)^α` on `p_u`, the bias
    /// weight on `b_u`.
    fn fold_in(&self, model: &Mf, user: &FoldIn<'_>) -> Option<Vec<f32>> {
        let d = self.embedding_dim;
        let width = d + 2; // [q_i, 1, b_i]
        let items = user.item_vectors;
        let n_items = items.len() / width;
        let offset = self
            .output
            .offset(self.global_mean, self.rating_min, self.rating_max);
        let history: Vec<(u32, f32)> = user
            .history
            .iter()
            .copied()
            .filter(|&(i, _)| (i as usize) < n_items)
            .collect();
        let m = if self.bias { d + 1 } else { d };
        let mut a = Vec::with_capacity(history.len() * m);
        let mut f = Vec::with_capacity(history.len());
        let mut r = Vec::with_capacity(history.len());
        for &(i, rating) in &history {
            let v = &items[i as usize * width..(i as usize + 1) * width];
            a.extend_from_slice(&v[..d]);
            if self.bias {
                a.push(1.0);
            }
            f.push(offset + v[d + 1]);
            r.push(rating);
        }
        let n = history.len().max(1) as f64;
        let weight = (user.mean_user_ratings / n).powf(self.l2_frequency_exponent as f64);
        // A floor keeps an unregularised model's fit of a short history determined.
        let lambda = (n * self.l2 as f64 * weight).max(1e-3 * n);
        let lambda_b = n * self.l2_bias.unwrap_or(self.l2) as f64 * weight;
        let mut penalty = vec![lambda; d];
        if self.bias {
            penalty.push(lambda_b.max(1e-3 * n));
        }
        let x = fit_user(&a, &f, &r, &penalty, self.link());
        let bias = if self.bias { x[d] as f32 } else { 0.0 };
        let _ = model;
        let mut out: Vec<f32> = x[..d].iter().map(|v| *v as f32).collect();
        out.push(bias + offset);
        out.push(1.0);
        Some(out)
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
