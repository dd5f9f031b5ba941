//! Neural collaborative filtering (He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative
//! Filtering", WWW 2017): GMF, MLP and their fusion NeuMF.
//!
//! Each branch has its own user and item vectors:
//!
//! ```text
//! GMF:    φ_G = p_u^G ⊙ q_i^G
//! MLP:    φ_M = a_L(W_L ( … a_1(W_1 [p_u^M ; q_i^M] + b_1) … ) + b_L)
//! NeuMF:  z = h · [φ_G ; φ_M] + b          (GMF alone: h · φ_G;  MLP alone: h · φ_M)
//! ```
//!
//! [`NcfInput`] says where the vectors come from: [`NcfInput::Ids`] looks them up in embedding
//! tables (the paper); [`NcfInput::RatingVectors`] projects the user's row and the item's column of
//! the training rating matrix through a dense layer and the activation (the NeuMF notebook's
//! variant, see [`Ncf::with_inputs`]). While training on a rated pair, that pair's own rating is
//! removed from both input vectors, so the model cannot read the answer from its input.
//!
//! What becomes of the logit `z` is an [`MfOutput`], as for [`Mf`](crate::Mf): [`MfOutput::Logit`]
//! trains with binary cross-entropy (implicit feedback: labels 1 and 0 on the scale `[0, 1]`),
//! [`MfOutput::ScaledSigmoid`] predicts ratings `min + (max - min) σ(z)` with MSE (the notebook's
//! `sigmoid_1_5`). A batch with negatives trains with BPR on `z(u, i) - z(u, j)`.
//!
//! An L2 penalty `λ (Σ_batch |looked-up rows|² / batch + Σ |dense kernels|²)` is returned apart
//! from the data term ([`ModelLoss::penalty`]), as Keras' `kernel_regularizer=l2(λ)` adds it.
//!
//! NeuMF can start from trained GMF and MLP models ([`Ncf::from_pretrained`]): their vectors and
//! layers are copied, and the output layer is `[α h_G ; (1 - α) h_M]` with bias
//! `α b_G + (1 - α) b_M`, the paper's pre-training. The GMF branch may also start from a trained
//! [`Mf`](crate::Mf), which is GMF with `h = 1` ([`Ncf::gmf_from_mf`]).

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::{Dropout, Linear};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use recsys_data::{Interactions, UserHistory};

pub use self::config::{NcfConfig, NcfInput, NcfKind};
use crate::embedding::EmbeddingTable;
use crate::error::{ModelError, Result};
use crate::fused;
use crate::layers::{Activation, kernel_l2};
use crate::mf::MfOutput;
use crate::traits::{ModelLoss, RatingBatch, RatingModel, Retriever, Scorer, pairwise_loss};

/// One side's vectors of one branch: an embedding table, or a dense projection of rating rows.
#[derive(Module, Debug)]
pub struct Tower {
    pub embedding: Option<EmbeddingTable>,
    pub dense: Option<Linear>,
}

impl Tower {
    fn width(&self) -> usize {
        match (&self.embedding, &self.dense) {
            (Some(e), _) => e.dim(),
            (None, Some(d)) => d.weight.shape().dims::<2>()[1],
            (None, None) => unreachable!("a tower has a table or a dense layer"),
        }
    }
}

/// The training matrix by user and by item, which [`NcfInput::RatingVectors`] reads.
#[derive(Debug, Clone)]
pub struct NcfInputs {
    pub by_user: Arc<UserHistory>,
    pub by_item: Arc<UserHistory>,
}

/// GMF, MLP or NeuMF; see the [module docs](self).
#[derive(Module, Debug)]
pub struct Ncf {
    pub gmf_user: Option<Tower>,
    pub gmf_item: Option<Tower>,
    pub mlp_user: Option<Tower>,
    pub mlp_item: Option<Tower>,
    /// The MLP's dense layers after `[p_u ; q_i]`.
    pub mlp: Vec<Linear>,
    /// The fused vector to the logit.
    pub output: Linear,
    pub dropout: Dropout,
    #[module(skip)]
    kind: NcfKind,
    #[module(skip)]
    input: NcfInput,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    leaky_alpha: f64,
    #[module(skip)]
    l2: f32,
    #[module(skip)]
    output_kind: MfOutput,
    #[module(skip)]
    rating_min: f32,
    #[module(skip)]
    rating_max: f32,
    #[module(skip)]
    n_users: usize,
    #[module(skip)]
    n_items: usize,
    #[module(skip)]
    inputs: Option<NcfInputs>,
}

