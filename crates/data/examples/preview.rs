//! Writes a grid of preprocessed faces to check a crop box by eye:
//! `cargo run -p arcface-data --example preview -- <lfw dir> <out.png> [x y width height]`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: preview <lfw dir> <out.png> [x y width height]".into());
    };
    let mut pre = arcface_data::Preprocess::default();
    if args.len() == 6 {
        let n: Vec<u32> = args[2..6].iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
        pre.crop = arcface_data::CropBox { x: n[0], y: n[1], width: n[2], height: n[3] };
    }
    let split = arcface_data::Lfw::open(dir)?.split(&arcface_data::Protocol::Dev)?;
    // Every 150th training image: a spread of people, poses and lighting.
    let paths: Vec<PathBuf> = split.train.paths.iter().step_by(150).take(64).cloned().collect();
    arcface_data::preview_grid(&paths, &pre, 8, out)?;
    println!("wrote {out} with crop {:?}", pre.crop);
    Ok(())
}
