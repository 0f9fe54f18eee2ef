//! The imaging service's tests: reading instances (every vendored file, hostile ones), the
//! multipart splitter, the QIDO matching rules, and the archive on both stores.

mod archive;
mod ecg;
mod jpeg12;
mod jpegls;
mod matching;
mod multipart;
mod part10;

pub fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/dicom/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}
mod render;
