//! The loop's step: one optimizer step ([`crate::step`]) on a batch, the non-finite-loss stop,
//! and the logging window that averages steps into `metrics.jsonl` train lines.

use std::time::Instant;

use arcface_data::Batch;
use candle::DType;

use super::trainer::Trainer;
use crate::step::{self, Clip, StepNet};
use crate::metrics::MetricRecord;
use crate::error::{Result, TrainError};

/// Sums over the steps since the last train line.
pub(super) struct Window {
    loss: f64,
    correct: u64,
    images: u64,
    steps: u64,
    start: Instant,
}

impl Window {
    /// An empty window starting now.
    pub(super) fn new() -> Self {
        Self {
            loss: 0.0,
            correct: 0,
            images: 0,
            steps: 0,
            start: Instant::now(),
        }
    }
}

impl Trainer<'_> {
    /// Trains on `batch` (of `epoch`), then logs when a window is complete.
    pub(super) fn train_step(&mut self, batch: &Batch, epoch: usize) -> Result<()> {
        let lr = self.plan.schedule.lr(self.progress.step);
        self.opt.set_lr(lr);
        let x = batch.images.to_device(&self.device)?;
        let y = batch.labels.to_device(&self.device)?;
        let net = StepNet { model: &self.nets.model, view: &self.precision, head: &self.nets.head };
        let out = net.forward(&x, &y)?;
        let loss = out.loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(self.non_finite(epoch, loss));
        }
        let max_norm = self.config.train.grad_clip;
        let clip = (max_norm > 0.0).then_some(Clip { vars: &self.trainable, max_norm });
        let grads = step::backward(&out.loss, clip)?;
        step::update(&mut self.opt, &self.precision, &grads)?;
        self.progress.step += 1;
        let w = &mut self.window;
        w.loss += loss as f64;
        w.correct += out.correct.to_dtype(DType::U32)?.to_scalar::<u32>()? as u64;
        w.images += batch.indices.len() as u64;
        w.steps += 1;
        let step = self.progress.step;
        if let Some(steps) = &self.steps {
            steps.set(step);
        }
        if self.log_due() {
            self.log_window(epoch, lr)?;
        }
        Ok(())
    }

    /// A train line is due: every `log_every` steps and at the last step.
    // `u64::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    fn log_due(&self) -> bool {
        let step = self.progress.step;
        step % self.config.train.log_every == 0 || step == self.plan.total_steps
    }

    /// Abandons the step progress and logs the error of a non-finite loss.
    fn non_finite(&mut self, epoch: usize, loss: f32) -> TrainError {
        if let Some(steps) = &self.steps {
            steps.abandon();
        }
        let kept = match self.ckpt.latest() {
            Ok(Some((meta, path))) => format!(
                "the last checkpoint, {} (step {}), is kept: resume from it with a changed recipe",
                path.display(),
                meta.step
            ),
            _ => "no checkpoint was written before it".to_string(),
        };
        let err = TrainError::NonFiniteLoss { step: self.progress.step + 1, epoch, loss, kept };
        self.log.info(&err.to_string());
        err
    }

    /// Writes the window's train line (metrics, log, step progress) and starts a new window.
    fn log_window(&mut self, epoch: usize, lr: f64) -> Result<()> {
        let w = &self.window;
        let secs = w.start.elapsed().as_secs_f64().max(1e-9);
        let loss = w.loss / w.steps as f64;
        let accuracy = w.correct as f64 / w.images.max(1) as f64;
        let images_per_sec = w.images as f64 / secs;
        let (step, total_steps) = (self.progress.step, self.plan.total_steps);
        let line = MetricRecord::Train {
            step,
            epoch,
            loss,
            accuracy,
            lr,
            images_per_sec,
            elapsed_s: self.elapsed(),
        };
        self.progress.last_loss = Some(loss);
        let msg = format!(
            "step {step}/{total_steps} epoch {epoch} loss {loss:.4} acc {accuracy:.3} lr {lr:.5} {images_per_sec:.1} img/s"
        );
        match &self.steps {
            Some(steps) => {
                steps.message(&format!(
                    "loss {loss:.3} acc {accuracy:.3} lr {lr:.4} {images_per_sec:.0} img/s"
                ));
                self.log.info_file_only(&msg);
            }
            None => self.log.info(&msg),
        }
        self.log.metrics(&line)?;
        self.window = Window::new();
        Ok(())
    }
}
