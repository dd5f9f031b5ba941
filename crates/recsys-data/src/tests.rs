//! Unit tests of the data layer on fixtures written here (no real data needed).

use std::path::{Path, PathBuf};

use crate::*;

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A small ML-100K-shaped folder: `u.data`, `u.item`, and fold files.
fn ml100k_fixture(dir: &Path) {
    let mut data = String::new();
    // 6 users x 5 items, each user rates 4 items; timestamps increase with the row.
    let mut t = 880000000;
    for u in 1..=6 {
        for i in 1..=5 {
            if (u + i) % 5 != 0 {
                t += 7;
                data.push_str(&format!("{u}\t{i}\t{}\t{t}\n", 1 + (u * i) % 5));
            }
        }
    }
    write(dir, "u.data", data.as_bytes());
    let mut items = Vec::new();
    for i in 1..=5 {
        let mut line = format!("{i}|Movie {i} (199{i})|01-Jan-1995||http://x").into_bytes();
        for g in 0..19 {
            line.extend_from_slice(if g == i { b"|1" } else { b"|0" });
        }
        line.push(b'\n');
        items.extend_from_slice(&line);
    }
    // A latin-1 title: "Café" with 0xE9.
    items.extend_from_slice(
        b"6|Caf\xe9 (1999)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n",
    );
    write(dir, "u.item", &items);
    let lines: Vec<&str> = data.lines().collect();
    write(dir, "u1.base", (lines[..20].join("\n") + "\n").as_bytes());
    write(dir, "u1.test", (lines[20..].join("\n") + "\n").as_bytes());
}

fn csv_fixture(dir: &Path) {
    write(
        dir,
        "ratings.csv",
        b"userId,movieId,rating,timestamp\r\n1,10,4.0,964982703\r\n1,20,3.5,964981247\r\n2,10,5.0,964982224\r\n3,30,0.5,964983815\r\n",
    );
    write(
        dir,
        "movies.csv",
        "movieId,title,genres\r\n10,\"American President, The (1995)\",Comedy|Drama|Romance\r\n20,Amélie (2001),Comedy\r\n30,Heat (1995),(no genres listed)\r\n"
            .as_bytes(),
    );
}

fn err_of(r: Result<Dataset>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn loads_ml100k_folder_with_titles_and_sorted_ids() {
    let dir = tempfile::tempdir().unwrap();
    ml100k_fixture(dir.path());
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(ds.interactions.n_users, 6);
    assert_eq!(ds.interactions.n_items, 5);
    assert_eq!(ds.interactions.len(), 24);
    assert_eq!(ds.ids.users.raw_id(0), "1");
    assert_eq!(ds.ids.items.raw_id(4), "5");
    assert_eq!(ds.title(0), Some("Movie 1 (1991)"));
    assert_eq!(
        ds.items[0].as_ref().unwrap().genres,
        vec!["Action".to_string()]
    );
    assert_eq!(ds.scale, (1.0, 5.0));
    assert!(ds.interactions.timestamps.is_some());
}

#[test]
fn loads_csv_release_with_crlf_and_quoted_titles() {
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(
        (
            ds.interactions.n_users,
            ds.interactions.n_items,
            ds.interactions.len()
        ),
        (3, 3, 4)
    );
    assert_eq!(ds.title(0), Some("American President, The (1995)"));
    assert_eq!(ds.title(1), Some("Amélie (2001)"));
    assert!(ds.items[2].as_ref().unwrap().genres.is_empty());
    assert_eq!(ds.interactions.ratings, vec![4.0, 3.5, 5.0, 0.5]);
}

#[test]
fn loads_dat_release_latin1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ratings.dat",
        b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    );
    write(dir.path(), "movies.dat", b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Caf\xe9 (1996)::Animation|Children's\n");
    write(dir.path(), "users.dat", b"1::F::1::10::48067\n");
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(ds.scale, (1.0, 5.0));
    assert_eq!(
        ds.ids.items.raw_ids(),
        &["661".to_string(), "1193".to_string()]
    );
    assert_eq!(ds.title(0), Some("Café (1996)"));
    // Without users.dat the folder reads as ML-10M, whose scale has half stars.
    std::fs::remove_file(dir.path().join("users.dat")).unwrap();
    assert_eq!(
        load(dir.path(), &LoadOptions::default()).unwrap().scale,
        (0.5, 5.0)
    );
}

