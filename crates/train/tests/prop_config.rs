//! Property tests: no configuration text makes the loader panic. Arbitrary text, and the
//! bundled presets with values swapped for hostile ones (huge, negative, NaN, wrong types),
//! lines dropped or repeated, either load or fail naming the file; what loads writes back as
//! TOML that loads to the same value.

use std::path::Path;

use arcface_train::config::PRESETS;
use arcface_train::{TrainConfig, TrainError};
use proptest::prelude::*;

fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551615".to_string()),
        Just("1e400".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        (-10.0f64..10.0).prop_map(|v| format!("{v:?}")),
        Just("true".to_string()),
        "\"\\PC{0,8}\"",
        Just("[1, 2]".to_string()),
        Just("{ kind = \"nope\" }".to_string()),
        Just("{ kind = \"arcface\", m = -3.0 }".to_string()),
        Just("\"view2:99999999999999999999\"".to_string()),
    ]
}

/// Line edits: keep, replace the value, drop, or repeat.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Value(String),
    Drop,
    Repeat,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        40 => Just(Edit::Keep),
        2 => hostile_value().prop_map(Edit::Value),
        1 => Just(Edit::Drop),
        1 => Just(Edit::Repeat),
    ]
}

fn mutated_preset() -> impl Strategy<Value = String> {
    (0..PRESETS.len(), prop::collection::vec(edit(), 64)).prop_map(|(p, edits)| {
        let mut out = Vec::new();
        for (line, e) in PRESETS[p].1.lines().zip(edits.iter().cycle()) {
            match (e, line.split_once(" = ")) {
                (Edit::Value(v), Some((key, _))) => out.push(format!("{key} = {v}")),
                (Edit::Drop, _) => {}
                (Edit::Repeat, _) => out.extend([line.to_string(), line.to_string()]),
                _ => out.push(line.to_string()),
            }
        }
        out.join("\n")
    })
}

fn check(text: &str) {
    let origin = Path::new("hostile.toml");
    match TrainConfig::from_toml_str(text, origin) {
        Ok(cfg) => {
            let back = TrainConfig::from_toml_str(&cfg.to_toml(), origin).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, cfg, "{text}");
        }
        Err(e @ (TrainError::ConfigParse { .. } | TrainError::ConfigInvalid { .. })) => {
            assert!(e.to_string().contains("hostile.toml"), "{e}")
        }
        Err(e) => panic!("a config error of another kind: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        check(&text);
    }

    #[test]
    fn mutated_presets_never_panic(text in mutated_preset()) {
        check(&text);
    }

    #[test]
    fn any_spec_without_a_path_never_panics(spec in "[^/\\\\]{0,20}") {
        let _ = TrainConfig::from_spec(&spec);
    }
}
