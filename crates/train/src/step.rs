//! One optimizer step of a backbone and its margin head, in three phases: forward (the
//! backbone at its precision, then the margin loss), backward (with optional global-norm
//! clipping) and update (the optimizer, then the precision view's hook). The training loop and
//! the throughput bench both run these, so a benchmark measures the step users train with;
//! the phases are apart so that the bench can time each and the loop can stop on a non-finite
//! loss before any gradient is computed.

use arcface_backbone::IResNet;
use arcface_loss::{HeadOutput, MarginHead};
use candle::backprop::GradStore;
use candle::{Tensor, Var};

use crate::clip::clip_grad_norm;
use crate::error::Result;
use crate::optim::Optimizer;
use crate::precision::PrecisionView;

/// What a step reads: the backbone, the view it is run through, and the head.
pub struct StepNet<'a> {
    /// The f32 backbone (its variables are the master weights).
    pub model: &'a IResNet,
    /// The precision the forward pass runs at.
    pub view: &'a PrecisionView,
    /// The margin head.
    pub head: &'a MarginHead,
}

impl StepNet<'_> {
    /// Embeds `images` in training mode and returns the head's loss, logits and hits.
    pub fn forward(&self, images: &Tensor, labels: &Tensor) -> Result<HeadOutput> {
        let emb = self.view.forward(self.model, images)?;
        Ok(self.head.forward(&emb, labels)?)
    }
}

/// Gradient clipping: the variables whose global L2 norm is clipped, and the bound.
pub struct Clip<'a> {
    /// The clipped variables.
    pub vars: &'a [Var],
    /// The largest global norm kept (InsightFace: 5).
    pub max_norm: f64,
}

/// The gradients of `loss`, clipped when `clip` is given.
pub fn backward(loss: &Tensor, clip: Option<Clip>) -> Result<GradStore> {
    let mut grads = loss.backward()?;
    if let Some(c) = clip {
        clip_grad_norm(&mut grads, c.vars, c.max_norm)?;
    }
    Ok(grads)
}

/// Applies `grads` with `optimizer`, then lets `view` follow the new master weights.
pub fn update(optimizer: &mut Optimizer, view: &PrecisionView, grads: &GradStore) -> Result<()> {
    optimizer.step(grads)?;
    view.after_step()?;
    Ok(())
}
