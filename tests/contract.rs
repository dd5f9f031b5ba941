//! The contract every model family keeps, checked on every model name of the registry (and the
//! variants that change what a model reads): after training, `score` agrees with `score_all`;
//! weights saved and loaded again give identical scores; a `Retriever`'s vectors rank items as
//! its scores do; a family that reads users' rating rows folds a new user in from a history.

use std::path::Path;

use recsys::data::{IdMap, Interactions, Vocab};
use recsys::models::{AutoRecBase, NcfInput};
use recsys::train::batch::index_tensor;
use recsys::train::{
    Checkpoint, DataRecipe, LoadedRun, ModelConfig, ModelOverrides, Overrides, RunDir, load_run,
    setup, train_run,
};

const USERS: usize = 30;
const ITEMS: usize = 20;

/// Every user rates 8 items; the rating follows a user and an item factor.
fn data() -> Interactions {
    let (mut users, mut items, mut ratings) = (Vec::new(), Vec::new(), Vec::new());
    for u in 0..USERS as u32 {
        for k in 0..8u32 {
            let i = (u * 7 + k * 3) % ITEMS as u32;
            users.push(u);
            items.push(i);
            ratings.push(1.0 + ((u % 5 + i % 3) % 5) as f32);
        }
    }
    Interactions::new(users, items, ratings, None, USERS, ITEMS).unwrap()
}

fn ids() -> IdMap {
    IdMap {
        users: Vocab::from_raw((0..USERS).map(|k| format!("u{k}")).collect()).unwrap(),
        items: Vocab::from_raw((0..ITEMS).map(|k| format!("i{k}")).collect()).unwrap(),
    }
}

/// Trains model `name` (with `tweak` applied to its overrides) for two epochs into `dir`.
fn train(name: &str, dir: &Path, tweak: impl FnOnce(&mut ModelOverrides)) {
    let train = data();
    let mut model = ModelOverrides::default();
    tweak(&mut model);
    let overrides = Overrides {
        epochs: Some(2),
        batch_size: Some(32),
        model,
        ..Overrides::default()
    };
    let mut config = setup::draft(name, None, overrides).unwrap_or_else(|e| panic!("{name}: {e}"));
    setup::size(
        &mut config,
        USERS,
        ITEMS,
        (1.0, 5.0),
        (train.len(), train.mean_rating()),
        DataRecipe::default(),
    )
    .unwrap();
    train_run(dir, &config, &ids(), &train, None, true).unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "{what}: entry {k}: {x} vs {y}"
        );
    }
}

fn check_contract(what: &str, dir: &Path) {
    let run = load_run(dir, Checkpoint::Best, None).unwrap();
    let users: Vec<u32> = vec![0, 3, 17, 29];
    let all = run.score_all(&users);
    assert_eq!(all.len(), users.len() * ITEMS, "{what}");
    assert!(
        all.iter().all(|s| s.is_finite()),
        "{what}: non-finite scores"
    );
    // score agrees with score_all.
    let pairs_u: Vec<u32> = users.iter().flat_map(|&u| [u; ITEMS]).collect();
    let pairs_i: Vec<u32> = users.iter().flat_map(|_| 0..ITEMS as u32).collect();
    close(
        &format!("{what}: score vs score_all"),
        &run.score(&pairs_u, &pairs_i),
        &all,
    );

    // Saved and loaded again: identical scores.
    let copy = dir.with_extension("copy");
    let target = RunDir::create(&copy).unwrap();
    target.write_config(&run.config).unwrap();
    target.write_idmap(&run.ids).unwrap();
    let rows = dir.join("train-rows.bin");
    if rows.is_file() {
        std::fs::copy(&rows, copy.join("train-rows.bin")).unwrap();
    }
    run.model.save(&target).unwrap();
    let again = load_run(&copy, Checkpoint::Best, None).unwrap();
    assert_eq!(again.score_all(&users), all, "{what}: save/load round trip");

    check_retriever(what, &run, &users, &all);
    check_row_fold_in(what, &run, &users);
}

