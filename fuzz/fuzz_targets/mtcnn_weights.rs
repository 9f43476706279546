//! MTCNN weight files as bytes (facenet-pytorch's legacy torch.save format, or zip): the
//! legacy reader's pickles, storage table and strided tensors, then the shape checks of P-Net.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: common::tolerate_candle_pickle_panics(), |data: &[u8]| {
    let _ = arcface_face::mtcnn::PNet::load(&common::scratch("pnet.pt", data), &candle::Device::Cpu);
});
