//! The WAV reader on arbitrary bytes, through channel downmix and resampling to 16 kHz: samples or
//! an error naming the file, never a panic, and never more output than the bytes can explain.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match sotto_audio::decode_wav(data, Path::new("fuzz.wav")) {
        Ok(samples) => {
            // Each input sample takes at least one byte and the lowest accepted rate is
            // MIN_SAMPLE_RATE, so 16 kHz output is bounded by the input size.
            let per_byte = (sotto_audio::SAMPLE_RATE / sotto_audio::MIN_SAMPLE_RATE) as usize + 1;
            assert!(samples.len() <= data.len() * per_byte, "{} samples from {} bytes", samples.len(), data.len());
        }
        Err(err) => assert!(err.to_string().contains("fuzz.wav"), "errors name the file: {err}"),
    }
});