#[test]
fn loads_generic_delimited_with_string_ids() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "events.txt",
        b"item;when;who;score\nb;1;alice;2\na;2;bob;4\nb;3;bob;1\n",
    );
    let spec = DelimitedSpec {
        delimiter: ";".into(),
        header: true,
        user_col: 2,
        item_col: 0,
        rating_col: 3,
        timestamp_col: Some(1),
        ..Default::default()
    };
    let ds = load(
        &p,
        &LoadOptions {
            format: Some(Format::Delimited(spec)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        ds.ids.users.raw_ids(),
        &["alice".to_string(), "bob".to_string()]
    );
    assert_eq!(ds.ids.items.raw_ids(), &["a".to_string(), "b".to_string()]);
    assert_eq!(ds.interactions.users, vec![0, 1, 1]);
    assert_eq!(ds.interactions.items, vec![1, 0, 1]);
    assert_eq!(ds.interactions.timestamps, Some(vec![1, 2, 3]));
}

#[test]
fn bad_input_missing_file() {
    let e = err_of(load(
        Path::new("/nonexistent/ratings.csv"),
        &LoadOptions::default(),
    ));
    assert!(e.contains("/nonexistent/ratings.csv"), "{e}");
}

#[test]
fn bad_input_unknown_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ratings.xyz", b"1 2 3\n");
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(
        e.contains("ratings.xyz") && e.contains("unknown format"),
        "{e}"
    );
    let e = err_of(load(dir.path(), &LoadOptions::default()));
    assert!(e.contains("no ratings file"), "{e}");
    assert!("ml-30m".parse::<Format>().is_err());
}

#[test]
fn bad_input_wrong_column_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "u.data", b"1\t2\t3\t4\n1\t3\t4\n");
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(
        e.contains("u.data:2:") && e.contains("expected 4 fields, found 3"),
        "{e}"
    );
    let p = write(dir.path(), "u.data", b"1\t2\t3\t4\n1\t3\t4\t5\t6\n");
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(e.contains("u.data:2:") && e.contains("found 5"), "{e}");
}

#[test]
fn bad_input_non_numeric_field() {
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,10,4.0,1\n1,20,four,2\n",
    );
    let e = err_of(load(dir.path(), &LoadOptions::default()));
    assert!(
        e.contains("ratings.csv:3:") && e.contains("rating \"four\""),
        "{e}"
    );
    write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,10,4.0,1\nx1,20,4,2\n",
    );
    let e = err_of(load(dir.path(), &LoadOptions::default()));
    assert!(e.contains("ratings.csv:3:") && e.contains("user id"), "{e}");
}

#[test]
fn bad_input_rating_outside_scale() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "u.data", b"1\t2\t3\t4\n1\t3\t6\t5\n");
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(
        e.contains("u.data:2:") && e.contains("outside the declared scale 1..5"),
        "{e}"
    );
}

#[test]
fn bad_input_empty_and_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "u.data", b"");
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(e.contains("u.data") && e.contains("empty"), "{e}");
    write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\r\n",
    );
    let e = err_of(load(
        &dir.path().join("ratings.csv"),
        &LoadOptions::default(),
    ));
    assert!(
        e.contains("ratings.csv") && e.contains("header only"),
        "{e}"
    );
}

#[test]
fn bad_input_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    write(
        dir.path(),
        "movies.csv",
        b"movieId,title,genres\n10,Ok (1995),Drama\n20,Bad \xff (1995),Drama\n",
    );
    let e = err_of(load(dir.path(), &LoadOptions::default()));
    assert!(e.contains("movies.csv:3:") && e.contains("UTF-8"), "{e}");
    // String ids are UTF-8 too.
    let p = write(dir.path(), "x.csv", b"a,b,1\n\xfe,b,2\n");
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(e.contains("x.csv:2:") && e.contains("UTF-8"), "{e}");
}

