//! Unit tests of the configuration: defaults from the owning types, the resolved round trip,
//! and errors that name the file and line.

use std::path::Path;

use arcface_data::Protocol;
use arcface_loss::{GradMode, Margin};

use super::TrainConfig;
use crate::optim::OptimizerConfig;
use crate::precision::Precision;
use crate::schedule::Decay;

const GOOD: &str = r#"
name = "t"
[data]
protocol = "dev"
[model]
backbone = "r18"
width = 8
input_size = 32
[loss]
margin = { kind = "arcface" }
[schedule]
lr = 0.1
[train]
epochs = 2
batch_size = 8
"#;

fn parse(text: &str) -> Result<TrainConfig, String> {
    TrainConfig::from_toml_str(text, Path::new("x.toml")).map_err(|e| e.to_string())
}

#[test]
fn defaults_come_from_the_owning_types() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.seed, 42);
    assert_eq!(c.loss.margin, Margin::from_name("arcface").unwrap());
    assert_eq!(c.loss.scale, arcface_loss::DEFAULT_SCALE);
    assert_eq!(c.loss.grad_mode, GradMode::Exact);
    assert_eq!(c.optim, OptimizerConfig::default());
    assert_eq!(c.schedule.decay, Decay::default());
    assert_eq!(c.train.precision, Precision::F32);
    assert_eq!(c.data.protocol, Protocol::Dev);
    assert_eq!(c.backbone_config().unwrap().layers, [2, 2, 2, 2]);
    // Each margin family's parameters default to the loss crate's usual values.
    let sphere = parse(&GOOD.replace(r#"kind = "arcface""#, r#"kind = "sphereface""#)).unwrap();
    assert_eq!(sphere.loss.margin, Margin::from_name("sphereface").unwrap());
    let adamw = parse(&format!("{GOOD}[optim]\nkind = \"adamw\"\n")).unwrap();
    assert_eq!(Some(adamw.optim), OptimizerConfig::from_name("adamw"));
}

#[test]
fn resolved_form_round_trips() {
    let text = GOOD
        .replace(r#"protocol = "dev""#, r#"protocol = "view2:3""#)
        .replace(r#"{ kind = "arcface" }"#, r#"{ kind = "combined", m1 = 1.0, m2 = 0.2, m3 = 0.1 }"#)
        .replace("lr = 0.1", "lr = 0.1\ndecay = { kind = \"step\", milestones = [1], gamma = 0.5 }");
    let c = parse(&text).unwrap();
    assert_eq!(c.data.protocol, Protocol::View2 { fold: 3 });
    let again = parse(&c.to_toml()).unwrap();
    assert_eq!(c, again);
}

#[test]
fn invalid_value_names_file_and_line() {
    let err = parse(&GOOD.replace("lr = 0.1", "lr = -1.0")).unwrap_err();
    assert!(err.starts_with("x.toml:12: invalid `schedule.lr`"), "{err}");
    let err = parse(&GOOD.replace("input_size = 32", "input_size = 30")).unwrap_err();
    assert!(err.starts_with("x.toml:8: invalid `model.input_size`"), "{err}");
    // A margin out of the loss crate's range: the line of `margin`.
    let err = parse(&GOOD.replace(r#"{ kind = "arcface" }"#, r#"{ kind = "arcface", m = 4.0 }"#)).unwrap_err();
    assert!(err.starts_with("x.toml:10: invalid `loss.margin`"), "{err}");
    // Zero epochs is named as such, not as a warm-up longer than the run.
    let err = parse(&GOOD.replace("epochs = 2", "epochs = 0")).unwrap_err();
    assert!(err.starts_with("x.toml:14: invalid `train.epochs`"), "{err}");
    let err = parse(&GOOD.replace(r#"protocol = "dev""#, r#"protocol = "pairs""#)).unwrap_err();
    assert!(err.starts_with("x.toml:4: invalid `data.protocol`"), "{err}");
}

#[test]
fn unknown_names_and_keys_are_rejected_with_their_line() {
    let err = parse(&GOOD.replace("epochs = 2", "epochz = 2")).unwrap_err();
    assert!(err.starts_with("x.toml:14:") && err.contains("epochz"), "{err}");
    // f16 is not a precision this crate trains in; it must not fall back to f32 silently.
    let err = parse(&GOOD.replace("batch_size = 8", "batch_size = 8\nprecision = \"f16\"")).unwrap_err();
    assert!(err.starts_with("x.toml:16:") && err.contains("f16"), "{err}");
    let err = parse(&GOOD.replace(r#"kind = "arcface""#, r#"kind = "arcfase""#)).unwrap_err();
    assert!(err.starts_with("x.toml:10:") && err.contains("arcfase"), "{err}");
    let err = parse(&GOOD.replace(r#"{ kind = "arcface" }"#, r#"{ kind = "arcface", mm = 0.1 }"#)).unwrap_err();
    assert!(err.starts_with("x.toml:10:") && err.contains("mm"), "{err}");
    let err = parse(&GOOD.replace(r#"protocol = "dev""#, r#"protocol = "view2:12""#)).unwrap_err();
    assert!(err.starts_with("x.toml:4:") && err.contains("12"), "{err}");
    let err = parse(&format!("{GOOD}[optim]\nkind = \"adam\"\n")).unwrap_err();
    assert!(err.starts_with("x.toml:17:") && err.contains("adam"), "{err}");
}
