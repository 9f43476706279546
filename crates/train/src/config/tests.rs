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
    assert_eq!((c.loss.sub_centers, c.loss.label_smoothing), (1, 0.0));
    assert_eq!(c.train.validate_every, 1);
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
    // Head options and the validation period, on their own lines after the margin (line 10).
    let loss = |extra: &str| GOOD.replace(r#"{ kind = "arcface" }"#, &format!("{{ kind = \"arcface\" }}\n{extra}"));
    let err = parse(&loss("sub_centers = 0")).unwrap_err();
    assert!(err.starts_with("x.toml:11: invalid `loss.sub_centers`"), "{err}");
    let err = parse(&loss("label_smoothing = 1.5")).unwrap_err();
    assert!(err.starts_with("x.toml:11: invalid `loss.label_smoothing`"), "{err}");
    let ok = parse(&loss("sub_centers = 3\nlabel_smoothing = 0.1")).unwrap();
    assert_eq!((ok.loss.sub_centers, ok.loss.label_smoothing), (3, 0.1));
    let err = parse(&GOOD.replace("batch_size = 8", "batch_size = 8\nvalidate_every = 0")).unwrap_err();
    assert!(err.starts_with("x.toml:16: invalid `train.validate_every`"), "{err}");
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

/// Every `[augment]` key, as documented in the README's Configs section.
const AUGMENT: &str = r#"[augment]
scale = [0.8, 1.0]
aspect = [0.9, 1.1]
translate = 0.05
rotate = 10.0
border = "replicate"
brightness = 0.2
contrast = 0.2
saturation = 0.2
grayscale = 0.1
blur = 0.2
blur_sigma = [0.5, 1.5]
"#;

#[test]
fn augment_table_absent_means_flip_only() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.augment, arcface_data::Augment::default());
    assert!(c.data.flip);
    assert!(!parse(&GOOD.replace(r#"protocol = "dev""#, "protocol = \"dev\"\nflip = false")).unwrap().data.flip);
}

#[test]
fn augment_table_parses_and_round_trips() {
    let c = parse(&format!("{GOOD}{AUGMENT}")).unwrap();
    let a = c.augment;
    assert_eq!((a.scale, a.aspect, a.translate, a.rotate), ([0.8, 1.0], [0.9, 1.1], 0.05, 10.0));
    assert_eq!(a.border, arcface_data::Border::Replicate);
    assert_eq!((a.brightness, a.contrast, a.saturation), (0.2, 0.2, 0.2));
    assert_eq!((a.grayscale, a.blur, a.blur_sigma), (0.1, 0.2, [0.5, 1.5]));
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
    // Keys left out keep the data crate's defaults; integers are accepted as numbers.
    let some = parse(&format!("{GOOD}[augment]\nrotate = 5\n")).unwrap().augment;
    assert_eq!(some, arcface_data::Augment { rotate: 5.0, ..Default::default() });
}

#[test]
fn augment_errors_name_the_key_and_line() {
    let text = format!("{GOOD}{AUGMENT}");
    // The table starts on line 16; `scale` is line 17, `rotate` 20, `blur_sigma` 27.
    let err = parse(&text.replace("scale = [0.8, 1.0]", "scale = [1.2, 0.8]")).unwrap_err();
    assert!(err.starts_with("x.toml:17: invalid `augment.scale`"), "{err}");
    let err = parse(&text.replace("rotate = 10.0", "rotate = 200.0")).unwrap_err();
    assert!(err.starts_with("x.toml:20: invalid `augment.rotate`") && err.contains("180"), "{err}");
    let err = parse(&text.replace("grayscale = 0.1", "grayscale = 1.1")).unwrap_err();
    assert!(err.starts_with("x.toml:25: invalid `augment.grayscale`"), "{err}");
    let err = parse(&text.replace("blur_sigma = [0.5, 1.5]", "blur_sigma = [0.0, 1.5]")).unwrap_err();
    assert!(err.starts_with("x.toml:27: invalid `augment.blur_sigma`"), "{err}");
    // A table of one key: that key's line.
    let err = parse(&format!("{GOOD}[augment]\ntranslate = 0.9\n")).unwrap_err();
    assert!(err.starts_with("x.toml:17: invalid `augment.translate`"), "{err}");
    // Unknown keys and names are serde's errors, with their line.
    let err = parse(&text.replace("rotate = 10.0", "rotation = 10.0")).unwrap_err();
    assert!(err.starts_with("x.toml:20:") && err.contains("rotation"), "{err}");
    let err = parse(&text.replace(r#"border = "replicate""#, r#"border = "wrap""#)).unwrap_err();
    assert!(err.starts_with("x.toml:21:") && err.contains("wrap"), "{err}");
    let err = parse(&text.replace("scale = [0.8, 1.0]", "scale = 0.8")).unwrap_err();
    assert!(err.starts_with("x.toml:17:"), "{err}");
}
