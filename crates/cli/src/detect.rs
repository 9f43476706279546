//! `arcface detect`: the faces in photos (box, score, five landmarks), as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use arcface_data::Task;
use arcface_face::{load_photo, Face};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;

use crate::faces::DetectorArgs;

/// Arguments of `detect`.
#[derive(Args)]
pub struct DetectArgs {
    /// Photos and folders of photos (searched recursively for .jpg, .jpeg, .png).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the JSON here instead of printing it.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// One face as written in the JSON.
#[derive(Serialize)]
struct FaceJson {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
}

/// One photo as written in the JSON: its faces, highest score first, or why it was skipped.
#[derive(Serialize)]
struct PhotoJson {
    image: PathBuf,
    faces: Vec<FaceJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<&Face> for FaceJson {
    fn from(f: &Face) -> Self {
        FaceJson { bbox: f.bbox, score: f.score, landmarks: f.landmarks }
    }
}

/// The photos named on the command line, folders expanded (sorted) in place.
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            out.extend(arcface_eval::embed_cmd::list_images(p)?);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

pub fn run(a: DetectArgs) -> anyhow::Result<ExitCode> {
    let photos = expand_inputs(&a.inputs)?;
    if photos.is_empty() {
        anyhow::bail!("no photos (jpg, jpeg, png) in {}", a.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    if let Some(json) = &a.json {
        if photos.iter().any(|p| same_file(p, json)) {
            anyhow::bail!("{}: is one of the inputs; choose another --json file", json.display());
        }
    }
    let finder = a.detector.finder()?;
    let progress = crate::progress::auto().start(Task::items("detecting faces", photos.len() as u64));
    let results: Vec<PhotoJson> = photos
        .par_iter()
        .map(|p| {
            let found = load_photo(p).map_err(|e| e.to_string()).and_then(|img| finder.detect(&img).map_err(|e| format!("{}: {e}", p.display())));
            progress.inc(1);
            match found {
                Ok(faces) => PhotoJson { image: p.clone(), faces: faces.iter().map(FaceJson::from).collect(), error: None },
                Err(e) => PhotoJson { image: p.clone(), faces: Vec::new(), error: Some(e) },
            }
        })
        .collect();
    progress.finish();
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    for r in results.iter().filter_map(|r| r.error.as_ref()) {
        eprintln!("skipped: {r}");
    }
    let text = serde_json::to_string_pretty(&results)?;
    match &a.json {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            arcface_eval::run_dir::replace_atomic(path, |tmp| std::fs::write(tmp, &text)).with_context(|| format!("writing {}", path.display()))?;
            let faces: usize = results.iter().map(|r| r.faces.len()).sum();
            println!("{} faces in {} photos ({failed} unreadable): {}", faces, results.len() - failed, path.display());
        }
        None => println!("{text}"),
    }
    Ok(if failed == results.len() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Whether two paths name the same existing file.
pub fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
