//! The end of a run: the last checkpoint, `model.safetensors` and the summary. An
//! interrupted run writes only the summary (its checkpoint is already on disk). The final
//! evaluation is the caller's to compose (the CLI runs arcface-eval on the finished folder).

use arcface_eval::RunDir;

use super::data::TrainData;
use super::model::save_backbone;
use super::trainer::Trainer;
use super::TrainSummary;
use crate::error::Result;

impl Trainer<'_> {
    /// Writes the final outputs and returns the summary.
    pub(super) fn finish(mut self, data: &TrainData) -> Result<TrainSummary> {
        if let Some(steps) = &self.steps {
            steps.finish();
        }
        if !self.progress.interrupted {
            self.final_checkpoint()?;
            let model_path = RunDir::new(self.run_dir()).final_weights_path();
            save_backbone(&self.nets.bb_vm, &model_path)?;
            self.log.info(&format!("wrote {}", model_path.display()));
        }
        let p = &self.progress;
        let summary = TrainSummary {
            run_dir: self.options.out.clone(),
            steps: p.step,
            epochs: p.epochs_done,
            num_classes: data.train_set.num_classes(),
            num_images: data.train_set.len(),
            last_loss: p.last_loss,
            last_val: p.last_val,
            best_val: p.best_val,
            interrupted: p.interrupted,
            elapsed_s: self.elapsed(),
        };
        self.log.info(&format!(
            "done: {}",
            serde_json::to_string(&summary).unwrap_or_default()
        ));
        Ok(summary)
    }

    /// A max_steps stop inside an epoch still leaves a checkpoint at the very end.
    fn final_checkpoint(&self) -> Result<()> {
        let step = self.progress.step;
        if self.ckpt.latest()?.map(|(m, _)| m.step) != Some(step) {
            let spe = self.plan.steps_per_epoch as u64;
            self.save_checkpoint((step / spe) as usize, (step % spe) as usize)?;
        }
        Ok(())
    }
}
