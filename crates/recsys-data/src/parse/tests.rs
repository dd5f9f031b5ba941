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
