//! Tests of the synthetic generator: shapes, presets, determinism and the CSV output.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::plan::{T_END, T_START};
use super::random::Alias;
use super::write::{half_star_text, push_csv_field, push_uint};
use super::*;

fn small() -> SynthConfig {
    SynthConfig::new(300, 500, 20_000).named("small")
}

fn check_shape(ds: &Dataset, cfg: &SynthConfig) {
    let x = &ds.interactions;
    assert_eq!(x.n_users, cfg.n_users);
    assert_eq!(x.n_items, cfg.n_items);
    assert_eq!(x.len(), cfg.n_ratings);
    assert_eq!(ds.ids.n_users(), cfg.n_users);
    assert_eq!(ds.ids.n_items(), cfg.n_items);
    assert_eq!(ds.items.len(), cfg.n_items);
    assert_eq!(ds.ids.users.raw_id(0), "1");
    assert_eq!(
        ds.ids.items.raw_id(cfg.n_items as u32 - 1),
        cfg.n_items.to_string()
    );
    // Validates lengths and index ranges.
    Interactions::new(
        x.users.clone(),
        x.items.clone(),
        x.ratings.clone(),
        x.timestamps.clone(),
        x.n_users,
        x.n_items,
    )
    .unwrap();

    let uc = x.user_counts();
    assert!(
        uc.iter().all(|&c| c >= 20),
        "min user count {}",
        uc.iter().min().unwrap()
    );
    assert!(
        x.item_counts().iter().all(|&c| c >= 1),
        "an item has no ratings"
    );

    let mut keys: Vec<u64> = x
        .users
        .iter()
        .zip(&x.items)
        .map(|(&u, &i)| Interactions::pair_key(u, i))
        .collect();
    keys.sort_unstable();
    assert!(
        keys.windows(2).all(|w| w[0] != w[1]),
        "duplicate (user, item) pair"
    );

    // Rows grouped by user, in time order, inside 1995..2015.
    let ts = x.timestamps.as_ref().unwrap();
    for r in 1..x.len() {
        assert!(x.users[r - 1] <= x.users[r]);
        if x.users[r - 1] == x.users[r] {
            assert!(
                ts[r - 1] < ts[r],
                "timestamps not increasing for user {}",
                x.users[r]
            );
        }
    }
    assert!(ts.iter().all(|&t| (T_START..T_END).contains(&t)));

    assert!(
        x.ratings
            .iter()
            .all(|&r| (0.5..=5.0).contains(&r) && (r * 2.0).fract() == 0.0)
    );
    let mean = x.mean_rating();
    let var = x
        .ratings
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / x.len() as f64;
    assert!((3.35..=3.65).contains(&mean), "mean rating {mean}");
    assert!(
        (0.85..=1.15).contains(&var.sqrt()),
        "rating std {}",
        var.sqrt()
    );
}

#[test]
fn preset_100k() {
    let cfg = SynthConfig::preset("100k").unwrap();
    assert_eq!(
        (cfg.n_users, cfg.n_items, cfg.n_ratings),
        (943, 1_682, 100_000)
    );
    let ds = generate(&cfg);
    check_shape(&ds, &cfg);
    assert_eq!(ds.source, "synthetic:100k");
    assert_eq!(ds.scale, (0.5, 5.0));
    assert_eq!(
        ds.title(16),
        Some(ds.items[16].as_ref().unwrap().title.as_str())
    );
    assert!(ds.title(16).unwrap().starts_with("Synthetic movie 17 ("));
    assert!(!ds.items[16].as_ref().unwrap().genres.is_empty());
}

#[test]
fn preset_1m() {
    let cfg = SynthConfig::preset("ml-1m").unwrap();
    assert_eq!(
        (cfg.n_users, cfg.n_items, cfg.n_ratings),
        (6_040, 3_706, 1_000_209)
    );
    check_shape(&generate(&cfg), &cfg);
}

#[test]
fn preset_20m_sizes_and_unknown_preset() {
    let cfg = SynthConfig::preset("20m").unwrap();
    assert_eq!(
        (cfg.n_users, cfg.n_items, cfg.n_ratings),
        (138_493, 26_744, 20_000_263)
    );
    cfg.validate().unwrap();
    let err = SynthConfig::preset("5m").unwrap_err().to_string();
    assert!(err.contains("100k, 1m, 20m"), "{err}");
}

/// The full 20M preset in memory (slow in debug builds): `cargo test --release -- --ignored`.
#[test]
#[ignore]
fn preset_20m_in_memory() {
    let cfg = SynthConfig::preset("20m").unwrap();
    let t = std::time::Instant::now();
    let ds = generate(&cfg);
    eprintln!("20m generated in {:.1?}", t.elapsed());
    check_shape(&ds, &cfg);
}

#[test]
fn deterministic_for_a_seed() {
    let cfg = small();
    let a = generate(&cfg);
    let b = generate(&cfg);
    assert_eq!(a, b);
    let c = generate(&cfg.clone().with_seed(7));
    assert_ne!(a.interactions, c.interactions);
}