/// Vectors of one side (users or items) for both branches, and their squared sum for the L2
/// penalty of looked-up rows.
struct Side {
    gmf: Option<Tensor<2>>,
    mlp: Option<Tensor<2>>,
    /// `Σ` of the squared looked-up embedding rows (`None` for projections or without L2).
    sq: Option<Tensor<1>>,
}

impl Ncf {
    pub fn kind(&self) -> NcfKind {
        self.kind
    }

    pub fn input(&self) -> NcfInput {
        self.input
    }

    /// The learned id vectors of users and items, `[p^G ; p^M]` and `[q^G ; q^M]` (the branches
    /// present); `None` for rating-vector inputs, which learn projections instead.
    ///
    /// # Shapes
    /// - output: `[n_users, d]`, `[n_items, d]`
    pub fn id_vectors(&self) -> Option<(Tensor<2>, Tensor<2>)> {
        let table = |towers: [&Option<Tower>; 2]| -> Option<Tensor<2>> {
            let parts: Vec<Tensor<2>> = towers
                .into_iter()
                .flatten()
                .map(|t| t.embedding.as_ref().map(|e| e.table()))
                .collect::<Option<_>>()?;
            (!parts.is_empty()).then(|| Tensor::cat(parts, 1))
        };
        Some((
            table([&self.gmf_user, &self.mlp_user])?,
            table([&self.gmf_item, &self.mlp_item])?,
        ))
    }

    /// The model reading the training matrix `train` (needed by [`NcfInput::RatingVectors`],
    /// a no-op for ids).
    pub fn with_inputs(mut self, train: &Interactions) -> Self {
        if self.input == NcfInput::RatingVectors {
            self.inputs = Some(NcfInputs {
                by_user: Arc::new(UserHistory::new(train)),
                by_item: Arc::new(UserHistory::by_item(train)),
            });
        }
        self
    }

    /// The model reading `rows` as its users' rating vectors, its items' vectors unchanged (a
    /// no-op for ids, or before [`Ncf::with_inputs`]): a new user's ratings become a user row
    /// without retraining, as the items' columns stay those of the training matrix.
    pub fn with_user_rows(mut self, rows: &Interactions) -> Self {
        if let Some(inputs) = &mut self.inputs {
            inputs.by_user = Arc::new(UserHistory::new(rows));
        }
        self
    }

