//! IResNet configuration: depth, width, input size and embedding size, with the
//! InsightFace presets and closed-form parameter and MAC counts.
//!
//! Reference: InsightFace `recognition/arcface_torch/backbones/iresnet.py` (Duta et al.,
//! "Improved Residual Networks", 2020, as used by Deng et al., "ArcFace", CVPR 2019).

use serde::{Deserialize, Serialize};

/// Largest input side [`Config::validate`] accepts: about nine times the standard 112, where
/// one batch's activations already outgrow a large machine; beyond it is a typo, not a model.
pub const MAX_INPUT_SIZE: usize = 1024;

/// Largest parameter count [`Config::validate`] accepts (2^31, 8 GiB of f32 weights, thirty
/// times r100): a larger width, depth or embedding would abort on allocation instead of
/// training, and the counts stay exact well within u64.
pub const MAX_PARAMS: u64 = 1 << 31;

/// Shape of an IResNet; the standard models use `width = 64`, `input_size = 112`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Number of basic blocks in each of the four stages.
    pub layers: [usize; 4],
    /// Channels of the stem and of the first stage; stages use `width * [1, 2, 4, 8]`.
    pub width: usize,
    /// Side of the square input image; must be a positive multiple of 16.
    pub input_size: usize,
    /// Size of the output embedding.
    pub num_features: usize,
    /// Dropout probability before the FC layer (training only).
    pub dropout: f32,
}

impl Config {
    fn preset(layers: [usize; 4]) -> Self {
        Self { layers, width: 64, input_size: 112, num_features: 512, dropout: 0.0 }
    }

    /// IResNet-18: stages `[2, 2, 2, 2]`.
    pub fn ir18() -> Self {
        Self::preset([2, 2, 2, 2])
    }

    /// IResNet-34: stages `[3, 4, 6, 3]`.
    pub fn ir34() -> Self {
        Self::preset([3, 4, 6, 3])
    }

    /// IResNet-50: stages `[3, 4, 14, 3]`.
    pub fn ir50() -> Self {
        Self::preset([3, 4, 14, 3])
    }

    /// IResNet-100: stages `[3, 13, 30, 3]`.
    pub fn ir100() -> Self {
        Self::preset([3, 13, 30, 3])
    }