#[test]
fn small_config_shape() {
    let cfg = small();
    check_shape(&generate(&cfg), &cfg);
}

#[test]
fn popularity_is_skewed() {
    let ds = generate(&SynthConfig::preset("100k").unwrap());
    let mut counts = ds.interactions.item_counts();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: u32 = counts[..counts.len() / 10].iter().sum();
    let share = top as f64 / ds.interactions.len() as f64;
    assert!(
        share > 0.3,
        "top 10% of items hold only {share:.2} of the ratings"
    );
    let most = ds.interactions.user_counts().into_iter().max().unwrap();
    assert!(most > 200, "most active user has only {most} ratings");
}

#[test]
fn invalid_configs_are_rejected() {
    assert!(SynthConfig::new(0, 10, 10).validate().is_err());
    assert!(SynthConfig::new(10, 10, 5).validate().is_err());
    // 10 users x 6 items each (60% of 10) = 60 ratings at most.
    assert!(SynthConfig::new(10, 10, 61).validate().is_err());
    let tight = SynthConfig::new(10, 10, 60);
    tight.validate().unwrap();
    let ds = generate(&tight);
    assert_eq!(ds.interactions.user_counts(), vec![6; 10]);
}

#[test]
fn tiny_configs_cover_every_item() {
    // Fewer ratings per user than the MovieLens floor of 20, more items than ratings per user.
    let cfg = SynthConfig::new(50, 400, 600);
    let ds = generate(&cfg);
    let x = &ds.interactions;
    assert_eq!(x.len(), 600);
    assert!(x.user_counts().iter().all(|&c| c >= 12));
    assert!(x.item_counts().iter().all(|&c| c >= 1));
}

#[test]
fn csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = small();
    cfg.write_movies = true;
    let path = dir.path().join("ratings.csv");
    assert_eq!(write_ml20m_csv(&cfg, &path).unwrap(), cfg.n_ratings as u64);
    let ds = generate(&cfg);
    let x = &ds.interactions;

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("userId,movieId,rating,timestamp\n"));
    assert!(text.ends_with('\n') && !text.contains('\r'));
    let mut reader = csv::Reader::from_path(&path).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["userId", "movieId", "rating", "timestamp"]
    );
    let mut rows = 0;
    for (k, rec) in reader.records().enumerate() {
        let rec = rec.unwrap();
        assert_eq!(rec[0].parse::<u32>().unwrap(), x.users[k] + 1);
        assert_eq!(rec[1].parse::<u32>().unwrap(), x.items[k] + 1);
        assert!(
            rec[2].contains('.'),
            "rating {:?} not written like 3.5",
            &rec[2]
        );
        assert_eq!(rec[2].parse::<f32>().unwrap(), x.ratings[k]);
        assert_eq!(
            rec[3].parse::<i64>().unwrap(),
            x.timestamps.as_ref().unwrap()[k]
        );
        rows += 1;
    }
    assert_eq!(rows, cfg.n_ratings);

    let mut reader = csv::Reader::from_path(dir.path().join("movies.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec!["movieId", "title", "genres"]
    );
    let mut n = 0;
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.unwrap();
        let info = ds.items[i].as_ref().unwrap();
        assert_eq!(rec[0].parse::<usize>().unwrap(), i + 1);
        assert_eq!(&rec[1], info.title);
        assert_eq!(rec[2].split('|').collect::<Vec<_>>(), info.genres);
        n += 1;
    }
    assert_eq!(n, cfg.n_items);
    let movies = std::fs::read_to_string(dir.path().join("movies.csv")).unwrap();
    assert!(
        movies.contains("\n10,\"Synthetic movie 10, The ("),
        "titles with commas are quoted"
    );

    // Nothing but the two files (no temporary files left).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn csv_without_movies() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SynthConfig::new(30, 40, 700);
    cfg.write_movies = false;
    let path = dir.path().join("r.csv");
    write_ml20m_csv(&cfg, &path).unwrap();
    assert!(!dir.path().join("movies.csv").exists());
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 701);
}

#[test]
fn alias_table_matches_weights() {
    let w = [1.0, 2.0, 3.0, 4.0];
    let a = Alias::new(&w);
    let mut rng = StdRng::seed_from_u64(1);
    let mut hits = [0usize; 4];
    for _ in 0..100_000 {
        hits[a.sample(&mut rng) as usize] += 1;
    }
    for (h, w) in hits.iter().zip(w) {
        let p = *h as f64 / 100_000.0;
        assert!((p - w / 10.0).abs() < 0.01, "{hits:?}");
    }
}

#[test]
fn number_formatting() {
    let mut v = Vec::new();
    push_uint(&mut v, 0);
    v.push(b' ');
    push_uint(&mut v, 1_112_486_027);
    assert_eq!(v, b"0 1112486027");
    assert_eq!(half_star_text(3.5), "3.5");
    assert_eq!(half_star_text(4.0), "4.0");
    let mut s = String::new();
    push_csv_field(&mut s, "a \"b\", c");
    assert_eq!(s, "\"a \"\"b\"\", c\"");
}