    fn act<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self.activation {
            Activation::LeakyRelu => leaky_relu(x, self.leaky_alpha),
            a => a.apply(x),
        }
    }

    /// Dense rows `idx` of `history`, with the entry at column `hide[k]` of row `k` zeroed.
    fn rating_rows(
        history: &UserHistory,
        idx: &[i64],
        hide: Option<&[i64]>,
        device: &Device,
    ) -> Tensor<2> {
        let n = history.n_items();
        let mut values = vec![0f32; idx.len() * n];
        for (k, &r) in idx.iter().enumerate() {
            let row = &mut values[k * n..(k + 1) * n];
            history.dense_row(r as u32, row);
            if let Some(h) = hide {
                row[h[k] as usize] = 0.0;
            }
        }
        Tensor::from_data(TensorData::new(values, [idx.len(), n]), device)
    }

    /// Both branches' vectors of `idx` on one side (`users` when `user_side`). `hide` is the
    /// other side's index per row, whose entry is removed from rating-vector inputs (training).
    fn side(&self, idx: Tensor<1, Int>, user_side: bool, hide: Option<&Tensor<1, Int>>) -> Side {
        let (g, m) = if user_side {
            (&self.gmf_user, &self.mlp_user)
        } else {
            (&self.gmf_item, &self.mlp_item)
        };
        let rows = match self.input {
            NcfInput::Ids => None,
            NcfInput::RatingVectors => {
                let inputs = self
                    .inputs
                    .as_ref()
                    .expect("rating-vector NCF reads the training matrix: call `with_inputs`");
                let history = if user_side {
                    &inputs.by_user
                } else {
                    &inputs.by_item
                };
                let ints =
                    |t: &Tensor<1, Int>| t.clone().into_data().try_into_vec_as::<i64>().unwrap();
                let hide = hide.map(ints);
                Some(Self::rating_rows(
                    history,
                    &ints(&idx),
                    hide.as_deref(),
                    &idx.device(),
                ))
            }
        };
        let mut sq: Option<Tensor<1>> = None;
        let mut vectors = |tower: &Option<Tower>| {
            tower.as_ref().map(|t| match (&t.embedding, &rows) {
                (Some(e), _) => {
                    let v = e.lookup(idx.clone());
                    if self.l2 > 0.0 {
                        let s = v.clone().square().sum();
                        sq = Some(match sq.take() {
                            Some(a) => a + s,
                            None => s,
                        });
                    }
                    v
                }
                (None, Some(r)) => self.act(fused::dense(t.dense.as_ref().expect("dense"), r.clone())),
                (None, None) => unreachable!("rating rows are built for projections"),
            })
        };
        let gmf = vectors(g);
        let mlp = vectors(m);
        Side { gmf, mlp, sq }
    }

    /// Logits of pairs whose user vectors are `u` and item vectors `i` (row `k` with row `k`).
    fn fuse(&self, u: &Side, i: &Side) -> Tensor<1> {
        let gmf = u.gmf.clone().zip(i.gmf.clone()).map(|(a, b)| a * b);
        let mlp = u
            .mlp
            .clone()
            .zip(i.mlp.clone())
            .map(|(a, b)| Tensor::cat(vec![a, b], 1));
        self.head(gmf, mlp)
    }

    /// Logits of pairs of looked-up ids, with the pairs' rows combined by the fused operations
    /// ([`crate::fused`]; the same composition as [`fuse`](Self::fuse) off Flex). Only without
    /// an L2 penalty: the penalty reads the same looked-up rows, and through one lookup their
    /// gradients add up in the order Burn's autodiff gives them, which a second lookup would
    /// change (and with it the training's rounding).
    fn fuse_ids(&self, users: &Tensor<1, Int>, items: &Tensor<1, Int>) -> Tensor<1> {
        let tables = |u: &Option<Tower>, i: &Option<Tower>| {
            let table = |t: &Option<Tower>| {
                t.as_ref()
                    .and_then(|t| t.embedding.as_ref())
                    .map(EmbeddingTable::table)
            };
            table(u).zip(table(i))
        };
        let (u, i) = (users.clone(), items.clone());
        let gmf = tables(&self.gmf_user, &self.gmf_item)
            .map(|(p, q)| fused::pair_product(p, q, u.clone(), i.clone(), EmbeddingTable::lookup_in));
        let mlp = tables(&self.mlp_user, &self.mlp_item)
            .map(|(p, q)| fused::pair_concat(p, q, u, i, EmbeddingTable::lookup_in));
        self.head(gmf, mlp)
    }

    /// The logit from GMF's vector `gmf` (`p ⊙ q`) and the MLP's input `mlp` (`[p ; q]`).
    fn head(&self, gmf: Option<Tensor<2>>, mlp: Option<Tensor<2>>) -> Tensor<1> {
        let mut parts = Vec::new();
        parts.extend(gmf);
        if let Some(x) = mlp {
            let x = self
                .mlp
                .iter()
                .fold(x, |x, l| self.dropout.forward(self.act(fused::dense(l, x))));
            parts.push(x);
        }
        let h = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Tensor::cat(parts, 1)
        };
        let [batch, _] = h.dims();
        fused::dense(&self.output, h).reshape([batch])
    }

    /// `λ Σ |dense kernels|²` (towers' projections, MLP and output layers).
    fn kernel_penalty(&self) -> Option<Tensor<1>> {
        let towers = [
            &self.gmf_user,
            &self.gmf_item,
            &self.mlp_user,
            &self.mlp_item,
        ];
        let dense = towers
            .into_iter()
            .flatten()
            .filter_map(|t| t.dense.as_ref());
        kernel_l2(dense.chain(&self.mlp).chain(std::iter::once(&self.output)))
    }

    /// Logits of `(users[k], items[k])` and the L2 penalty when set. `training` removes each
    /// pair's own rating from rating-vector inputs.
    ///
    /// # Shapes
    /// - `users`, `items`: `[batch]`
    /// - output: `[batch]`, `[1]`
    pub fn logits_with_penalty(
        &self,
        users: Tensor<1, Int>,
        items: Tensor<1, Int>,
        training: bool,
    ) -> (Tensor<1>, Option<Tensor<1>>) {
        let [batch] = users.dims();
        let (hide_u, hide_i) = if training {
            (Some(&items), Some(&users))
        } else {
            (None, None)
        };
        let (z, rows) = match self.input {
            NcfInput::Ids if self.l2 == 0.0 => (self.fuse_ids(&users, &items), None),
            _ => {
                let u = self.side(users.clone(), true, hide_u);
                let i = self.side(items.clone(), false, hide_i);
                let rows = match (u.sq.clone(), i.sq.clone()) {
                    (Some(a), Some(b)) => Some((a + b).div_scalar(batch.max(1) as f32)),
                    (a, b) => a.or(b).map(|s| s.div_scalar(batch.max(1) as f32)),
                };
                (self.fuse(&u, &i), rows)
            }
        };
        let penalty = (self.l2 > 0.0).then(|| {
            let p = match (rows, self.kernel_penalty()) {
                (Some(a), Some(b)) => a + b,
                (a, b) => a.or(b).expect("an output layer at least"),
            };
            p.mul_scalar(self.l2)
        });
        (z, penalty)
    }

    fn to_rating<const D: usize>(&self, z: Tensor<D>) -> Tensor<D> {
        self.output_kind
            .to_rating(z, self.rating_min, self.rating_max)
    }

    /// This GMF model with the vectors and logit of a trained [`Mf`](crate::Mf): MF is GMF with
    /// `h = 1` (the paper, section 3.2), and a biased MF's logit `p_u · q_i + b_u + b_i + c` is the
    /// dot product of `[p_u, b_u + c, 1]` and `[q_i, 1, b_i]` ([`Retriever`]), so the GMF vectors
    /// are those (width `d + 2`), `h` is all ones and the output bias 0: both give the same logits.
    /// The model must be a GMF on ids of the MF's users and items with `embedding_dim = d + 2`.
    pub fn gmf_from_mf(self, mf: &crate::Mf) -> Result<Ncf> {
        let bad = |m: String| Err(ModelError::InvalidConfig(format!("GMF from MF: {m}")));
        if self.kind != NcfKind::Gmf || self.input != NcfInput::Ids {
            return bad(format!(
                "needs a gmf model on ids, got {} on {:?}",
                self.kind.name(),
                self.input
            ));
        }
        let device = self.output.weight.device();
        let to = |t: Tensor<2>| Tensor::<2>::from_data(t.into_data(), &device);
        let all_users = Tensor::arange(0..mf.n_users() as i64, &mf.user_embedding.table().device());
        let users = to(mf.user_vectors(all_users));
        let items = to(mf.item_vectors());
        let ([n_users, width], [n_items, _]) = (users.dims(), items.dims());
        let mine = (
            self.n_users,
            self.n_items,
            self.gmf_user.as_ref().map(Tower::width),
        );
        if (n_users, n_items, Some(width)) != mine {
            return bad(format!(
                "the mf run has (users, items, GMF width = factors + 2) {:?}, this model {:?}",
                (n_users, n_items, width),
                (mine.0, mine.1, mine.2.unwrap_or(0))
            ));
        }
        let mut out = self;
        let table = |t: Tensor<2>| {
            Some(Tower {
                embedding: Some(EmbeddingTable {
                    weight: Param::from_data(t.into_data(), &device),
                }),
                dense: None,
            })
        };
        out.gmf_user = table(users);
        out.gmf_item = table(items);
        out.output.weight =
            Param::from_data(Tensor::<2>::ones([width, 1], &device).into_data(), &device);
        out.output.bias = Some(Param::from_data(TensorData::new(vec![0f32], [1]), &device));
        Ok(out)
    }

    /// NeuMF from trained GMF and MLP models of the same data and sizes, on this model's device:
    /// their vectors and layers (moved, as they are), and the output layer `[α h_G ; (1 - α) h_M]`, bias `α b_G + (1 - α) b_M`.
    pub fn from_pretrained(self, gmf: Ncf, mlp: Ncf, alpha: f32) -> Result<Ncf> {
        let bad = |m: String| Err(ModelError::InvalidConfig(format!("pretrained NeuMF: {m}")));
        if self.kind != NcfKind::Neumf || gmf.kind != NcfKind::Gmf || mlp.kind != NcfKind::Mlp {
            return bad(format!(
                "needs a neumf model from a gmf and an mlp model, got {}, {} and {}",
                self.kind.name(),
                gmf.kind.name(),
                mlp.kind.name()
            ));
        }
        let shape = |t: &Option<Tower>| t.as_ref().map(|t| t.width());
        let dims = |m: &Ncf| (m.n_users, m.n_items, m.input);
        if dims(&gmf) != dims(&self) || dims(&mlp) != dims(&self) {
            return bad(format!(
                "the runs have (users, items, input) {:?} (gmf) and {:?} (mlp), this model {:?}",
                dims(&gmf),
                dims(&mlp),
                dims(&self)
            ));
        }
        if shape(&gmf.gmf_user) != shape(&self.gmf_user) {
            return bad(format!(
                "the gmf run has factors {:?}, this model {:?}",
                shape(&gmf.gmf_user),
                shape(&self.gmf_user)
            ));
        }
        let layer_dims = |m: &Ncf| -> Vec<[usize; 2]> {
            m.mlp.iter().map(|l| l.weight.shape().dims()).collect()
        };
        if shape(&mlp.mlp_user) != shape(&self.mlp_user) || layer_dims(&mlp) != layer_dims(&self) {
            return bad(format!(
                "the mlp run has vectors {:?} and layers {:?}, this model {:?} and {:?}",
                shape(&mlp.mlp_user),
                layer_dims(&mlp),
                shape(&self.mlp_user),
                layer_dims(&self)
            ));
        }
        let device = self.output.weight.device();
        let to = |t: Tensor<2>| Tensor::<2>::from_data(t.into_data(), &device);
        let to1 = |t: Tensor<1>| Tensor::<1>::from_data(t.into_data(), &device);
        let weight = Tensor::cat(
            vec![
                to(gmf.output.weight.val()).mul_scalar(alpha),
                to(mlp.output.weight.val()).mul_scalar(1.0 - alpha),
            ],
            0,
        );
        let bias = |m: &Ncf| {
            m.output
                .bias
                .as_ref()
                .map(|b| to1(b.val()))
                .unwrap_or_else(|| Tensor::zeros([1], &device))
        };
        let bias = bias(&gmf).mul_scalar(alpha) + bias(&mlp).mul_scalar(1.0 - alpha);
        let mut out = self;
        out.gmf_user = gmf.gmf_user;
        out.gmf_item = gmf.gmf_item;
        out.mlp_user = mlp.mlp_user;
        out.mlp_item = mlp.mlp_item;
        out.mlp = mlp.mlp;
        // Fresh leaves (from data), not nodes of a graph.
        out.output.weight = Param::from_data(weight.into_data(), &device);
        out.output.bias = Some(Param::from_data(bias.into_data(), &device));
        Ok(out)
    }
}

