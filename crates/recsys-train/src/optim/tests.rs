use super::*;

#[test]
fn adagrad_accumulator_starts_at_its_initial_value() {
    // One parameter 1.0, gradient 0.5 twice, lr 0.1, accumulator from 0.1 (Keras).
    let device = Device::flex();
    let o = AccumulatorAdagrad {
        lr_decay: 0.0,
        epsilon: 0.0,
        initial_accumulator: 0.1,
        weight_decay: 0.0,
    };
    let g = || Tensor::<1>::from_floats([0.5], &device);
    let (p, s) = o.step(0.1, Tensor::from_floats([1.0], &device), g(), None);
    let (p, _) = o.step(0.1, p, g(), s);
    let a1 = 0.1f32 + 0.25;
    let a2 = a1 + 0.25;
    let want = 1.0 - 0.1 * 0.5 / a1.sqrt() - 0.1 * 0.5 / a2.sqrt();
    let got = p.into_data().try_into_vec_as::<f32>().unwrap()[0];
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
}

#[test]
fn toml_round_trip_and_defaults() {
    let text = r#"
        lr = 0.01
        weight_decay = 0.001
        algorithm = { name = "sgd", momentum = 0.9 }
        schedule = { name = "step", every_epochs = 2, gamma = 0.5 }
        grad_clip = { norm = 1.0 }
    "#;
    let c: OptimizerConfig = toml::from_str(text).unwrap();
    assert_eq!(
        c.algorithm,
        Algorithm::Sgd {
            momentum: 0.9,
            nesterov: false
        }
    );
    assert_eq!(c.grad_clip, Some(GradClip::Norm(1.0)));
    let back: OptimizerConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    let d: OptimizerConfig = toml::from_str("algorithm = { name = \"adamw\" }").unwrap();
    assert_eq!(d.lr, 1e-3);
    assert!(matches!(d.algorithm, Algorithm::AdamW { beta_1, .. } if beta_1 == 0.9));
    // A name alone means the same settings whether given in a file or by `--optimizer`.
    for (name, text) in [
        (OptimizerName::Adam, "adam"),
        (OptimizerName::Adamw, "adamw"),
        (OptimizerName::Rmsprop, "rmsprop"),
        (OptimizerName::Adagrad, "adagrad"),
        (OptimizerName::Sgd, "sgd"),
    ] {
        let c: OptimizerConfig =
            toml::from_str(&format!("algorithm = {{ name = \"{text}\" }}")).unwrap();
        assert_eq!(c.algorithm, Algorithm::named(name), "{text}");
    }
}

#[test]
fn every_algorithm_and_schedule_builds() {
    let algorithms: Vec<Algorithm> = ["adam", "adamw", "rmsprop", "adagrad", "sgd"]
        .iter()
        .map(|n| toml::from_str(&format!("name = \"{n}\"")).unwrap())
        .collect();
    for algorithm in algorithms {
        for schedule in [
            LrSchedule::Constant,
            LrSchedule::Step {
                every_epochs: 1,
                gamma: 0.5,
            },
            LrSchedule::Cosine { min_lr: 0.0 },
        ] {
            let c = OptimizerConfig {
                lr: 0.01,
                weight_decay: 0.01,
                algorithm: algorithm.clone(),
                schedule,
                grad_clip: Some(GradClip::Value(1.0)),
                lazy: false,
            };
            c.init().unwrap();
            c.scheduler(3, 4).unwrap();
        }
    }
}

#[test]
fn schedules_follow_their_formulas() {
    let c = OptimizerConfig {
        lr: 0.1,
        schedule: LrSchedule::Step {
            every_epochs: 1,
            gamma: 0.5,
        },
        ..Default::default()
    };
    let mut s = c.scheduler(3, 2).unwrap();
    let lrs: Vec<f64> = (0..5).map(|_| s.step().base()).collect();
    let want = [0.1, 0.1, 0.05, 0.05, 0.025];
    for (a, b) in lrs.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{lrs:?}");
    }
    let c = OptimizerConfig {
        lr: 0.1,
        schedule: LrSchedule::Cosine { min_lr: 0.0 },
        ..Default::default()
    };
    let mut s = c.scheduler(2, 2).unwrap();
    let lrs: Vec<f64> = (0..4).map(|_| s.step().base()).collect();
    assert!((lrs[0] - 0.1).abs() < 1e-12 && lrs[3] < lrs[1], "{lrs:?}");
}

