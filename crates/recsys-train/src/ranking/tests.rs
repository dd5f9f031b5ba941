//! Tests of the ranking metrics, protocols and device top-K.

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
    let part = Interactions::new(vec![0, 1, 1], vec![1, 2, 0], vec![1.0; 3], None, 2, 5).unwrap();
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
    let train = Interactions::new(vec![0, 0, 1], vec![5, 4, 2], vec![1.0; 3], None, 2, 6).unwrap();
    let test = Interactions::new(vec![0, 0, 1], vec![3, 0, 2], vec![1.0; 3], None, 2, 6).unwrap();
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
        .with_embedding_dim(16)
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
