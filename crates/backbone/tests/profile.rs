//! A model built with a [`Profiler`] in its kernel options adds one call per layer to each
//! layer kind's total, forward and backward; a model without one records nothing.

use std::sync::Arc;

use anyhow::Result;
use arcface_backbone::{init_varmap_with, Config, KernelOptions, Profiler};
use candle::{DType, Device, Tensor};
use candle_nn::{ModuleT, VarMap};

#[test]
fn counts_one_call_per_layer() -> Result<()> {
    let profiler = Arc::new(Profiler::new());
    let kernels = KernelOptions { profiler: Some(profiler.clone()), ..Default::default() };
    // Blocks [2, 1, 1, 1]: 5 blocks, 4 of them with a downsample (each stage's first).
    let cfg = Config { layers: [2, 1, 1, 1], width: 4, input_size: 32, num_features: 16, dropout: 0.0 };
    let varmap = VarMap::new();
    let model = init_varmap_with(&cfg, &kernels, &varmap, &Device::Cpu, 0)?;
    let x = Tensor::ones((2, 3, 32, 32), DType::F32, &Device::Cpu)?;
    let y = model.forward_t(&x, true)?;
    y.sqr()?.sum_all()?.backward()?;
    let totals = profiler.take();
    let calls = |kind: &str| totals.iter().find(|t| t.0 == kind).map(|t| t.2);
    // Stem conv + 2 per block + 4 downsamples.
    assert_eq!(calls("conv"), Some(1 + 2 * 5 + 4), "{totals:?}");
    // The stem's conv gets no input gradient but still a weight gradient: every conv counts.
    assert_eq!(calls("conv backward"), Some(15), "{totals:?}");
    // Stem BN + 3 per block + 4 downsample BNs + bn2 + features.
    assert_eq!(calls("batch-norm"), Some(1 + 3 * 5 + 4 + 2), "{totals:?}");
    assert_eq!(calls("batch-norm backward"), Some(22), "{totals:?}");
    assert_eq!(calls("prelu"), Some(1 + 5), "{totals:?}");
    assert_eq!(calls("residual add"), Some(5), "{totals:?}");
    assert_eq!(calls("fc"), Some(1), "{totals:?}");
    assert!(totals.iter().all(|t| t.1 >= 0.0));
    assert!(profiler.take().is_empty(), "take() resets");

    // The same model without a profiler: nothing recorded anywhere.
    let quiet = init_varmap_with(&cfg, &KernelOptions::default(), &VarMap::new(), &Device::Cpu, 0)?;
    quiet.forward_t(&x, true)?.sum_all()?.backward()?;
    assert!(profiler.take().is_empty());
    Ok(())
}