#[test]
fn duplicates_policy() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "u.data",
        b"1\t2\t3\t10\n2\t2\t4\t11\n1\t2\t5\t12\n",
    );
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(
        e.contains("u.data:3:")
            && e.contains("first at line 1")
            && e.contains("user 1 rated item 2"),
        "{e}"
    );
    let first = load(
        &p,
        &LoadOptions {
            duplicates: Duplicates::KeepFirst,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.interactions.ratings, vec![3.0, 4.0]);
    let last = load(
        &p,
        &LoadOptions {
            duplicates: Duplicates::KeepLast,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(last.interactions.ratings, vec![4.0, 5.0]);
    let all = load(
        &p,
        &LoadOptions {
            duplicates: Duplicates::KeepAll,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.interactions.len(), 3);
    // Grouped by user (the one-pass check).
    let p = write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating\n1,2,3\n1,3,4\n1,2,5\n2,2,1\n",
    );
    let e = err_of(load(&p, &LoadOptions::default()));
    assert!(
        e.contains("ratings.csv:4:") && e.contains("first at line 2"),
        "{e}"
    );
}

#[test]
fn fold_with_unknown_id_names_file_line_and_id() {
    let dir = tempfile::tempdir().unwrap();
    ml100k_fixture(dir.path());
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    let (base, test) = ml100k_fold(dir.path(), 1, &ds.ids).unwrap();
    assert_eq!(base.len() + test.len(), ds.interactions.len());
    write(dir.path(), "u1.test", b"1\t1\t3\t1\n99\t1\t3\t1\n");
    let e = ml100k_fold(dir.path(), 1, &ds.ids).unwrap_err().to_string();
    assert!(e.contains("\"99\"") && e.contains("u1.test:2"), "{e}");
    assert!(ml100k_fold(dir.path(), 6, &ds.ids).is_err());
}

fn grid(n_users: u32, n_items: u32, seed: u64) -> Interactions {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut u, mut i, mut r, mut t) = (vec![], vec![], vec![], vec![]);
    for uu in 0..n_users {
        for ii in 0..n_items {
            if rng.random_bool(0.4) || (uu + ii) % 7 == 0 || ii == uu % n_items {
                u.push(uu);
                i.push(ii);
                r.push(rng.random_range(1..=5) as f32);
                t.push(rng.random_range(0..1_000_000));
            }
        }
    }
    Interactions::new(u, i, r, Some(t), n_users as usize, n_items as usize).unwrap()
}

/// Every row lands in exactly one part.
fn assert_partition(all: &Interactions, s: &Split) {
    let key = |x: &Interactions| {
        let mut v: Vec<(u32, u32, u32, i64)> = (0..x.len())
            .map(|k| {
                (
                    x.users[k],
                    x.items[k],
                    x.ratings[k].to_bits(),
                    x.timestamps.as_ref().unwrap()[k],
                )
            })
            .collect();
        v.sort();
        v
    };
    let joined = Interactions::concat(&[&s.train, &s.valid, &s.test]);
    assert_eq!(key(&joined), key(all));
    for p in [&s.train, &s.valid, &s.test] {
        assert_eq!((p.n_users, p.n_items), (all.n_users, all.n_items));
    }
}

#[test]
fn every_split_is_a_partition() {
    let data = grid(40, 30, 1);
    let methods = [
        SplitMethod::Random {
            valid: Size::Ratio(0.1),
            test: Size::Count(50),
        },
        SplitMethod::Stratified {
            valid: Size::Ratio(0.1),
            test: Size::Ratio(0.2),
        },
        SplitMethod::ByUser {
            valid: Size::Count(5),
            test: Size::Ratio(0.2),
        },
        SplitMethod::LeaveLastOut { valid: true },
        SplitMethod::LeaveOneOut { valid: false },
    ];
    for m in &methods {
        let s = split(&data, m, 7).unwrap();
        assert_partition(&data, &s);
        assert_eq!(s, split(&data, m, 7).unwrap(), "{m:?} is not deterministic");
    }
    let s = split(&data, &methods[0], 7).unwrap();
    assert_eq!(s.test.len(), 50);
    assert_eq!(s.valid.len(), (data.len() as f64 * 0.1).round() as usize);
    assert!(
        split(
            &data,
            &SplitMethod::Random {
                valid: Size::Count(data.len()),
                test: Size::Count(1)
            },
            1
        )
        .is_err()
    );
}

#[test]
fn stratified_split_covers_every_user_and_item() {
    for seed in 0..5 {
        let data = grid(60, 45, seed);
        let s = split(
            &data,
            &SplitMethod::Stratified {
                valid: Size::Ratio(0.1),
                test: Size::Ratio(0.1),
            },
            seed,
        )
        .unwrap();
        assert_eq!(split::coverage_gaps(&data, &s), 0);
    }
}

#[test]
fn by_user_split_keeps_users_whole_and_leave_last_out_takes_latest() {
    let data = grid(30, 20, 3);
    let s = split(
        &data,
        &SplitMethod::ByUser {
            valid: Size::Ratio(0.2),
            test: Size::Ratio(0.2),
        },
        1,
    )
    .unwrap();
    let (a, b, c) = (
        s.train.user_counts(),
        s.valid.user_counts(),
        s.test.user_counts(),
    );
    for u in 0..30 {
        assert_eq!(
            [a[u] > 0, b[u] > 0, c[u] > 0]
                .iter()
                .filter(|&&x| x)
                .count(),
            1
        );
    }
    let s = split(&data, &SplitMethod::LeaveLastOut { valid: false }, 1).unwrap();
    let ts = data.timestamps.as_ref().unwrap();
    for k in 0..s.test.len() {
        let u = s.test.users[k];
        let latest = (0..data.len())
            .filter(|&r| data.users[r] == u)
            .map(|r| ts[r])
            .max()
            .unwrap();
        assert_eq!(s.test.timestamps.as_ref().unwrap()[k], latest);
    }
    assert_eq!(s.test.len(), 30);
}

#[test]
fn filters_compact_ids_and_keep_titles() {
    let dir = tempfile::tempdir().unwrap();
    ml100k_fixture(dir.path());
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    let counts = ds.interactions.item_counts();
    let min = *counts.iter().max().unwrap();
    let f = ds.min_counts(1, min, false);
    assert!(f.interactions.item_counts().iter().all(|&c| c >= min));
    assert_eq!(f.ids.n_items(), f.interactions.n_items);
    for k in 0..f.interactions.n_items as u32 {
        let raw = f.ids.items.raw_id(k);
        assert_eq!(f.title(k), ds.title(ds.ids.item(raw).unwrap()));
    }
    let top = ds.top_users(2);
    assert_eq!(top.interactions.n_users, 2);
    let imp = ds.implicit(3.0);
    assert!(imp.interactions.ratings.iter().all(|&r| r == 1.0));
    assert_eq!(
        imp.interactions.len(),
        ds.interactions.ratings.iter().filter(|&&r| r > 3.0).count()
    );
}

#[test]
fn normalisation_round_trips() {
    for kind in ["none", "max", "min-max", "mean"] {
        let n = Normalizer::fit(kind, (0.5, 5.0), &[1.0, 2.0, 4.5]).unwrap();
        for r in [0.5f32, 3.0, 5.0] {
            assert!((n.inverse(n.forward(r)) - r).abs() < 1e-6, "{kind}");
        }
    }
    let n = Normalizer::fit("min-max", (1.0, 5.0), &[]).unwrap();
    assert_eq!((n.forward(1.0), n.forward(5.0)), (0.0, 1.0));
    assert!(Normalizer::fit("log", (1.0, 5.0), &[]).is_err());
}

#[test]
fn histories_and_negatives() {
    let data = grid(20, 30, 5);
    let h = UserHistory::new(&data);
    for k in 0..data.len() {
        assert!(h.contains(data.users[k], data.items[k]));
    }
    let mut s = NegativeSampler::new(&h, 3);
    for u in 0..20 {
        let neg = s.sample(u, 5).unwrap();
        assert_eq!(neg.len(), 5);
        assert!(neg.iter().all(|&i| !h.contains(u, i)));
        let mut d = neg.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 5);
    }
    assert!(s.sample(0, 31).is_err());
    let sp = split(&data, &SplitMethod::LeaveLastOut { valid: false }, 0).unwrap();
    let tn = TestNegatives::sample(&sp.test, &h, 4, 11).unwrap();
    assert_eq!(tn, TestNegatives::sample(&sp.test, &h, 4, 11).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.test.negative");
    tn.write(&p).unwrap();
    assert_eq!(TestNegatives::read(&p, 20, 30).unwrap(), tn);
    // Mismatched against a smaller catalogue, and malformed.
    let e = TestNegatives::read(&p, 20, 2).unwrap_err().to_string();
    assert!(
        e.contains("x.test.negative:1:") && e.contains("out of range"),
        "{e}"
    );
    std::fs::write(&p, "(0,1)\t2\t3\n(1,2)\t4\n").unwrap();
    assert!(
        TestNegatives::read(&p, 20, 30)
            .unwrap_err()
            .to_string()
            .contains(":2:")
    );
    std::fs::write(&p, "0,1\t2\n").unwrap();
    assert!(TestNegatives::read(&p, 20, 30).is_err());
}

#[test]
fn stats_of_fixture() {
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    let st = stats(&ds, 2, 15);
    assert_eq!((st.users, st.items, st.ratings), (3, 3, 4));
    assert_eq!(st.top_items[0].item_id, "10");
    assert_eq!(st.top_items[0].count, 2);
    assert_eq!(st.histogram, vec![(0.5, 1), (3.5, 1), (4.0, 1), (5.0, 1)]);
    assert!((st.sparsity - (1.0 - 4.0 / 9.0)).abs() < 1e-12);
    assert_eq!(st.pivot.ratings[0][0], Some(4.0));
}

#[test]
fn idmap_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    csv_fixture(dir.path());
    let ds = load(dir.path(), &LoadOptions::default()).unwrap();
    let p = dir.path().join("ids.json");
    ds.ids.save(&p).unwrap();
    let back = IdMap::load(&p).unwrap();
    assert_eq!(back.item("20").unwrap(), 1);
    assert!(back.user("77").unwrap_err().to_string().contains("\"77\""));
}

