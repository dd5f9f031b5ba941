//! Ranking evaluation of any [`Scorer`]: HR, NDCG, Recall, Precision, MAP and MRR at a list of
//! K, and AUC, under two protocols.
//!
//! - **Sampled** (NCF, He et al. 2017): each held-out `(user, item)` is ranked among its fixed
//!   sampled negatives ([`TestNegatives`], 99 in the paper). One relevant item per list, so
//!   HR@K = Recall@K, Precision@K = HR@K / K, MAP@K = MRR@K. Ties count against the held-out
//!   item (an untrained model with constant scores ranks it last); a negative equal to the
//!   held-out item (as in a few lines of the NCF paper's own files) is skipped.
//! - **Full**: each user's items of the evaluated part are the relevant set; all items are
//!   scored on the device in user batches, the user's training items are excluded (their scores
//!   set to `-inf`), and the top max-K is selected on the device, so memory stays at one batch
//!   of `users × items` scores.
//!
//! - **Factorized** (TensorFlow Recommenders' `FactorizedTopK`): each held-out pair's item is
//!   ranked among all items, nothing excluded; `hr@K` is TFRS' top-K categorical accuracy. The
//!   rank is counted on the device (`#{items scoring at least the held-out one} - 1`).
//!
//! Per list of relevant flags `hit_1..hit_K` in rank order, with `R` relevant items:
//! `HR@K = [Σ hit > 0]`, `Precision@K = Σ hit / K`, `Recall@K = Σ hit / R`,
//! `NDCG@K = Σ hit_j / log2(j + 1) / Σ_{j ≤ min(R, K)} 1 / log2(j + 1)`,
//! `MAP@K = Σ_j hit_j · Precision@j / min(R, K)`, `MRR@K = 1 / (rank of the first hit)`;
//! each averaged over users (sampled: over held-out pairs).

use std::collections::BTreeMap;

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use recsys_data::{Interactions, TestNegatives, UserHistory};
use recsys_models::Scorer;
use serde::{Deserialize, Serialize};

use crate::batch::index_tensor;
use crate::budget::{self, rows_per_block};
use crate::error::{Result, TrainError};

/// Ranking metrics by name: `"hr@10"`, `"ndcg@10"`, `"recall@10"`, `"precision@10"`, `"map@10"`,
/// `"mrr@10"` for each K, `"mrr"` and `"auc"` (sampled protocol), and `"n"`, the number of lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RankingMetrics(pub BTreeMap<String, f64>);

impl RankingMetrics {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).copied()
    }

    /// Number of ranked lists evaluated.
    pub fn n(&self) -> usize {
        self.get("n").unwrap_or(0.0) as usize
    }
}

/// Sums of per-list metrics.
#[derive(Default)]
struct Sums {
    sums: BTreeMap<String, f64>,
    n: usize,
}

impl Sums {
    fn add(&mut self, key: String, v: f64) {
        *self.sums.entry(key).or_insert(0.0) += v;
    }

    /// Adds one list: `hits[j]` whether the item at rank `j + 1` is relevant (at least max K
    /// long unless the candidates ran out), `n_relevant` relevant items in all.
    fn add_list(&mut self, hits: &[bool], n_relevant: usize, ks: &[usize]) {
        self.n += 1;
        for &k in ks {
            let top = &hits[..k.min(hits.len())];
            let n_hits = top.iter().filter(|&&h| h).count();
            let ideal: f64 = (0..n_relevant.min(k)).map(discount).sum();
            let dcg: f64 = top
                .iter()
                .enumerate()
                .filter(|(_, h)| **h)
                .map(|(j, _)| discount(j))
                .sum();
            let mut seen = 0usize;
            let mut ap = 0.0;
            for (j, &h) in top.iter().enumerate() {
                if h {
                    seen += 1;
                    ap += seen as f64 / (j + 1) as f64;
                }
            }
            let first = top.iter().position(|&h| h);
            let r = n_relevant.max(1) as f64;
            self.add(format!("hr@{k}"), (n_hits > 0) as u8 as f64);
            self.add(format!("precision@{k}"), n_hits as f64 / k as f64);
            self.add(format!("recall@{k}"), n_hits as f64 / r);
            self.add(
                format!("ndcg@{k}"),
                if ideal > 0.0 { dcg / ideal } else { 0.0 },
            );
            self.add(format!("map@{k}"), ap / n_relevant.min(k).max(1) as f64);
            self.add(
                format!("mrr@{k}"),
                first.map_or(0.0, |j| 1.0 / (j + 1) as f64),
            );
        }
    }

