use super::Row;

#[test]
fn rows_with_undefined_metrics_survive_a_json_round_trip() {
    let r = Row {
        keys: vec![("devices".into(), "2".into())],
        metrics: vec![
            ("a".into(), 1.5),
            ("b".into(), f64::NAN),
            ("c".into(), f64::INFINITY),
            ("d".into(), f64::NEG_INFINITY),
        ],
    };
    let back: Row = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.metrics[0], ("a".into(), 1.5));
    assert!(back.metrics[1].1.is_nan());
    assert_eq!(back.metrics[2].1, f64::INFINITY);
    assert_eq!(back.metrics[3].1, f64::NEG_INFINITY);
    // files written before (NaN as null) still load
    let old: Row = serde_json::from_str(r#"{"keys":[],"metrics":[["x",null],["y",2.0]]}"#).unwrap();
    assert!(old.metrics[0].1.is_nan() && old.metrics[1].1 == 2.0);
}