#[test]
fn lazy_adam_moves_only_the_rows_in_the_batch() {
    use burn::optim::GradientsParams;
    use burn::tensor::Int;
    use recsys_models::{EmbeddingTable, EmbeddingTableConfig};

    let device = Device::flex().autodiff();
    let rows = |t: &EmbeddingTable| -> Vec<Vec<f32>> {
        let v = t.table().into_data().try_into_vec_as::<f32>().unwrap();
        v.chunks(2).map(|c| c.to_vec()).collect()
    };
    let step = |optim: &mut ModuleOptimizer, t: EmbeddingTable, idx: [i64; 2]| {
        let loss = t
            .lookup(Tensor::<1, Int>::from_ints(idx, &device))
            .sub_scalar(1.0)
            .square()
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &t);
        optim.step(0.1, t, grads)
    };
    for lazy in [false, true] {
        let config = OptimizerConfig {
            lr: 0.1,
            weight_decay: 0.01,
            lazy,
            ..Default::default()
        };
        let mut optim = config.init().unwrap();
        let table = EmbeddingTableConfig::new(4, 2).with_seed(3).init(&device);
        let start = rows(&table);
        let table = step(&mut optim, table, [0, 2]);
        let after_1 = rows(&table);
        assert_ne!(after_1[0], start[0]);
        assert_ne!(after_1[2], start[2]);
        let table = step(&mut optim, table, [1, 1]);
        let after_2 = rows(&table);
        assert_ne!(after_2[1], after_1[1]);
        if lazy {
            assert_eq!(after_2[3], start[3], "row 3 never looked up moved");
            assert_eq!(after_2[0], after_1[0], "absent row 0 moved");
            assert_eq!(after_2[2], after_1[2], "absent row 2 moved");
        } else {
            // Dense Adam keeps pushing rows 0 and 2 with their stale momentum, and weight
            // decay moves every row.
            assert_ne!(after_2[0], after_1[0]);
            assert_ne!(after_2[3], start[3]);
        }
    }
}

#[test]
fn lazy_adam_matches_adam_on_dense_gradients() {
    let c = OptimizerConfig {
        lazy: true,
        algorithm: Algorithm::Sgd {
            momentum: 0.0,
            nesterov: false,
        },
        ..Default::default()
    };
    assert!(c.init().is_err(), "lazy is adam only");
    let t: OptimizerConfig = toml::from_str("lazy = true").unwrap();
    assert!(t.lazy && t.init().is_ok());
    let lazy = LazyAdam {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    };
    let dense = AdamConfig::new().with_epsilon(1e-8).build();
    let device = Device::flex();
    let mut x = Tensor::<1>::from_floats([1.0, -2.0, 0.5], &device);
    let mut y = x.clone();
    let (mut sl, mut sd) = (None, None);
    for g in [[0.3f32, -0.1, 2.0], [0.1, 0.2, -0.5], [-1.0, 0.4, 0.2]] {
        let g = Tensor::<1>::from_floats(g, &device);
        (x, sl) = lazy.step(0.01, x, g.clone(), sl);
        (y, sd) = dense.step(0.01, y, g, sd);
    }
    let (x, y) = (
        x.into_data().try_into_vec_as::<f32>().unwrap(),
        y.into_data().try_into_vec_as::<f32>().unwrap(),
    );
    for (a, b) in x.iter().zip(&y) {
        assert!((a - b).abs() < 1e-6, "{x:?} vs {y:?}");
    }
}

#[test]
fn invalid_settings_are_errors() {
    let c = OptimizerConfig {
        lr: 0.0,
        ..Default::default()
    };
    assert!(c.init().is_err());
    let c = OptimizerConfig {
        grad_clip: Some(GradClip::Norm(-1.0)),
        ..Default::default()
    };
    assert!(c.init().is_err());
}

/// The one-pass Adam of the CPU backends gives Burn's Adam's values and state, with and without
/// weight decay, from a first step on.
#[test]
fn fused_adam_is_burns_adam() {
    use rand::{Rng, SeedableRng};
    let device = Device::flex();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let tensor =
        |v: Vec<f32>| Tensor::<2>::from_data(burn::tensor::TensorData::new(v, [40, 6]), &device);
    let values = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
    for weight_decay in [0.0, 0.01] {
        let config = AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay((weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay)));
        let composed = config.build();
        let fused = FusedAdam {
            composed: config.build(),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay,
        };
        let start = draw(240);
        let (mut a, mut b) = (tensor(start.clone()), tensor(start));
        let (mut sa, mut sb) = (None, None);
        for step in 0..6 {
            let g = draw(240);
            let lr = 0.01 / (step + 1) as f64;
            (a, sa) = composed.step(lr, a, tensor(g.clone()), sa);
            (b, sb) = fused.step(lr, b, tensor(g), sb);
            assert_eq!(
                values(a.clone()),
                values(b.clone()),
                "step {step}, wd {weight_decay}"
            );
        }
        let (sa, sb) = (sa.unwrap().momentum, sb.unwrap().momentum);
        assert_eq!(sa.time, sb.time);
        assert_eq!(values(sa.moment_1), values(sb.moment_1));
        assert_eq!(values(sa.moment_2), values(sb.moment_2));
    }
}