    fn finish(self) -> RankingMetrics {
        let n = self.n.max(1) as f64;
        let mut out: BTreeMap<String, f64> =
            self.sums.into_iter().map(|(k, v)| (k, v / n)).collect();
        out.insert("n".into(), self.n as f64);
        RankingMetrics(out)
    }
}

/// `1 / log2(j + 2)`: the gain of rank `j + 1`.
fn discount(j: usize) -> f64 {
    1.0 / ((j + 2) as f64).log2()
}

/// Ranking metrics of one list of relevant flags in rank order (`hits[j]` for rank `j + 1`), with
/// `n_relevant` relevant items in all: the per-list values that [`evaluate_ranking`] averages.
pub fn list_metrics(hits: &[bool], n_relevant: usize, ks: &[usize]) -> RankingMetrics {
    let mut s = Sums::default();
    s.add_list(hits, n_relevant, ks);
    s.finish()
}

/// What the ranking is evaluated on.
#[derive(Debug, Clone)]
pub enum RankingData {
    /// Held-out pairs with their fixed negatives.
    Sampled(TestNegatives),
    /// Each user's relevant items (sorted) and the items excluded from their ranking (training
    /// items, sorted), for the users that have relevant items.
    Full {
        users: Vec<u32>,
        relevant: Vec<Vec<u32>>,
        seen: Vec<Vec<u32>>,
        n_items: usize,
    },
    /// Held-out pairs ranked among every item.
    Factorized {
        users: Vec<u32>,
        items: Vec<u32>,
        n_items: usize,
    },
}

/// A ranking evaluation: the data and the list of K.
#[derive(Debug, Clone)]
pub struct RankingTask {
    pub data: RankingData,
    pub ks: Vec<usize>,
}

fn check_ks(ks: &[usize], candidates: usize, what: &str) -> Result<Vec<usize>> {
    if ks.is_empty() {
        return Err(TrainError::Config("ranking needs at least one K".into()));
    }
    if let Some(&k) = ks.iter().find(|&&k| k == 0) {
        return Err(TrainError::Config(format!("K = {k}: K must be at least 1")));
    }
    if let Some(&k) = ks.iter().find(|&&k| k > candidates) {
        return Err(TrainError::Config(format!(
            "K = {k} is larger than the {candidates} {what}"
        )));
    }
    let mut ks = ks.to_vec();
    ks.sort_unstable();
    ks.dedup();
    Ok(ks)
}

impl RankingTask {
    /// The sampled protocol on `cases`. Every K must fit in a candidate list (1 + negatives).
    pub fn sampled(cases: TestNegatives, ks: &[usize]) -> Result<Self> {
        let width = cases.cases.first().map_or(0, |c| c.negatives.len());
        if cases.cases.is_empty() {
            return Err(TrainError::Config(
                "no held-out pairs to rank (the evaluated part is empty)".into(),
            ));
        }
        let ks = check_ks(
            ks,
            width + 1,
            "candidates of each held-out pair (1 + negatives)",
        )?;
        Ok(Self {
            data: RankingData::Sampled(cases),
            ks,
        })
    }

    /// The full protocol: `part`'s items are each user's relevant set, ranked among all items
    /// except the user's items in `exclude` (the training data). Items of `part` that are also
    /// in `exclude` are not relevant (they cannot be recommended).
    pub fn full(part: &Interactions, exclude: &Interactions, ks: &[usize]) -> Result<Self> {
        let n_items = part.n_items;
        let ks = check_ks(ks, n_items, "items of the catalogue")?;
        let rel = UserHistory::new(part);
        let seen = UserHistory::new(exclude);
        let mut users = Vec::new();
        let mut relevant = Vec::new();
        let mut seen_lists = Vec::new();
        for u in 0..part.n_users as u32 {
            let s: &[u32] = if (u as usize) < seen.n_users() {
                seen.items(u)
            } else {
                &[]
            };
            let r: Vec<u32> = rel
                .items(u)
                .iter()
                .copied()
                .filter(|i| s.binary_search(i).is_err())
                .collect();
            if r.is_empty() {
                continue;
            }
            users.push(u);
            relevant.push(r);
            seen_lists.push(s.to_vec());
        }
        if users.is_empty() {
            return Err(TrainError::Config(
                "no user has an item to rank in the evaluated part".into(),
            ));
        }
        Ok(Self {
            data: RankingData::Full {
                users,
                relevant,
                seen: seen_lists,
                n_items,
            },
            ks,
        })
    }

