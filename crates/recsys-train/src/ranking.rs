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

/// Scores per block of the sampled protocol, and per user batch of the full one.
const BLOCK_SCORES: usize = 1 << 20;

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
    let per = (4 * BLOCK_SCORES / n_items.max(1)).max(1);
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
    let per = (BLOCK_SCORES / width).max(1);
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
    let per = (4 * BLOCK_SCORES / n_items.max(1)).max(1);
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
mod tests {
    use super::*;
    use recsys_data::TestCase;
    use recsys_models::traits::pairs_with_every_item;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("metric present");
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn hand_computed_list() {
        // Relevant at ranks 1, 3 and 6 of a list; 4 relevant items in all.
        let hits = [true, false, true, false, false, true];
        let m = list_metrics(&hits, 4, &[1, 3, 6]);
        close(m.get("hr@1"), 1.0);
        close(m.get("precision@3"), 2.0 / 3.0);
        close(m.get("recall@3"), 2.0 / 4.0);
        close(m.get("recall@6"), 3.0 / 4.0);
        // DCG@3 = 1 + 1/log2(4) = 1.5; IDCG@3 = 1 + 1/log2(3) + 1/2.
        let idcg3 = 1.0 + 1.0 / 3f64.log2() + 0.5;
        close(m.get("ndcg@3"), 1.5 / idcg3);
        // AP@6 = (1/1 + 2/3 + 3/6) / min(4, 6).
        close(m.get("map@6"), (1.0 + 2.0 / 3.0 + 0.5) / 4.0);
        close(m.get("mrr@6"), 1.0);
        // No hit in the top 2 of [false, false, true]: every @2 metric is 0, MRR@3 = 1/3.
        let m = list_metrics(&[false, false, true], 1, &[2, 3]);
        for key in [
            "hr@2",
            "ndcg@2",
            "recall@2",
            "precision@2",
            "map@2",
            "mrr@2",
        ] {
            close(m.get(key), 0.0);
        }
        close(m.get("mrr@3"), 1.0 / 3.0);
        close(m.get("ndcg@3"), 0.5); // 1/log2(4) over an ideal of 1
        close(m.get("map@3"), 1.0 / 3.0);
    }

    /// Scores `user * 100 + item` ... or a fixed table: item `i` scores `table[i]` for all users.
    struct Fixed {
        table: Vec<f32>,
    }

    impl Scorer for Fixed {
        fn n_items(&self) -> usize {
            self.table.len()
        }

        fn score(
            &self,
            _users: Tensor<1, burn::tensor::Int>,
            items: Tensor<1, burn::tensor::Int>,
        ) -> Tensor<1> {
            let device = items.device();
            let t = Tensor::<1>::from_floats(self.table.as_slice(), &device);
            t.select(0, items)
        }

        fn score_all(&self, users: Tensor<1, burn::tensor::Int>) -> Tensor<2> {
            let [b] = users.dims();
            let n = self.table.len();
            let (u, i) = pairs_with_every_item(users, n);
            self.score(u, i).reshape([b, n])
        }
    }

    #[test]
    fn sampled_protocol_ranks_among_negatives() {
        let device = Device::flex();
        // Item scores 0..10 ascending: item 9 best.
        let model = Fixed {
            table: (0..10).map(|i| i as f32).collect(),
        };
        let cases = TestNegatives {
            cases: vec![
                // 9 beats all: rank 1.
                TestCase {
                    user: 0,
                    item: 9,
                    negatives: vec![1, 2, 3],
                },
                // 5 below 7 and 8: rank 3.
                TestCase {
                    user: 1,
                    item: 5,
                    negatives: vec![7, 8, 0],
                },
                // The held-out item among its negatives is skipped: rank 1 among 2 others.
                TestCase {
                    user: 2,
                    item: 4,
                    negatives: vec![4, 1, 2],
                },
            ],
        };
        let task = RankingTask::sampled(cases, &[1, 2]).unwrap();
        let m = evaluate_ranking(&model, &task, &device);
        close(m.get("hr@1"), 2.0 / 3.0);
        close(m.get("hr@2"), 2.0 / 3.0);
        close(m.get("mrr"), (1.0 + 1.0 / 3.0 + 1.0) / 3.0);
        close(m.get("auc"), (1.0 + 1.0 / 3.0 + 1.0) / 3.0);
        assert_eq!(m.n(), 3);
        // Constant scores: ties rank the held-out item last.
        let flat = Fixed {
            table: vec![1.0; 10],
        };
        let cases = TestNegatives {
            cases: vec![TestCase {
                user: 0,
                item: 3,
                negatives: vec![1, 2],
            }],
        };
        let m = evaluate_ranking(
            &flat,
            &RankingTask::sampled(cases.clone(), &[2]).unwrap(),
            &device,
        );
        close(m.get("hr@2"), 0.0);
        close(m.get("auc"), 0.5);
        let err = RankingTask::sampled(cases, &[4]).unwrap_err();
        assert!(
            err.to_string().contains("K = 4 is larger than the 3"),
            "{err}"
        );
    }

