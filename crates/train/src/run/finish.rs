//! The end of a run: the last checkpoint, `model.safetensors`, the final evaluation into
//! `eval/`, and the summary. An interrupted run writes only the summary (its checkpoint is
//! already on disk).

use anyhow::Context;
use arcface_eval::{EvalOptions, ModelSource, PairSource};

use super::data::TrainData;
use super::model::save_backbone;
use super::trainer::Trainer;
use super::TrainSummary;

impl Trainer<'_> {
    /// Writes the final outputs and returns the summary.
    pub(super) fn finish(mut self, data: &TrainData) -> anyhow::Result<TrainSummary> {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
        if !self.progress.interrupted {
            self.final_checkpoint()?;
            let model_path = self.run_dir().join("model.safetensors");
            save_backbone(&self.nets.bb_vm, &model_path)?;
            self.log.info(&format!("wrote {}", model_path.display()));
            if self.config.train.eval_at_end && data.test_set.is_some() {
                self.final_eval()?;
            }
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
    fn final_checkpoint(&self) -> anyhow::Result<()> {
        let step = self.progress.step;
        if self.ckpt.latest()?.map(|(m, _)| m.step) != Some(step) {
            let spe = self.plan.steps_per_epoch as u64;
            self.save_checkpoint((step / spe) as usize, (step % spe) as usize)?;
        }
        Ok(())
    }

    /// Evaluates the saved run on the protocol's test pairs (arcface-eval writes `eval/`).
    fn final_eval(&mut self) -> anyhow::Result<()> {
        let d = &self.config.data;
        let (lfw_dir, protocol) = (d.lfw_dir(), d.protocol.to_string());
        let mut eo = EvalOptions::new(
            Some(ModelSource::Run(self.options.out.clone())),
            PairSource::Lfw { lfw_dir, protocol },
        );
        eo.device = self.options.device.clone();
        eo.embed.batch_size = self.config.train.eval_batch_size;
        eo.embed.progress = self.is_tty;
        let r = arcface_eval::eval_run(&eo).context("final evaluation")?;
        self.log
            .info(&format!("final eval written to {}", r.out_dir.display()));
        Ok(())
    }
}
