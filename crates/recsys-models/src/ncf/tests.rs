//! Tests of GMF, MLP and NeuMF.

use super::*;

fn vec1<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn train() -> Interactions {
    Interactions::new(
        vec![0, 0, 1, 2, 3, 4],
        vec![0, 1, 2, 3, 4, 5],
        vec![5.0, 3.0, 4.0, 1.0, 2.0, 5.0],
        None,
        5,
        7,
    )
    .unwrap()
}

#[test]
fn training_hides_the_pairs_own_rating_from_rating_vectors() {
    let device = Device::flex();
    let m = NcfConfig::new(5, 7)
        .with_kind(NcfKind::Mlp)
        .with_input(NcfInput::RatingVectors)
        .with_mlp_layers(vec![8, 4])
        .init(&device)
        .unwrap()
        .with_inputs(&train());
    // User 1 has one rating (item 2): with it hidden, the user's row is all zeros, so the
    // user's vector is the projection of zeros, whatever the item.
    let (u, i) = (
        Tensor::from_ints([1], &device),
        Tensor::from_ints([2], &device),
    );
    let seen = m.side(u.clone(), true, None).mlp.unwrap();
    let hidden = m.side(u, true, Some(&i)).mlp.unwrap();
    let zeros = m
        .mlp_user
        .as_ref()
        .unwrap()
        .dense
        .as_ref()
        .unwrap()
        .forward(Tensor::<2>::zeros([1, 7], &device));
    assert_eq!(vec1(hidden), vec1(m.act(zeros)));
    assert_ne!(
        vec1(seen.clone()),
        vec1(
            m.side(Tensor::from_ints([3], &device), true, None)
                .mlp
                .unwrap()
        )
    );
}

#[test]
fn pretrained_neumf_combines_both_outputs() {
    let device = Device::flex();
    let base = |kind| {
        NcfConfig::new(5, 7)
            .with_kind(kind)
            .with_embedding_dim(3)
            .with_mlp_layers(vec![8, 4])
            .init(&device)
            .unwrap()
    };
    let (gmf, mlp) = (base(NcfKind::Gmf), base(NcfKind::Mlp));
    let users = Tensor::<1, Int>::from_ints([0, 3, 4], &device);
    let items = Tensor::<1, Int>::from_ints([1, 6, 2], &device);
    let zg = vec1(
        gmf.logits_with_penalty(users.clone(), items.clone(), false)
            .0,
    );
    let zm = vec1(
        mlp.logits_with_penalty(users.clone(), items.clone(), false)
            .0,
    );
    let neumf = base(NcfKind::Neumf)
        .from_pretrained(gmf, mlp, 0.25)
        .unwrap();
    let z = vec1(neumf.logits_with_penalty(users, items, false).0);
    for k in 0..3 {
        let want = 0.25 * zg[k] + 0.75 * zm[k];
        assert!((z[k] - want).abs() < 1e-5, "{} vs {want}", z[k]);
    }
    // Other sizes are refused.
    let other = NcfConfig::new(5, 7)
        .with_kind(NcfKind::Gmf)
        .with_embedding_dim(4)
        .init(&device)
        .unwrap();
    let err = base(NcfKind::Neumf)
        .from_pretrained(other, base(NcfKind::Mlp), 0.5)
        .unwrap_err();
    assert!(err.to_string().contains("factors"), "{err}");
}

#[test]
fn gmf_from_mf_gives_the_mf_logits() {
    let device = Device::flex();
    let mut mf = crate::MfConfig::new(5, 7)
        .with_embedding_dim(3)
        .with_bias(true)
        .with_output(MfOutput::Logit)
        .with_global_mean(0.3)
        .init(&device)
        .unwrap();
    // Non-zero biases, so they are exercised.
    let biases = |n: usize, s: f32| EmbeddingTable {
        weight: Param::from_data(
            TensorData::new((0..n).map(|k| s * (k as f32 + 1.0)).collect(), [n, 1]),
            &device,
        ),
    };
    mf.user_bias = Some(biases(5, 0.1));
    mf.item_bias = Some(biases(7, -0.2));
    let gmf = |dim| {
        NcfConfig::new(5, 7)
            .with_kind(NcfKind::Gmf)
            .with_embedding_dim(dim)
            .init(&device)
            .unwrap()
    };
    let users = Tensor::<1, Int>::from_ints([0, 3, 4, 1], &device);
    let items = Tensor::<1, Int>::from_ints([1, 6, 2, 0], &device);
    let want = vec1(mf.logits(users.clone(), items.clone()));
    let got = gmf(5).gmf_from_mf(&mf).unwrap();
    let got = vec1(got.logits_with_penalty(users, items, false).0);
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    // The width must be the factors + 2.
    let err = gmf(3).gmf_from_mf(&mf).unwrap_err();
    assert!(err.to_string().contains("factors + 2"), "{err}");
}

#[test]
fn bpr_batches_and_penalties() {
    let device = Device::flex();
    let m = NcfConfig::new(5, 7).with_l2(0.1).init(&device).unwrap();
    let batch = RatingBatch {
        users: Tensor::from_ints([0, 1], &device),
        items: Tensor::from_ints([1, 2], &device),
        ratings: Tensor::from_floats([1.0, 1.0], &device),
        negatives: Some(Tensor::from_ints([3, 4], &device)),
    };
    let out = m.loss(&batch);
    // Untrained logits are nearly equal: BPR starts near ln 2.
    let l = vec1(out.loss)[0];
    assert!((l - std::f32::consts::LN_2).abs() < 0.05, "{l}");
    assert!(vec1(out.penalty.unwrap())[0] > 0.0);
    assert!(
        NcfConfig::new(5, 7)
            .with_mlp_layers(vec![7, 2])
            .init(&device)
            .is_err()
    );
}
