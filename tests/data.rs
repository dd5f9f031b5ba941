//! The data layer on real MovieLens releases.

use recsys::data::{LoadOptions, Size, SplitMethod, load, ml100k_fold, split, stats};

use crate::common::real_data;

#[test]
fn ml100k_stats_match_the_release() {
    let Some(dir) = real_data("ml-100k", "ml100k_stats_match_the_release") else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let st = stats(&ds, 10, 15);
    assert_eq!((st.users, st.items, st.ratings), (943, 1682, 100_000));
    assert_eq!(st.top_items[0].title.as_deref(), Some("Star Wars (1977)"));
    assert_eq!(st.top_items[0].count, 583);
    assert_eq!(st.pivot.ratings.len(), 15);
    assert!(
        (st.mean_rating - 3.52986).abs() < 1e-4,
        "{}",
        st.mean_rating
    );
}

#[test]
fn ml_latest_small_stats_match_the_release() {
    let Some(dir) = real_data("ml-latest-small", "ml_latest_small_stats_match_the_release") else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let st = stats(&ds, 10, 15);
    assert_eq!((st.users, st.items, st.ratings), (610, 9724, 100_836));
    assert_eq!(ds.scale, (0.5, 5.0));
    // Quoted titles with commas survive.
    assert!(
        ds.items
            .iter()
            .flatten()
            .any(|i| i.title == "American President, The (1995)")
    );
}

#[test]
fn ml100k_folds_partition_u_data() {
    let Some(dir) = real_data("ml-100k", "ml100k_folds_partition_u_data") else {
        return;
    };
    let ds = load(&dir, &LoadOptions::default()).unwrap();
    let key = |u: &[u32], i: &[u32]| {
        let mut v: Vec<(u32, u32)> = u.iter().copied().zip(i.iter().copied()).collect();
        v.sort_unstable();
        v
    };
    let all = key(&ds.interactions.users, &ds.interactions.items);
    for k in 1..=5 {
        let (base, test) = ml100k_fold(&dir, k, &ds.ids).unwrap();
        assert_eq!((base.len(), test.len()), (80_000, 20_000), "u{k}");
        let joined = recsys::data::Interactions::concat(&[&base, &test]);
        assert_eq!(
            key(&joined.users, &joined.items),
            all,
            "u{k}.base + u{k}.test != u.data"
        );
    }
}

#[test]
fn ml100k_stratified_split_covers_everyone() {
    let Some(dir) = real_data("ml-100k", "ml100k_stratified_split_covers_everyone") else {
        return;
    };
    // The NeuMF notebook's recipe: drop movies with fewer than 3 ratings, then split.
    let ds = load(&dir, &LoadOptions::default())
        .unwrap()
        .min_counts(1, 3, false);
    let s = split(
        &ds.interactions,
        &SplitMethod::Stratified {
            valid: Size::Ratio(0.1),
            test: Size::Ratio(0.2),
        },
        42,
    )
    .unwrap();
    assert_eq!(
        s.train.len() + s.valid.len() + s.test.len(),
        ds.interactions.len()
    );
    for part in [&s.train, &s.valid, &s.test] {
        assert!(part.user_counts().iter().all(|&c| c > 0));
        assert!(part.item_counts().iter().all(|&c| c > 0));
    }
}

#[test]
fn ncf_test_negatives_read_back() {
    let Some(dir) = real_data("ncf-ml-1m", "ncf_test_negatives_read_back") else {
        return;
    };
    let neg =
        recsys::data::TestNegatives::read(&dir.join("ml-1m.test.negative"), 6040, 3706).unwrap();
    assert_eq!(neg.cases.len(), 6040);
    assert!(neg.cases.iter().all(|c| c.negatives.len() == 99));
    assert_eq!((neg.cases[0].user, neg.cases[0].item), (0, 25));
    // The same file against a smaller catalogue is a clear error naming file and line.
    let e = recsys::data::TestNegatives::read(&dir.join("ml-1m.test.negative"), 6040, 100)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ml-1m.test.negative:1:") && e.contains("out of range"),
        "{e}"
    );
}

#[test]
fn ml1m_movies_file_reads_latin1_titles() {
    let Some(dir) = real_data("ml-1m", "ml1m_movies_file_reads_latin1_titles") else {
        return;
    };
    // ratings.dat is not shipped here: pair the real movies.dat with a tiny ratings file.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("movies.dat"), tmp.path().join("movies.dat")).unwrap();
    std::fs::copy(dir.join("users.dat"), tmp.path().join("users.dat")).unwrap();
    std::fs::write(
        tmp.path().join("ratings.dat"),
        "1::1193::5::978300760\n2::1::3::978300761\n",
    )
    .unwrap();
    let ds = load(tmp.path(), &LoadOptions::default()).unwrap();
    assert_eq!(ds.scale, (1.0, 5.0));
    assert_eq!(
        ds.title(ds.ids.item("1193").unwrap()),
        Some("One Flew Over the Cuckoo's Nest (1975)")
    );
    assert_eq!(
        ds.title(ds.ids.item("1").unwrap()),
        Some("Toy Story (1995)")
    );
}