    /// Preset by InsightFace name: `r18`, `r34`, `r50`, `r100` (also `ir50`, `iresnet50`).
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let depth = lower
            .strip_prefix("iresnet")
            .or_else(|| lower.strip_prefix("ir"))
            .or_else(|| lower.strip_prefix('r'))?;
        match depth {
            "18" => Some(Self::ir18()),
            "34" => Some(Self::ir34()),
            "50" => Some(Self::ir50()),
            "100" => Some(Self::ir100()),
            _ => None,
        }
    }

    /// Same config with another stem width (stages scale with it).
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Same config with another input side.
    pub fn with_input_size(mut self, input_size: usize) -> Self {
        self.input_size = input_size;
        self
    }

    /// Checks the invariants the network relies on; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.layers.contains(&0) {
            return Err(format!("every stage needs at least one block, got {:?}", self.layers));
        }
        if self.width == 0 {
            return Err("width must be positive".into());
        }
        if self.input_size == 0 || self.input_size % 16 != 0 {
            return Err(format!(
                "input_size must be a positive multiple of 16 (four stride-2 stages), got {}",
                self.input_size
            ));
        }
        if self.num_features == 0 {
            return Err("num_features must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.input_size > MAX_INPUT_SIZE {
            return Err(format!(
                "input_size must be at most {MAX_INPUT_SIZE} (the standard models take 112), got {}",
                self.input_size
            ));
        }
        let params = self.counts().map(|(p, _)| p);
        if params.is_none_or(|p| p > MAX_PARAMS as u128) {
            let shown = params.map_or("too many to count".into(), |p| p.to_string());
            return Err(format!(
                "the model would have {shown} parameters (width {}, layers {:?}, num_features {}); \
                 at most {MAX_PARAMS} are supported (r100 at width 64 has 65 M)",
                self.width, self.layers, self.num_features
            ));
        }
        Ok(())
    }

    /// Channels of stage `i` (0-based).
    pub fn stage_channels(&self, i: usize) -> usize {
        self.width << i
    }

    /// Side of the last feature map (`input_size / 16`).
    pub fn final_side(&self) -> usize {
        self.input_size / 16
    }

    /// Input size of the FC layer: `8 * width * (input_size / 16)^2`.
    pub fn fc_in(&self) -> usize {
        self.stage_channels(3) * self.final_side() * self.final_side()
    }

    /// Parameter count as PyTorch's `sum(p.numel() for p in model.parameters())`: this
    /// includes the frozen `features.weight` and excludes BatchNorm running statistics.
    /// Exact for a config [`Config::validate`] accepts; saturates (never wraps) beyond.
    pub fn num_params(&self) -> usize {
        self.counts().map_or(usize::MAX, |(p, _)| usize::try_from(p).unwrap_or(usize::MAX))
    }

    /// Multiply-accumulates per image of the convolutions and the FC layer (BatchNorm,
    /// PReLU and additions are not counted, as in InsightFace's reported GFLOPs).
    /// Exact for a config [`Config::validate`] accepts; saturates (never wraps) beyond.
    pub fn macs(&self) -> u64 {
        self.counts().map_or(u64::MAX, |(_, m)| u64::try_from(m).unwrap_or(u64::MAX))
    }

    /// Parameters and MACs in closed form (no loop over blocks, so an absurd depth costs
    /// nothing), or `None` for sizes so large that even u128 could overflow. Below those bounds
    /// (channels < 2^27, sides < 2^24, blocks < 2^16) every term stays under 2^124.
    fn counts(&self) -> Option<(u128, u128)> {
        let small = |x: usize, bits: u32| (x as u128) < (1u128 << bits);
        let fits = small(self.width, 24) && small(self.input_size, 24) && small(self.num_features, 24);
        if !fits || !self.layers.iter().all(|&b| small(b, 16)) {
            return None;
        }
        let bn = |c: u128| 2 * c;
        let w = self.width as u128;
        let mut side = self.input_size as u128;
        let mut params = 3 * w * 9 + bn(w) + w;
        let mut macs = 3 * w * 9 * side * side;
        let mut inp = w;
        for (i, &blocks) in self.layers.iter().enumerate() {
            let p = w << i;
            let blocks = blocks as u128;
            // Every stage starts with a stride-2 block, hence a projection shortcut.
            let first = bn(inp) + inp * p * 9 + bn(p) + p + p * p * 9 + bn(p) + inp * p + bn(p);
            let rest = bn(p) + p * p * 9 + bn(p) + p + p * p * 9 + bn(p);
            if blocks > 0 {
                let out = side / 2;
                params += first + (blocks - 1) * rest;
                macs += inp * p * 9 * side * side + p * p * 9 * out * out + inp * p * out * out;
                macs += (blocks - 1) * 2 * p * p * 9 * out * out;
                (inp, side) = (p, out);
            }
        }
        let nf = self.num_features as u128;
        let fc_in = (w << 3) * (self.input_size as u128 / 16).pow(2);
        Some((params + bn(inp) + fc_in * nf + nf + bn(nf), macs + fc_in * nf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_presets() {
        assert_eq!(Config::from_name("r50"), Some(Config::ir50()));
        assert_eq!(Config::from_name("IR100"), Some(Config::ir100()));
        assert_eq!(Config::from_name("iresnet34"), Some(Config::ir34()));
        assert_eq!(Config::from_name("r18").map(|c| c.layers), Some([2, 2, 2, 2]));
        assert_eq!(Config::from_name("r101"), None);
        assert_eq!(Config::from_name("resnet"), None);
    }

    #[test]
    fn validation_rejects_bad_shapes() {
        assert!(Config::ir50().validate().is_ok());
        assert!(Config::ir50().with_input_size(100).validate().is_err());
        assert!(Config::ir50().with_width(0).validate().is_err());
        assert!(Config { layers: [0, 1, 1, 1], ..Config::ir18() }.validate().is_err());
        assert!(Config { dropout: 1.0, ..Config::ir18() }.validate().is_err());
    }

    #[test]
    fn absurd_sizes_are_refused_and_counts_never_wrap() {
        // Before: width 10^14 wrapped to 9586298696737015296 parameters in a release build
        // (and panicked on overflow in a debug one).
        for cfg in [
            Config::ir50().with_width(100_000_000_000_000),
            Config::ir50().with_width(usize::MAX),
            Config::ir50().with_width(4096),
            Config { layers: [usize::MAX, 1, 1, 1], ..Config::ir18() },
            Config { num_features: usize::MAX / 2, ..Config::ir18() },
        ] {
            let e = cfg.validate().unwrap_err();
            assert!(e.contains("parameters") && e.contains("at most 2147483648"), "{cfg:?}: {e}");
            assert!(cfg.num_params() >= MAX_PARAMS as usize, "{cfg:?}");
        }
        let e = Config::ir50().with_input_size(160_000_000_000).validate().unwrap_err();
        assert!(e.contains("input_size must be at most 1024"), "{e}");
        assert_eq!(Config::ir50().with_input_size(usize::MAX - 15).macs(), u64::MAX);
        // Large but accepted shapes count exactly (below u64's range, no saturation).
        for big in [Config::ir100().with_width(256), Config::ir100().with_input_size(MAX_INPUT_SIZE)] {
            assert!(big.validate().is_ok(), "{big:?}");
            assert!(big.num_params() < MAX_PARAMS as usize && big.macs() < u64::MAX / 1024);
        }
    }

    #[test]
    fn fc_input_matches_insightface() {
        // InsightFace: Linear(512 * 7 * 7, 512) at 112x112.
        assert_eq!(Config::ir50().fc_in(), 512 * 49);
        assert_eq!(Config::ir18().with_width(16).with_input_size(32).fc_in(), 128 * 4);
    }

    // Expected values from PyTorch (tests/fixtures/make_fixture.py --counts):
    // sum(p.numel() for p in model.parameters()) and conv/linear MACs via forward hooks.
    #[test]
    fn counts_match_pytorch() {
        assert_eq!(Config::ir18().num_params(), 24_025_600);
        assert_eq!(Config::ir34().num_params(), 34_139_328);
        assert_eq!(Config::ir50().num_params(), 43_590_848);
        assert_eq!(Config::ir100().num_params(), 65_156_160);
        assert_eq!(Config::ir50().macs(), 6_309_330_944);
        assert_eq!(Config::ir34().macs(), 4_459_642_880);
        assert_eq!(Config::ir18().macs(), 2_609_954_816);
        assert_eq!(Config::ir100().macs(), 12_089_606_144);
    }

    #[test]
    fn serde_round_trip() {
        let c = Config::ir34().with_width(32);
        let s = serde_json::to_string(&c).unwrap();
        let back: Config = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
    }
}
