//! What the model section of a [`TrainConfig`] means to the backbone crate. The other sections
//! already hold their owners' types.

use super::TrainConfig;

impl TrainConfig {
    /// The backbone shape, or why it is invalid.
    pub fn backbone_config(&self) -> std::result::Result<arcface_backbone::Config, String> {
        let m = &self.model;
        let base = arcface_backbone::Config::from_name(&m.backbone).ok_or_else(|| {
            format!("unknown backbone {:?} (expected r18, r34, r50 or r100)", m.backbone)
        })?;
        let cfg = arcface_backbone::Config {
            width: m.width,
            input_size: m.input_size,
            num_features: m.num_features,
            dropout: m.dropout,
            ..base
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