#[test]
fn per_user_split_keeps_each_users_share() {
    // User u has 4 * (u + 1) ratings.
    let (mut users, mut items) = (Vec::new(), Vec::new());
    for u in 0..5u32 {
        for i in 0..4 * (u + 1) {
            users.push(u);
            items.push(i);
        }
    }
    let n = users.len();
    let data = Interactions::new(users, items, vec![3.0; n], None, 5, 20).unwrap();
    let method = SplitMethod::PerUser {
        valid: 0.0,
        test: 0.25,
    };
    let s = split(&data, &method, 7).unwrap();
    assert_eq!(s.train.len() + s.test.len(), n);
    assert!(s.valid.is_empty());
    let (train_counts, test_counts) = (s.train.user_counts(), s.test.user_counts());
    for u in 0..5 {
        assert_eq!(test_counts[u], (u + 1) as u32, "user {u}");
        assert_eq!(train_counts[u], 3 * (u + 1) as u32, "user {u}");
    }
    assert_eq!(s, split(&data, &method, 7).unwrap());
    assert_ne!(s, split(&data, &method, 8).unwrap());
    let bad = SplitMethod::PerUser {
        valid: 0.5,
        test: 0.5,
    };
    assert!(split(&data, &bad, 7).is_err());
}

/// The seeded folds of one seed partition the rows: each row is in one test fold, and each
/// fold's rest is the other folds.
#[test]
fn k_folds_partition_the_rows() {
    let all = grid(30, 20, 3);
    let mut tests = Vec::new();
    for fold in 1..=4 {
        let (rest, test) = crate::k_fold(&all, 4, fold, 9).unwrap();
        assert!(test.len().abs_diff(all.len() / 4) <= 1, "{}", test.len());
        assert_partition(
            &all,
            &Split {
                train: rest,
                valid: all.select(&[]),
                test: test.clone(),
            },
        );
        tests.push(test);
    }
    let joined: Vec<&Interactions> = tests.iter().collect();
    let joined = Interactions::concat(&joined);
    assert_partition(
        &all,
        &Split {
            train: joined,
            valid: all.select(&[]),
            test: all.select(&[]),
        },
    );
    // Another seed, other folds.
    assert_ne!(crate::k_fold(&all, 4, 1, 10).unwrap().1, tests[0]);
    for (k, fold) in [(1, 1), (4, 0), (4, 5)] {
        let e = crate::k_fold(&all, k, fold, 9).unwrap_err().to_string();
        assert!(e.contains("at least 2 folds"), "{e}");
    }
}