    #[test]
    fn factorized_protocol_ranks_among_all_items() {
        let device = Device::flex();
        let model = Fixed {
            table: vec![0.5, 3.0, 2.0, 1.0, 2.0],
        };
        // Item 1 is first; item 2 ties with 4 (counted against it): rank 3; item 0 last (5).
        let part =
            Interactions::new(vec![0, 1, 1], vec![1, 2, 0], vec![1.0; 3], None, 2, 5).unwrap();
        let m = evaluate_ranking(
            &model,
            &RankingTask::factorized(&part, &[1, 3]).unwrap(),
            &device,
        );
        close(m.get("hr@1"), 1.0 / 3.0);
        close(m.get("hr@3"), 2.0 / 3.0);
        close(m.get("mrr@3"), (1.0 + 1.0 / 3.0) / 3.0);
        assert!(RankingTask::factorized(&part, &[6]).is_err());
    }

    #[test]
    fn full_protocol_excludes_seen_items() {
        let device = Device::flex();
        let model = Fixed {
            table: (0..6).map(|i| i as f32).collect(),
        };
        // User 0 trained on items 5 and 4 (excluded); relevant {3, 0}: ranking 3, 2, 1, 0.
        // User 1 has no relevant items left (its only test item is also in training): skipped.
        let train =
            Interactions::new(vec![0, 0, 1], vec![5, 4, 2], vec![1.0; 3], None, 2, 6).unwrap();
        let test =
            Interactions::new(vec![0, 0, 1], vec![3, 0, 2], vec![1.0; 3], None, 2, 6).unwrap();
        let task = RankingTask::full(&test, &train, &[1, 4]).unwrap();
        let m = evaluate_ranking(&model, &task, &device);
        assert_eq!(m.n(), 1);
        close(m.get("hr@1"), 1.0);
        close(m.get("precision@4"), 0.5);
        close(m.get("recall@4"), 1.0);
        close(m.get("map@4"), (1.0 + 2.0 / 4.0) / 2.0);
        let ideal = 1.0 + 1.0 / 3f64.log2();
        close(m.get("ndcg@4"), (1.0 + 1.0 / 5f64.log2()) / ideal);
        for bad in [vec![0], vec![7], vec![]] {
            assert!(RankingTask::full(&test, &train, &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chunked_top_k_is_the_exact_top_k() {
        use crate::device::{BackendKind, device, wgpu_adapters};
        use rand::{Rng, SeedableRng};
        let (b, n, k) = (5, 2_003, 10); // 25 slices of 81, the last padded
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        // Distinct scores, so the top k is unique.
        let mut values: Vec<f32> = (0..b * n).map(|x| x as f32).collect();
        for row in values.chunks_mut(n) {
            for j in (1..n).rev() {
                row.swap(j, rng.random_range(0..=j));
            }
        }
        let mut kinds = vec![BackendKind::Flex, BackendKind::Ndarray];
        if !wgpu_adapters().is_empty() {
            kinds.push(BackendKind::Wgpu);
        }
        for kind in kinds {
            let d = device(kind, 0).unwrap().without_autodiff();
            let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [b, n]), &d);
            let (v, i) = chunked_top_k(t, k);
            let v = v.into_data().try_into_vec_as::<f32>().unwrap();
            let i = i.into_data().try_into_vec_as::<i64>().unwrap();
            for r in 0..b {
                let row = &values[r * n..(r + 1) * n];
                let mut want: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
                want.sort_by(|x, y| y.1.total_cmp(&x.1));
                for j in 0..k {
                    assert_eq!(v[r * k + j], want[j].1, "{kind} row {r} rank {j}");
                    assert_eq!(i[r * k + j] as usize, want[j].0, "{kind} row {r} rank {j}");
                }
            }
        }
    }

    #[test]
    fn device_top_k_agrees_on_flex_and_wgpu() {
        use crate::device::{BackendKind, device, wgpu_adapters};
        use burn::module::Module;
        use recsys_models::TwoTowerConfig;
        if wgpu_adapters().is_empty() {
            eprintln!("device_top_k_agrees_on_flex_and_wgpu skipped: no wgpu adapter");
            return;
        }
        let flex = device(BackendKind::Flex, 0).unwrap().without_autodiff();
        let wgpu = device(BackendKind::Wgpu, 0).unwrap().without_autodiff();
        let model = TwoTowerConfig::new(50, 300)
            .with_dim(16)
            .with_init(recsys_models::EmbeddingInit::Normal { std: 1.0 })
            .init(&flex)
            .unwrap();
        let on_wgpu = model.clone().fork(&wgpu);
        let users: Vec<u32> = (0..50).collect();
        let seen: Vec<Vec<u32>> = (0..50u32).map(|u| (0..u * 3).collect()).collect();
        let exclude: Vec<&[u32]> = seen.iter().map(Vec::as_slice).collect();
        let a = device_top_k(&model, &users, 20, Some(&exclude), &flex);
        let b = device_top_k(&on_wgpu, &users, 20, Some(&exclude), &wgpu);
        for (u, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x.len(), 20);
            assert!(
                x.iter().all(|(i, _)| *i >= 3 * u as u32),
                "user {u}: seen item listed"
            );
            let ids = |l: &[(u32, f32)]| l.iter().map(|p| p.0).collect::<Vec<_>>();
            assert_eq!(ids(x), ids(y), "user {u}");
            for (p, q) in x.iter().zip(y) {
                assert!((p.1 - q.1).abs() < 1e-3, "user {u}: {p:?} vs {q:?}");
            }
        }
    }
}