/// For a family that reads users' rating rows (U-AutoRec, NCF on rating vectors), a new user
/// whose history is a known user's training ratings gets exactly that user's recommendations.
fn check_row_fold_in(what: &str, run: &LoadedRun, users: &[u32]) {
    if !run.folds_in_rows() {
        assert!(
            run.top_k_for_history(&[(1, 4.0)], 5, &[]).is_none(),
            "{what}"
        );
        return;
    }
    let train = data();
    for &u in users {
        let history: Vec<(u32, f32)> = (0..train.len())
            .filter(|&k| train.users[k] == u)
            .map(|k| (train.items[k], train.ratings[k]))
            .collect();
        let mut seen: Vec<u32> = history.iter().map(|h| h.0).collect();
        seen.sort_unstable();
        let folded = run
            .top_k_for_history(&history, 5, &seen)
            .unwrap_or_else(|| panic!("{what}: no fold-in"));
        let known = run.top_k(&[u], 5, Some(&[&seen])).remove(0);
        assert_eq!(
            folded, known,
            "{what}: user {u} folded in from their ratings"
        );
    }
}

/// For a `Retriever`, scores increase with the dot product of the user's and item's vectors.
fn check_retriever(what: &str, run: &LoadedRun, users: &[u32], all: &[f32]) {
    let Some(r) = run.retriever() else {
        return;
    };
    let u = r.user_vectors(index_tensor(users, &run.device));
    let dots: Vec<f32> = u
        .matmul(r.item_vectors().transpose())
        .into_data()
        .try_into_vec_as()
        .unwrap();
    for (row, (d, s)) in dots.chunks(ITEMS).zip(all.chunks(ITEMS)).enumerate() {
        let mut order: Vec<usize> = (0..ITEMS).collect();
        order.sort_by(|&a, &b| d[a].total_cmp(&d[b]));
        for w in order.windows(2) {
            assert!(
                s[w[1]] >= s[w[0]] - 1e-4,
                "{what}: user row {row}: dot {} > {} but score {} < {}",
                d[w[1]],
                d[w[0]],
                s[w[1]],
                s[w[0]]
            );
        }
    }
}

#[test]
fn every_family_keeps_the_model_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let mf = tmp.path().join("mf-for-regressor");
    train("mf", &mf, |o| o.bias = Some(true));
    for name in ModelConfig::model_names() {
        let dir = tmp.path().join(name);
        train(name, &dir, |o| {
            if name == "regressor" {
                o.embeddings = Some(mf.clone());
            }
        });
        check_contract(name, &dir);
    }
    // Variants that change what a model reads or how it scores.
    type Variant = (&'static str, &'static str, fn(&mut ModelOverrides));
    let variants: [Variant; 9] = [
        ("baseline", "baseline-als", |o| {
            o.baseline_fit = Some(recsys::models::BaselineFit::Als)
        }),
        ("item-knn", "item-knn-cosine", |o| {
            o.similarity = Some(recsys::models::Similarity::Cosine);
            o.neighbours = Some(3);
        }),
        ("mf", "mf-rating-range", |o| {
            o.bias = Some(true);
            o.rating_range = true;
        }),
        ("autorec", "autorec-user-based", |o| {
            o.base = Some(AutoRecBase::User)
        }),
        ("autorec", "autorec-deep", |o| {
            o.hidden = Some(vec![6, 2, 6])
        }),
        ("gmf", "gmf-rating-vectors", |o| {
            o.input = Some(NcfInput::RatingVectors)
        }),
        ("mlp", "mlp-rating-vectors", |o| {
            o.input = Some(NcfInput::RatingVectors)
        }),
        ("neumf", "neumf-rating-vectors", |o| {
            o.input = Some(NcfInput::RatingVectors)
        }),
        ("two-tower", "two-tower-towers", |o| {
            o.hidden = Some(vec![8]);
            o.oov = true;
        }),
    ];
    for (name, label, tweak) in variants {
        let dir = tmp.path().join(label);
        train(name, &dir, tweak);
        check_contract(label, &dir);
    }
}
