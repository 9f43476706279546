//! `arcface align`: a folder of photos into a folder of aligned faces, one PNG per photo at the
//! same relative path, with `landmarks.tsv` (the face used in each photo) and `failed.tsv`
//! (each photo without one, and why). Photos are processed in parallel; one bad photo is
//! reported and skipped, never stops the others.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{bail, Context};
use arcface_data::Task;
use arcface_face::load_photo;
use clap::Args;
use rayon::prelude::*;

use crate::faces::DetectorArgs;

/// Arguments of `align`.
#[derive(Args)]
pub struct AlignArgs {
    /// Folder of photos (searched recursively for .jpg, .jpeg, .png).
    #[arg(long)]
    pub input: PathBuf,
    /// Folder for the aligned faces (created; must not be inside the input folder).
    #[arg(long)]
    pub output: PathBuf,
    /// Side of the aligned square, in pixels (112 for ArcFace models).
    #[arg(long, default_value_t = 112, value_parser = clap::value_parser!(u32).range(16..=1024))]
    pub size: u32,
    /// Keep the face numbered N (1 = highest detection score) instead of the main face, which
    /// is the one with the largest box.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub face: Option<u32>,
    /// Replace aligned faces already in the output folder (default: keep them and skip those
    /// photos, so an interrupted run resumes).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// The face used in one photo, as a `landmarks.tsv` row.
struct Row {
    image: PathBuf,
    faces: usize,
    chosen: usize,
    score: f32,
    landmarks: [[f32; 2]; 5],
}

pub fn run(a: AlignArgs) -> anyhow::Result<ExitCode> {
    if !a.input.is_dir() {
        bail!("{}: not a folder of photos", a.input.display());
    }
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let (input, output) = (a.input.canonicalize()?, a.output.canonicalize()?);
    if output.starts_with(&input) {
        bail!("{}: the output folder is inside the input folder; its PNGs would be read as photos next time", a.output.display());
    }
    let photos = arcface_eval::embed_cmd::list_images(&input)?;
    if photos.is_empty() {
        bail!("{}: no photos (jpg, jpeg, png)", a.input.display());
    }
    let finder = a.detector.finder()?;
    let rows = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    let kept = std::sync::atomic::AtomicUsize::new(0);
    let progress = crate::progress::auto().start(Task::items("aligning faces", photos.len() as u64));
    photos.par_iter().for_each(|photo| {
        let rel = photo.strip_prefix(&input).unwrap_or(photo);
        let target = output.join(rel).with_extension("png");
        if target.is_file() && !a.overwrite {
            kept.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            match align_one(&finder, photo, &target, a.size, a.face) {
                Ok(mut row) => {
                    row.image = rel.to_path_buf();
                    rows.lock().unwrap().push(row);
                }
                Err(why) => failed.lock().unwrap().push((rel.to_path_buf(), why)),
            }
        }
        progress.inc(1);
    });
    progress.finish();
    let mut rows = rows.into_inner().unwrap();
    let mut failed = failed.into_inner().unwrap();
    rows.sort_by(|x, y| x.image.cmp(&y.image));
    failed.sort();
    let tsv = output.join("landmarks.tsv");
    append_rows(&tsv, &rows)?;
    let fail_tsv = output.join("failed.tsv");
    let text: String = std::iter::once("image\treason\n".to_string())
        .chain(failed.iter().map(|(p, why)| format!("{}\t{}\n", p.display(), why.replace(['\t', '\n'], " "))))
        .collect();
    arcface_eval::run_dir::replace_atomic(&fail_tsv, |tmp| std::fs::write(tmp, &text))?;
    let kept = kept.into_inner();
    println!(
        "{} faces aligned to {}x{} in {}{}; {} photos without a face (listed in {})",
        rows.len(),
        a.size,
        a.size,
        a.output.display(),
        if kept > 0 { format!(" ({kept} already there, kept)") } else { String::new() },
        failed.len(),
        fail_tsv.display()
    );
    for (p, why) in failed.iter().take(10) {
        eprintln!("  {}: {why}", p.display());
    }
    Ok(if rows.is_empty() && kept == 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Detects, aligns and writes one photo's face (to a temporary name, then renamed, so an
/// interrupted run leaves no half-written PNG).
fn align_one(finder: &arcface_face::FaceFinder, photo: &Path, target: &Path, size: u32, face: Option<u32>) -> Result<Row, String> {
    let img = load_photo(photo).map_err(|e| e.reason())?;
    let found = finder
        .find(&img, face.map_or(arcface_face::Choice::Largest, |n| arcface_face::Choice::Number(n as usize)), size)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = target.with_extension("png.tmp");
    found
        .crop
        .save_with_format(&tmp, image::ImageFormat::Png)
        .and_then(|_| std::fs::rename(&tmp, target).map_err(image::ImageError::IoError))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", target.display())
        })?;
    let f = &found.faces[found.chosen];
    Ok(Row { image: photo.to_path_buf(), faces: found.faces.len(), chosen: found.chosen + 1, score: f.score, landmarks: f.landmarks })
}

/// Appends this run's rows to `landmarks.tsv` (header first when new), so a resumed run adds
/// to what the interrupted one wrote.
fn append_rows(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let new = !path.is_file();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("writing {}", path.display()))?;
    let mut text = String::new();
    if new {
        text.push_str("image\tfaces\tface\tscore\tleft_eye_x\tleft_eye_y\tright_eye_x\tright_eye_y\tnose_x\tnose_y\tmouth_left_x\tmouth_left_y\tmouth_right_x\tmouth_right_y\n");
    }
    for r in rows {
        text.push_str(&format!("{}\t{}\t{}\t{:.6}", r.image.display(), r.faces, r.chosen, r.score));
        for p in &r.landmarks {
            text.push_str(&format!("\t{:.3}\t{:.3}", p[0], p[1]));
        }
        text.push('\n');
    }
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
