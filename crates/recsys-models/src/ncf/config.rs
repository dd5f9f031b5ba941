//! The settings of [`Ncf`]: which branches, where the vectors come from, the widths, and the
//! output.

use burn::config::Config;
use burn::module::Param;
use burn::nn::{DropoutConfig, Linear};
use burn::tensor::{Device, TensorData};
use serde::{Deserialize, Serialize};

use super::{Ncf, Tower};
use crate::embedding::{EmbeddingInit, EmbeddingTableConfig};
use crate::error::{ModelError, Result};
use crate::layers::{Activation, DenseInit, salted, seeded_linear};
use crate::mf::MfOutput;

/// Which branches an [`Ncf`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NcfKind {
    /// Generalised matrix factorisation: the element-wise product branch alone.
    Gmf,
    /// The multi-layer perceptron branch alone.
    Mlp,
    /// Both, fused before the output layer.
    Neumf,
}

impl NcfKind {
    pub fn name(self) -> &'static str {
        match self {
            NcfKind::Gmf => "gmf",
            NcfKind::Mlp => "mlp",
            NcfKind::Neumf => "neumf",
        }
    }

    fn has_gmf(self) -> bool {
        self != NcfKind::Mlp
    }

    fn has_mlp(self) -> bool {
        self != NcfKind::Gmf
    }
}

/// Where the user and item vectors come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum NcfInput {
    /// Embedding tables indexed by id.
    Ids,
    /// A dense projection of the user's row / the item's column of the training rating matrix.
    #[cfg_attr(feature = "clap", value(alias = "rating_vectors"))]
    RatingVectors,
}

/// Configuration of [`Ncf`]. Defaults follow the NCF paper's code: GMF factors 8, MLP layers
/// 64-32-16-8 (so 32-wide user and item vectors), ReLU, N(0, 0.01²) embeddings, a logit output.
#[derive(Config, Debug)]
pub struct NcfConfig {
    pub n_users: usize,
    pub n_items: usize,
    #[config(default = "NcfKind::Neumf")]
    pub kind: NcfKind,
    #[config(default = "NcfInput::Ids")]
    pub input: NcfInput,
    /// Width of the GMF vectors.
    #[config(default = 8)]
    pub embedding_dim: usize,
    /// Widths of the MLP: the first is the width of `[p_u ; q_i]` (so each vector is half of
    /// it, and it must be even), then one dense layer per further width.
    #[config(default = "vec![64, 32, 16, 8]")]
    pub mlp_layers: Vec<usize>,
    /// Activation of the MLP layers (and of the rating-vector projections).
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Negative slope of [`Activation::LeakyRelu`].
    #[config(default = 0.3)]
    pub leaky_alpha: f64,
    /// Dropout after each MLP layer.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Weight `λ` of the L2 penalty (see the [module docs](super)).
    #[config(default = 0.0)]
    pub l2: f32,
    #[config(default = "MfOutput::Logit")]
    pub output: MfOutput,
    /// Rating scale of the sigmoid outputs (`[0, 1]` for implicit feedback).
    #[config(default = 0.0)]
    pub rating_min: f32,
    #[config(default = 1.0)]
    pub rating_max: f32,
    /// Mean target of the training data: the output bias starts at the logit that predicts it.
    #[config(default = 0.5)]
    pub global_mean: f32,
    /// Weight of the GMF branch when NeuMF starts from pretrained GMF and MLP models.
    #[config(default = 0.5)]
    pub alpha: f32,
    #[config(default = "EmbeddingInit::Normal { std: 0.01 }")]
    pub init: EmbeddingInit,
    #[config(default = 42)]
    pub seed: u64,
}