    /// The factorized protocol: each pair of `part` ranked among all items.
    pub fn factorized(part: &Interactions, ks: &[usize]) -> Result<Self> {
        if part.is_empty() {
            return Err(TrainError::Config(
                "no held-out pairs to rank (the evaluated part is empty)".into(),
            ));
        }
        let ks = check_ks(ks, part.n_items, "items of the catalogue")?;
        Ok(Self {
            data: RankingData::Factorized {
                users: part.users.clone(),
                items: part.items.clone(),
                n_items: part.n_items,
            },
            ks,
        })
    }

    pub fn protocol(&self) -> &'static str {
        match self.data {
            RankingData::Sampled(_) => "sampled",
            RankingData::Full { .. } => "full",
            RankingData::Factorized { .. } => "factorized",
        }
    }
}

/// Ranking metrics of `model` (on a plain `device`) under `task`.
pub fn evaluate_ranking<M: Scorer>(
    model: &M,
    task: &RankingTask,
    device: &Device,
) -> RankingMetrics {
    match &task.data {
        RankingData::Sampled(cases) => sampled(model, cases, &task.ks, device),
        RankingData::Full {
            users,
            relevant,
            seen,
            n_items,
        } => full(model, users, relevant, seen, *n_items, &task.ks, device),
        RankingData::Factorized {
            users,
            items,
            n_items,
        } => factorized(model, users, items, *n_items, &task.ks, device),
    }
}

fn factorized<M: Scorer>(
    model: &M,
    users: &[u32],
    items: &[u32],
    n_items: usize,
    ks: &[usize],
    device: &Device,
) -> RankingMetrics {
    let mut sums = Sums::default();
    let max_k = *ks.last().expect("checked non-empty");
    let per = rows_per_block(n_items, budget::FULL_RANKING);
    for (u, i) in users.chunks(per).zip(items.chunks(per)) {
        let b = u.len();
        let scores = model.score_all(index_tensor(u, device)); // [b, n]
        let idx = index_tensor(i, device).reshape([b, 1]);
        let truth = scores.clone().gather(1, idx); // [b, 1]
        let ranks = scores
            .greater_equal(truth.expand([b, n_items]))
            .int()
            .sum_dim(1)
            .into_data()
            .try_into_vec_as::<i64>()
            .expect("int ranks");
        for r in ranks {
            let rank = (r.max(1) - 1) as usize;
            let mut hits = vec![false; max_k];
            if rank < max_k {
                hits[rank] = true;
            }
            sums.add_list(&hits, 1, ks);
        }
    }
    sums.finish()
}

fn sampled<M: Scorer>(
    model: &M,
    cases: &TestNegatives,
    ks: &[usize],
    device: &Device,
) -> RankingMetrics {
    let mut sums = Sums::default();
    let max_k = *ks.last().expect("checked non-empty");
    let width = cases.cases[0].negatives.len() + 1;
    let per = rows_per_block(width, budget::SAMPLED_RANKING);
    let (mut mrr, mut auc) = (0.0f64, 0.0f64);
    for block in cases.cases.chunks(per) {
        let mut users = Vec::with_capacity(block.len() * width);
        let mut items = Vec::with_capacity(block.len() * width);
        for c in block {
            for &i in std::iter::once(&c.item).chain(&c.negatives) {
                users.push(c.user);
                items.push(i);
            }
        }
        let scores = model
            .score(index_tensor(&users, device), index_tensor(&items, device))
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("float scores");
        for (c, row) in block.iter().zip(scores.chunks(width)) {
            let pos = row[0];
            let (mut above, mut below, mut ties, mut m) = (0usize, 0usize, 0usize, 0usize);
            for (&i, &s) in c.negatives.iter().zip(&row[1..]) {
                if i == c.item {
                    continue;
                }
                m += 1;
                // NaN scores rank as ties (never in the held-out item's favour).
                if s > pos {
                    above += 1;
                } else if s < pos {
                    below += 1;
                } else {
                    ties += 1;
                }
            }
            let rank = above + ties; // 0-based, ties against the held-out item
            let mut hits = vec![false; max_k.min(m + 1)];
            if rank < hits.len() {
                hits[rank] = true;
            }
            sums.add_list(&hits, 1, ks);
            mrr += 1.0 / (rank + 1) as f64;
            auc += if m == 0 {
                1.0
            } else {
                (below as f64 + 0.5 * ties as f64) / m as f64
            };
        }
    }
    let n = sums.n.max(1) as f64;
    let mut out = sums.finish();
    out.0.insert("mrr".into(), mrr / n);
    out.0.insert("auc".into(), auc / n);
    out
}