#[test]
fn remap_matches_raw_ids_and_counts_unknown_ones() {
    let vocab =
        |ids: &[&str]| Vocab::from_raw(ids.iter().map(|s| s.to_string()).collect()).unwrap();
    let run = IdMap {
        users: vocab(&["a", "b", "c"]),
        items: vocab(&["x", "y"]),
    };
    // Another file: users in another order, one unknown user (d) and one unknown item (z).
    let ds = Dataset {
        interactions: Interactions::new(
            vec![0, 1, 2, 2, 0],
            vec![0, 1, 0, 2, 2],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            None,
            3,
            3,
        )
        .unwrap(),
        ids: IdMap {
            users: vocab(&["c", "a", "d"]),
            items: vocab(&["y", "x", "z"]),
        },
        ..Default::default()
    };
    let r = ds.remap(&run);
    assert_eq!(r.interactions.users, vec![2, 0]);
    assert_eq!(r.interactions.items, vec![1, 0]);
    assert_eq!(r.interactions.ratings, vec![1.0, 2.0]);
    assert_eq!((r.interactions.n_users, r.interactions.n_items), (3, 2));
    assert_eq!(r.unknown_pairs, 3);
    assert_eq!(r.unknown_users, vec!["d".to_string()]);
    assert_eq!(r.unknown_items, vec!["z".to_string()]);
}

