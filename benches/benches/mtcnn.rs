//! Faces from photos, per image: MTCNN detection on a 250x250 LFW photo and on a 640x480
//! picture, and the whole `embed` path (decode, detect, align, embed).
//! `benches/pytorch/mtcnn_bench.py` runs the same work with facenet-pytorch's MTCNN and
//! InsightFace's norm_crop, and with `--compare` runs this bench first and prints both.
//!
//! Rows (group `cpu/mtcnn`, one image per iteration):
//! - `detect_250x250`: `Mtcnn::detect` on the photo as decoded (decoded once, outside the
//!   clock).
//! - `detect_640x480`: the photo pasted on a black 640x480 canvas at (300, 130), next to a
//!   2x2-averaged copy at (40, 300), so two faces of different sizes (tests/mtcnn.rs's
//!   `canvas` variant).
//! - `embed_<model>`: what `embed`/`verify` run for one photo, `arcface_eval::embed_photos`:
//!   `load_photo` (JPEG decode, EXIF upright) + detect + `norm_crop` of the largest face to
//!   112x112 + the frozen IResNet's forward at batch 1 (seeded random weights, frozen as
//!   `load_model` does; no flip test) + L2 normalization.
//! - `forward_<model>`: that last step alone (`embed_tensor` on the aligned crop), to show how
//!   `embed_<model>` splits between detection and the backbone.
//!
//! Run: `cargo bench -p arcface-benches --bench mtcnn`. Needs `data/lfw` and the MTCNN weights
//! (`data/mtcnn` or `../shared/data/mtcnn`); without them it says so and measures nothing.
//! `ARCFACE_BENCH_PHOTO` picks the photo (relative to `data/lfw/lfw-deepfunneled`, default
//! `Aaron_Eckhart/Aaron_Eckhart_0001.jpg`), `ARCFACE_BENCH_MODELS` the embedding models
//! (default `r50`). Threads: MTCNN's pyramid levels and crops, candle's CPU ops and gemm all
//! follow `RAYON_NUM_THREADS` (default: the physical cores); `mtcnn_bench.py --compare --threads
//! N` sets it to N and PyTorch's to N too. Measured: `benches/results/cpu-2026-11-29-mtcnn.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arcface_backbone::{init_varmap, Config, IResNet};
use arcface_data::{images_to_tensor, Align, CropBox, Preprocess, Progress};
use arcface_eval::{embed_photos, embed_tensor, EmbedConfig, FaceInput};
use arcface_face::{load_photo, norm_crop, FaceFinder, Mtcnn};
use candle::{Device, Tensor};
use candle_nn::VarMap;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use image::RgbImage;

const DEFAULT_PHOTO: &str = "Aaron_Eckhart/Aaron_Eckhart_0001.jpg";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn weights_dir() -> Option<PathBuf> {
    [workspace().join("data/mtcnn"), workspace().join("../shared/data/mtcnn")]
        .into_iter()
        .find(|d| arcface_face::mtcnn::WEIGHT_FILES.iter().all(|f| d.join(f).is_file()))
}

/// Each 2x2 block averaged, rounding half up (tests/mtcnn.rs's `halve`).
fn halve(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width() / 2, img.height() / 2, |x, y| {
        image::Rgb(std::array::from_fn(|c| {
            let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                .iter()
                .map(|(dx, dy)| img.get_pixel(2 * x + dx, 2 * y + dy)[c] as u32)
                .sum();
            ((s + 2) / 4) as u8
        }))
    })
}

fn canvas(photo: &RgbImage) -> RgbImage {
    let mut big = RgbImage::new(640, 480);
    image::imageops::replace(&mut big, photo, 300, 130);
    image::imageops::replace(&mut big, &halve(photo), 40, 300);
    big
}

