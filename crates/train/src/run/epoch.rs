//! The epoch loop: batches in the (seed, epoch) order from the resume position, checkpoints
//! every `checkpoint_every` steps and at each epoch's end, validation after every
//! `validate_every` epochs and the last, and a
//! clean stop (with a checkpoint) when the stop flag is set.

use std::ops::ControlFlow;

use arcface_data::Loader;

use super::data::TrainData;
use super::model::save_backbone;
use super::resume::Start;
use super::trainer::Trainer;
use crate::metrics::MetricRecord;
use crate::signals::StopFlag;
use crate::validate::Validator;
use crate::error::Result;

impl Trainer<'_> {
    /// Runs the epochs from `start` until the last one, the step budget or a stop request.
    pub(super) fn run_epochs(
        &mut self,
        data: &TrainData,
        start: &Start,
        stop: &StopFlag,
    ) -> Result<()> {
        for epoch in start.epoch..self.config.train.epochs {
            let skip = if epoch == start.epoch { start.skip } else { 0 };
            let flow = self.run_batches(&data.loader, epoch, skip, stop)?;
            if flow.is_break() {
                break;
            }
            self.progress.epochs_done = epoch + 1;
            if stop.is_set() {
                // Stop now rather than after a validation pass; resuming redoes nothing.
                self.stop_at(epoch + 1, 0)?;
                break;
            }
            self.validate_epoch(epoch, data.validator.as_ref())?;
            self.save_checkpoint(epoch + 1, 0)?;
        }
        Ok(())
    }

    /// The batches of `epoch` after the first `skip`; breaks on a stop request (after a
    /// checkpoint) or once the step budget is spent.
    fn run_batches(
        &mut self,
        loader: &Loader,
        epoch: usize,
        skip: usize,
        stop: &StopFlag,
    ) -> Result<ControlFlow<()>> {
        for (i, batch) in loader.epoch(epoch, skip).enumerate() {
            let b = i + skip;
            if stop.is_set() {
                self.stop_at(epoch, b)?;
                return Ok(ControlFlow::Break(()));
            }
            if self.progress.step >= self.plan.total_steps {
                return Ok(ControlFlow::Break(()));
            }
            let batch = batch?;
            self.train_step(&batch, epoch)?;
            if self.checkpoint_due() {
                self.save_checkpoint(epoch, b + 1)?;
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// A periodic checkpoint is due (the final one is written by `finish`).
    fn checkpoint_due(&self) -> bool {
        let (every, step) = (self.config.train.checkpoint_every, self.progress.step);
        every > 0 && step % every == 0 && step < self.plan.total_steps
    }

    /// Validation is on and `epoch` is a multiple of `validate_every` or the last one.
    fn validation_due(&self, epoch: usize) -> bool {
        let t = &self.config.train;
        let done = epoch + 1;
        t.validate && (done % t.validate_every.max(1) == 0 || done == t.epochs)
    }

    /// Checkpoints at batch `batch` of `epoch` and marks the run interrupted.
    fn stop_at(&mut self, epoch: usize, batch: usize) -> Result<()> {
        self.save_checkpoint(epoch, batch)?;
        self.log.info(&format!(
            "stop requested: checkpoint written at step {}",
            self.progress.step
        ));
        self.progress.interrupted = true;
        Ok(())
    }

    /// Scores the test pairs after `epoch` (when due) and keeps the best backbone.
    fn validate_epoch(
        &mut self,
        epoch: usize,
        validator: Option<&Validator>,
    ) -> Result<()> {
        let Some(v) = validator.filter(|_| self.validation_due(epoch)) else {
            return Ok(());
        };
        let m = v.evaluate(
            &self.nets.model,
            &self.device,
            self.config.train.eval_batch_size,
        )?;
        let step = self.progress.step;
        self.log.metrics(&MetricRecord::Val {
            step,
            epoch,
            accuracy: m.accuracy_mean,
            threshold: m.threshold,
        })?;
        self.log.info(&format!(
            "epoch {epoch}: val accuracy {:.4} +- {:.4} (threshold {:.4})",
            m.accuracy_mean, m.accuracy_std, m.threshold
        ));
        self.progress.last_val = Some((m.accuracy_mean, m.threshold));
        if self.progress.best_val.is_none_or(|b| m.accuracy_mean > b) {
            self.progress.best_val = Some(m.accuracy_mean);
            save_backbone(
                &self.nets.bb_vm,
                &arcface_eval::RunDir::new(self.run_dir()).best_weights_path(),
            )?;
        }
        Ok(())
    }
}
