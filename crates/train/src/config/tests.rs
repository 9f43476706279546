//! Unit tests of the configuration: defaults, the resolved round trip, error lines.

use std::path::Path;

use super::TrainConfig;

const GOOD: &str = r#"
name = "t"
[data]
protocol = "dev"
[model]
backbone = "r18"
width = 8
input_size = 32
[loss]
kind = "arcface"
[optim]
lr = 0.1
[train]
epochs = 2
batch_size = 8
"#;

#[test]
fn defaults_fill_in() {
    let c = TrainConfig::from_toml_str(GOOD, Path::new("g.toml")).unwrap();
    assert_eq!(c.seed, 42);
    assert_eq!(c.schedule.kind, "poly");
    assert_eq!(c.margin_value(), 0.5);
    assert_eq!(c.backbone_config().unwrap().layers, [2, 2, 2, 2]);
    // The resolved form parses back to the same value.
    let again = TrainConfig::from_toml_str(&c.to_toml(), Path::new("r.toml")).unwrap();
    assert_eq!(c, again);
}

#[test]
fn invalid_value_names_file_and_line() {
    let bad = GOOD.replace("lr = 0.1", "lr = -1.0");
    let err = TrainConfig::from_toml_str(&bad, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("x.toml:12: invalid `optim.lr`"), "{err}");
    let bad = GOOD.replace("input_size = 32", "input_size = 30");
    let err = TrainConfig::from_toml_str(&bad, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("x.toml:8: invalid `model.input_size`"),
        "{err}"
    );
}

#[test]
fn unknown_key_names_line() {
    let bad = GOOD.replace("epochs = 2", "epochz = 2");
    let err = TrainConfig::from_toml_str(&bad, Path::new("y.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("y.toml:14:"), "{err}");
    assert!(err.contains("epochz"), "{err}");
}