#[test]
fn normalize_kinds_fit_from_the_scale_and_mean() {
    use crate::NormalizeKind;
    let n = Normalizer::fit_kind(NormalizeKind::Center, (1.0, 5.0), 3.5).unwrap();
    assert_eq!(n.forward(4.0), 0.5);
    let n = Normalizer::fit_kind(NormalizeKind::Max, (1.0, 5.0), 3.5).unwrap();
    assert_eq!(n.forward(5.0), 1.0);
    assert!(Normalizer::fit_kind(NormalizeKind::Minmax, (5.0, 5.0), 3.0).is_err());
    assert!(
        Normalizer::fit_kind(NormalizeKind::None, (1.0, 5.0), 3.0)
            .unwrap()
            .is_none()
    );
}

/// Found by the fuzzer (`delimited` target): string ids mixing numbers and text ("01", "1",
/// "0a") made the id order of `densify` inconsistent, and sorting panicked ("user-provided
/// comparison function does not correctly implement a total order").
#[test]
fn mixed_numeric_and_text_ids_sort_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.csv");
    let mut text = String::new();
    let ids = ["01", "1", "0a", "10", "9a", "9", "+9", "x", "001", "a1"];
    for (k, u) in ids.iter().enumerate() {
        for (j, i) in ids.iter().enumerate() {
            if (k + j) % 2 == 0 {
                text += &format!("{u},{i},{}\n", 1 + (k + j) % 5);
            }
        }
    }
    std::fs::write(&path, text).unwrap();
    let spec = crate::DelimitedSpec {
        string_ids: Some(true),
        ..Default::default()
    };
    let options = crate::LoadOptions {
        format: Some(crate::Format::Delimited(spec)),
        ..Default::default()
    };
    let ds = crate::load(&path, &options).unwrap();
    let users = ds.ids.users.raw_ids();
    assert_eq!(
        &users[..6],
        ["001", "01", "1", "+9", "9", "10"],
        "{users:?}"
    );
    assert_eq!(&users[6..], ["0a", "9a", "a1", "x"], "{users:?}");
    // The fuzzer's input, through the same entry point.
    let hex: String = [
        "282573653838303030303130310a7530312c2c33322c3838303030443a30340a36002c3175332c352c38383030303031",
        "30340a75322c3a30303a322c312c38383030d0cfcdcf339b9b9b9b9b9b9b9b9b709bdb9b9b9b9b30350a65342c30312c",
        "322c3838303030303430300a39332e2c3031752c332c38383030303034304d330a7534000010002c347e2c312c383830",
        "3030303430340a75352c322c322c38383030303030320a352c3575332c352c38383030d0cfcacf350a33752c352c312c",
        "cfcdcf339b9b9b9b9b9b9b9b9b9b9b9b9b9b9b9b31300a75342c312c322c3838303030303001303034363100ffffffff",
        "ffffffff0000320a75362c342c352c3875333830300000003838303030303130310a7540312c332c322c383830303030",
        "313031330a342c752c352c3838303030300a34333075312c3538322c312c38383030d0cfcdcf339b9b819b9b9bf89b9b",
        "709b9b310a312c372c322c3838303030303130330a312c342c352c383030303937383139340a323336352c332c302c38",
        "38303030303530330a322c352c312c383830b030303530350a362c39393939393939312c312c38383030307030303070",
        "3630310a362c322c342c383830360a3034303030362c302c332c389b9b9b9b30350a6547474747474747474747474747",
        "4747752c35362c332c383830303034304d330a7534000000002c343030474747750c31322c332c383830303030363035",
        "0a",
    ]
    .concat();
    let input: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap())
        .collect();
    let target = crate::fuzz::TARGETS
        .iter()
        .find(|t| t.name == "delimited")
        .unwrap();
    (target.run)(&input);
}
