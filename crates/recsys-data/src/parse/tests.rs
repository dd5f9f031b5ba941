//! Tests of the parser's number parsing.

use super::fields::{parse_f32, parse_i64, parse_id};

#[test]
fn numbers() {
    assert_eq!(parse_id(b"123"), Some(123));
    assert_eq!(parse_id(b"12a"), None);
    assert_eq!(parse_id(b""), None);
    assert_eq!(parse_id(b"99999999999"), None);
    assert_eq!(parse_f32(b"3.5"), Some(3.5));
    assert_eq!(parse_f32(b"4"), Some(4.0));
    assert_eq!(parse_f32(b"4.0"), Some(4.0));
    assert_eq!(parse_f32(b"0.5"), Some(0.5));
    assert_eq!(parse_f32(b"5e-1"), Some(0.5));
    assert_eq!(parse_f32(b"x"), None);
    assert_eq!(parse_f32(b"nan"), None);
    assert_eq!(parse_i64(b"-12"), Some(-12));
    assert_eq!(parse_i64(b"881250949"), Some(881250949));
}

/// Found by the fuzzer (`ml-100k`, `ml-csv` and `delimited` targets): a field of more than 20
/// digits overflowed the fast line parser's accumulator (a panic under overflow checks, as the
/// fuzz build has them). Such a line now goes to the general path, which reports it.
#[test]
fn ids_and_timestamps_of_many_digits_are_errors_not_overflows() {
    let long = "1".repeat(45);
    for (name, text) in [
        ("u.data", format!("1\t1\t1\t{long}\n")),
        ("u.data", format!("{long}\t1\t1\t1\n")),
        (
            "ratings.csv",
            format!("userId,movieId,rating,timestamp\n1,1,1,88{long}\n"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), &text).unwrap();
        let err = crate::load(&dir.path().join(name), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(name) && (err.contains(":1:") || err.contains(":2:")),
            "{err}"
        );
        // The fuzz entry point itself, as the fuzzer called it.
        let target = crate::fuzz::TARGETS
            .iter()
            .find(|t| t.name == "ml-100k")
            .unwrap();
        (target.run)(text.as_bytes());
    }
}