impl Scorer for Ncf {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.to_rating(self.logits_with_penalty(users, items, false).0)
    }

    /// Each user's and each item's vectors are computed once, then every pair goes through the
    /// fusion in blocks of about a million pairs.
    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let [batch] = users.dims();
        let n = self.n_items;
        let device = users.device();
        let u = self.side(users, true, None);
        let i = self.side(Tensor::arange(0..n as i64, &device), false, None);
        let per = (1 << 20) / n.max(1);
        let per = per.max(1);
        let expand = |t: &Option<Tensor<2>>, start: usize, len: usize, users: bool| {
            t.as_ref().map(|t| {
                let [_, d] = t.dims();
                if users {
                    t.clone()
                        .slice(start..start + len)
                        .reshape([len, 1, d])
                        .expand([len, n, d])
                        .reshape([len * n, d])
                } else {
                    t.clone()
                        .reshape([1, n, d])
                        .expand([len, n, d])
                        .reshape([len * n, d])
                }
            })
        };
        let mut blocks = Vec::new();
        for start in (0..batch).step_by(per) {
            let len = per.min(batch - start);
            let su = Side {
                gmf: expand(&u.gmf, start, len, true),
                mlp: expand(&u.mlp, start, len, true),
                sq: None,
            };
            let si = Side {
                gmf: expand(&i.gmf, start, len, false),
                mlp: expand(&i.mlp, start, len, false),
                sq: None,
            };
            blocks.push(self.to_rating(self.fuse(&su, &si)).reshape([len, n]));
        }
        Tensor::cat(blocks, 0)
    }
}

impl RatingModel for Ncf {
    type Batch = RatingBatch;

    fn loss(&self, batch: &RatingBatch) -> ModelLoss {
        if let Some(out) = pairwise_loss(batch, |u, i| self.logits_with_penalty(u, i, true)) {
            return out;
        }
        let (z, penalty) = self.logits_with_penalty(batch.users.clone(), batch.items.clone(), true);
        let loss =
            self.output_kind
                .loss(z, batch.ratings.clone(), self.rating_min, self.rating_max);
        ModelLoss { loss, penalty }
    }
}
