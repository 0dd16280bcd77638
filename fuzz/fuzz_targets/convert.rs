//! Fuzz target: arbitrary bytes through `probe`, `metadata::scan` and `convert` (decode,
//! orient, ICC colour, crop, resize, encode). Any panic, abort, out-of-memory or timeout is a bug: hostile input must come back
//! as an `ImagingError`. Limits are lowered from the defaults so that a legitimately large
//! declared image does not spend the fuzzer's time and memory budget; the limit checks
//! themselves are what the bad/ fixtures and these inputs exercise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photobulk_imaging::{convert, probe, Crop, Limits, Options, Target};

fuzz_target!(|data: &[u8]| {
    let _ = probe(data);
    // Header-only scan used by reports: must never panic either.
    let _ = photobulk_imaging::metadata::scan(data);

    // The first byte picks the crop strategy so all three paths are covered.
    let crop = match data.first().map(|b| b % 3) {
        Some(1) => Crop::Top,
        Some(2) => Crop::Pad,
        _ => Crop::Center,
    };
    let target = Target::ad();
    let opts = Options {
        limits: Limits {
            max_pixels: 16_000_000,
            max_side: 8_192,
            max_input_bytes: 4 << 20,
        },
        crop,
        targets: vec![target.clone()],
        ..Options::default()
    };
    if let Ok(conversion) = convert(data, &opts) {
        for out in &conversion.outputs {
            assert_eq!(
                (out.width, out.height),
                (target.size, target.size),
                "output size"
            );
            assert_eq!(out.bytes, out.jpeg.len(), "reported bytes");
            assert!(
                out.jpeg.len() <= target.max_bytes,
                "over budget: {} bytes",
                out.jpeg.len()
            );
            assert!(out.jpeg.starts_with(&[0xFF, 0xD8]), "output is not a JPEG");
        }
    }
});