/// Each of `users`' best `k` items under `model`, selected on the device: all items are scored
/// at once, `exclude[r]` (when given) is set to `-inf` for row `r`, and the top `k` are taken
/// with their scores; excluded items never appear (a list is shorter when fewer items are
/// left). Higher scores first, exact ties by item index (which of several items tied at the
/// k-th place are kept is the backend's choice, the same on every run).
pub fn device_top_k<M: Scorer>(
    model: &M,
    users: &[u32],
    k: usize,
    exclude: Option<&[&[u32]]>,
    device: &Device,
) -> Vec<Vec<(u32, f32)>> {
    let n_items = model.n_items();
    let b = users.len();
    let k = k.min(n_items);
    if b == 0 || k == 0 {
        return vec![Vec::new(); b];
    }
    let mut scores = model.score_all(index_tensor(users, device));
    if let Some(ex) = exclude {
        // Only the excluded positions travel; -inf is added to the scores there on the device.
        let positions: Vec<i32> = ex
            .iter()
            .enumerate()
            .flat_map(|(r, s)| s.iter().map(move |&i| (r * n_items + i as usize) as i32))
            .collect();
        if !positions.is_empty() {
            let m = positions.len();
            let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [m]), device);
            let fill = Tensor::<1>::full([m], f32::NEG_INFINITY, device);
            scores = scores
                .reshape([b * n_items])
                .scatter(0, positions, fill, IndexingUpdateOp::Add)
                .reshape([b, n_items]);
        }
    }
    // A GPU selects in parallel over rows: slicing long rows multiplies them. On a CPU the
    // second round is only extra work.
    let (values, idx) = if crate::device::is_gpu(device) {
        chunked_top_k(scores, k)
    } else {
        scores.topk_with_indices(k, 1)
    };
    let values = values
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float scores");
    let idx = idx
        .into_data()
        .try_into_vec_as::<i64>()
        .expect("int indices");
    (0..b)
        .map(|r| {
            let mut list: Vec<(u32, f32)> = (0..k)
                .map(|j| (idx[r * k + j] as u32, values[r * k + j]))
                .take_while(|&(_, v)| v != f32::NEG_INFINITY)
                .collect();
            // Exact ties in item order, whatever order the backend's selection left them in.
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            list
        })
        .collect()
}

/// The `k` largest scores of each row of `scores` (`[b, n]`) and their columns, selected in two
/// rounds when rows are long: the top `k` of each of `c` slices of a row (`b * c` short rows:
/// `c` times the parallelism of one selection per row), then the top `k` of those `c * k`
/// candidates. Exact: a row's top `k` lies among its slices' tops. Slices are padded with -inf.
pub fn chunked_top_k(scores: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let [b, n] = scores.dims();
    let c = n / (8 * k).max(1);
    if c < 2 {
        return scores.topk_with_indices(k, 1);
    }
    let device = scores.device();
    let w = n.div_ceil(c);
    let scores = if c * w > n {
        let pad = Tensor::<2>::full([b, c * w - n], f32::NEG_INFINITY, &device);
        Tensor::cat(vec![scores, pad], 1)
    } else {
        scores
    };
    let (values, idx) = scores.reshape([b * c, w]).topk_with_indices(k, 1);
    let offsets = Tensor::<1, Int>::arange(0..c as i64, &device)
        .mul_scalar(w as i64)
        .reshape([1, c, 1])
        .expand([b, c, k]);
    let columns = (idx.reshape([b, c, k]) + offsets).reshape([b, c * k]);
    let (values, pick) = values.reshape([b, c * k]).topk_with_indices(k, 1);
    (values, columns.gather(1, pick))
}

fn full<M: Scorer>(
    model: &M,
    users: &[u32],
    relevant: &[Vec<u32>],
    seen: &[Vec<u32>],
    n_items: usize,
    ks: &[usize],
    device: &Device,
) -> RankingMetrics {
    let mut sums = Sums::default();
    let max_k = *ks.last().expect("checked non-empty");
    let per = rows_per_block(n_items, budget::FULL_RANKING);
    for (start, chunk) in (0..users.len()).step_by(per).zip(users.chunks(per)) {
        let exclude: Vec<&[u32]> = seen[start..start + chunk.len()]
            .iter()
            .map(Vec::as_slice)
            .collect();
        let lists = device_top_k(model, chunk, max_k, Some(&exclude), device);
        for (r, list) in lists.iter().enumerate() {
            let rel = &relevant[start + r];
            let hits: Vec<bool> = list
                .iter()
                .map(|&(i, _)| rel.binary_search(&i).is_ok())
                .collect();
            sums.add_list(&hits, rel.len(), ks);
        }
    }
    sums.finish()
}

#[cfg(test)]
mod tests;
