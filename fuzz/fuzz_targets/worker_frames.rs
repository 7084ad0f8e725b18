//! The worker protocol decoder on both sides: arbitrary bytes as the worker's stdin (requests) and
//! as the daemon's view of a worker's stdout (replies). Every stream ends in a clean end, an error,
//! or frames that re-encode to the same frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};
use sotto_workers::frame::{bytes_to_samples, read_frame, write_frame};
use sotto_workers::messages::{FromWorker, ToWorker};

fn decode_all<T: DeserializeOwned + Serialize>(data: &[u8]) {
    let mut input = data;
    // Every frame has a 14-byte prefix, so a stream of n bytes holds at most n / 14 frames.
    for _ in 0..=data.len() / 14 {
        match read_frame::<_, T>(&mut input) {
            Ok(Some(frame)) => {
                let _ = bytes_to_samples(&frame.body);
                let mut encoded = Vec::new();
                write_frame(&mut encoded, &frame.header, &frame.body).expect("a decoded frame re-encodes");
                let again =
                    read_frame::<_, T>(&mut encoded.as_slice()).expect("re-encoded frame decodes").expect("one frame");
                assert_eq!(again.body, frame.body);
                assert_eq!(serde_json::to_value(&again.header).unwrap(), serde_json::to_value(&frame.header).unwrap());
            }
            Ok(None) | Err(_) => return,
        }
    }
    panic!("more frames decoded than the input can hold");
}

fuzz_target!(|data: &[u8]| {
    decode_all::<ToWorker>(data);
    decode_all::<FromWorker>(data);
});