impl NcfConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(format!("ncf: {m}")));
        if self.n_users == 0 || self.n_items == 0 {
            return bad("n_users and n_items must be positive".into());
        }
        if self.kind.has_gmf() && self.embedding_dim == 0 {
            return bad("embedding_dim must be positive".into());
        }
        if self.kind.has_mlp() {
            match self.mlp_layers.first() {
                None => return bad("mlp_layers needs at least the input width".into()),
                Some(w) if *w == 0 || w % 2 == 1 => {
                    return bad(format!(
                        "the first MLP width ({w}) is [user ; item] and must be even and positive"
                    ));
                }
                _ => {}
            }
            if self.mlp_layers.contains(&0) {
                return bad(format!(
                    "mlp_layers must be positive, got {:?}",
                    self.mlp_layers
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout ({}) must be in [0, 1)", self.dropout));
        }
        if self.l2.is_nan() || self.l2 < 0.0 {
            return bad(format!("l2 ({}) must be >= 0", self.l2));
        }
        if self.output != MfOutput::Linear
            && (self.rating_max.is_nan() || self.rating_max <= self.rating_min)
        {
            return bad(format!(
                "rating_max ({}) must exceed rating_min ({})",
                self.rating_max, self.rating_min
            ));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return bad(format!("alpha ({}) must be in [0, 1]", self.alpha));
        }
        Ok(())
    }

    /// Width of each MLP user / item vector.
    pub fn mlp_dim(&self) -> usize {
        self.mlp_layers.first().map_or(0, |w| w / 2)
    }

    /// Builds the model on `device`. With [`NcfInput::RatingVectors`] it still needs the training
    /// matrix: see [`Ncf::with_inputs`].
    pub fn init(&self, device: &Device) -> Result<Ncf> {
        self.validate()?;
        device.seed(self.seed);
        let layer = std::cell::Cell::new(0u64);
        let linear = |a: usize, b: usize| {
            layer.set(layer.get() + 1);
            let seed = salted(self.seed, 100 + layer.get());
            seeded_linear(a, b, DenseInit::XavierUniform { gain: 1.0 }, seed, device)
        };
        let mut salt = 0u64;
        let mut tower = |n_rows: usize, width: usize, dim: usize| {
            salt += 1;
            match self.input {
                NcfInput::Ids => Tower {
                    embedding: Some(
                        EmbeddingTableConfig::new(n_rows, dim)
                            .with_init(self.init)
                            .with_seed(self.seed.wrapping_mul(8).wrapping_add(salt))
                            .init(device),
                    ),
                    dense: None,
                },
                NcfInput::RatingVectors => Tower {
                    embedding: None,
                    dense: Some(linear(width, dim)),
                },
            }
        };
        let (gmf_user, gmf_item) = if self.kind.has_gmf() {
            (
                Some(tower(self.n_users, self.n_items, self.embedding_dim)),
                Some(tower(self.n_items, self.n_users, self.embedding_dim)),
            )
        } else {
            (None, None)
        };
        let (mlp_user, mlp_item) = if self.kind.has_mlp() {
            let d = self.mlp_dim();
            (
                Some(tower(self.n_users, self.n_items, d)),
                Some(tower(self.n_items, self.n_users, d)),
            )
        } else {
            (None, None)
        };
        let mlp: Vec<Linear> = if self.kind.has_mlp() {
            self.mlp_layers
                .windows(2)
                .map(|w| linear(w[0], w[1]))
                .collect()
        } else {
            Vec::new()
        };
        let mut fused = 0;
        if self.kind.has_gmf() {
            fused += self.embedding_dim;
        }
        if self.kind.has_mlp() {
            fused += *self.mlp_layers.last().expect("validated");
        }
        let mut output = linear(fused, 1);
        let offset = self
            .output
            .offset(self.global_mean, self.rating_min, self.rating_max);
        output.bias = Some(Param::from_data(TensorData::new(vec![offset], [1]), device));
        Ok(Ncf {
            gmf_user,
            gmf_item,
            mlp_user,
            mlp_item,
            mlp,
            output,
            dropout: DropoutConfig::new(self.dropout).init(),
            kind: self.kind,
            input: self.input,
            activation: self.activation,
            leaky_alpha: self.leaky_alpha,
            l2: self.l2,
            output_kind: self.output,
            rating_min: self.rating_min,
            rating_max: self.rating_max,
            n_users: self.n_users,
            n_items: self.n_items,
            inputs: None,
        })
    }
}