/// The aligned 112x112 crop of the largest face of the photo at `path`, as a 1 x 3 x 112 x
/// 112 tensor normalized as the models expect.
fn aligned(path: &Path, mtcnn: &Mtcnn) -> Tensor {
    let photo = load_photo(path).unwrap_or_else(|e| panic!("{e}"));
    let faces = mtcnn.detect(&photo).unwrap_or_else(|e| panic!("{e}"));
    let Some(face) = faces.iter().max_by(|a, b| a.area().total_cmp(&b.area())) else {
        panic!("{}: no face", path.display())
    };
    let crop = norm_crop(&photo, &face.landmarks, 112).unwrap_or_else(|e| panic!("{e}"));
    images_to_tensor(crop.as_raw(), 1, 112, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

/// One photo's embedding the way `embed` and `verify` make it, without the flip test.
fn embed(path: &Path, input: &FaceInput, model: &IResNet) -> Tensor {
    let preprocess = Preprocess { crop: CropBox::LFW, size: 112, align: Align::Mtcnn };
    let paths = [path.to_path_buf()];
    let (emb, _, _) = embed_photos(model, &paths, input, &preprocess, &Device::Cpu, &EMBED, false)
        .unwrap_or_else(|e| panic!("embedding failed: {e}"));
    emb
}

const EMBED: EmbedConfig = EmbedConfig { batch_size: 1, flip: false, normalize: true, progress: Progress::Silent };

fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed()
}

fn bench_mtcnn(c: &mut Criterion) {
    let lfw = workspace().join("data/lfw/lfw-deepfunneled");
    let photo_path = lfw.join(std::env::var("ARCFACE_BENCH_PHOTO").unwrap_or_else(|_| DEFAULT_PHOTO.into()));
    let (Some(weights), true) = (weights_dir(), photo_path.is_file()) else {
        eprintln!(
            "mtcnn bench skipped: needs {} and the MTCNN weights (cargo xtask download mtcnn)",
            photo_path.display()
        );
        return;
    };
    let mtcnn = Mtcnn::load(&weights, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
    let photo = load_photo(&photo_path).unwrap_or_else(|e| panic!("{e}"));
    let pictures = [("detect_250x250", photo.clone()), ("detect_640x480", canvas(&photo))];

    let mut group = c.benchmark_group("cpu/mtcnn");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for (name, picture) in &pictures {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                timed(iters, || {
                    std::hint::black_box(mtcnn.detect(picture).unwrap_or_else(|e| panic!("{e}")));
                })
            })
        });
    }
    let input = FaceInput::Detect {
        finder: Arc::new(FaceFinder::new(Mtcnn::load(&weights, &Device::Cpu).unwrap_or_else(|e| panic!("{e}")))),
        pick: None,
    };
    let models = std::env::var("ARCFACE_BENCH_MODELS").unwrap_or_else(|_| "r50".into());
    for name in models.split(',') {
        let Some(config) = Config::from_name(name) else { panic!("unknown model {name}") };
        // Built on first use, so that a filter that skips the rows skips the set-up too.
        let model = std::cell::OnceCell::new();
        let model = || -> &IResNet {
            model.get_or_init(|| {
                init_varmap(&config, &VarMap::new(), &Device::Cpu, 0)
                    .and_then(|net| net.frozen())
                    .unwrap_or_else(|e| panic!("init failed: {e}"))
            })
        };
        group.measurement_time(Duration::from_secs(10));
        group.bench_function(format!("embed_{name}"), |b| {
            let model = model();
            b.iter_custom(|iters| timed(iters, || drop(std::hint::black_box(embed(&photo_path, &input, model)))))
        });
        let crop = aligned(&photo_path, &mtcnn);
        group.bench_function(format!("forward_{name}"), |b| {
            let model = model();
            let forward = || embed_tensor(model, &crop, &EMBED).unwrap_or_else(|e| panic!("embedding failed: {e}"));
            b.iter_custom(|iters| timed(iters, || drop(std::hint::black_box(forward()))))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = arcface_benches::criterion();
    targets = bench_mtcnn
}
criterion_main!(benches);
