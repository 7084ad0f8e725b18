//! WAV bytes written to hurt (what the `wav` fuzz target in `fuzz/` explores): every one gives an
//! error naming the file or a bounded result, never a panic or an allocation the header asks for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sotto_audio::{decode_wav, AudioError, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// The system allocator, remembering the largest single allocation asked for.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// A RIFF/WAVE header for 16-bit PCM whose data chunk claims `claimed` bytes, followed by `data`.
fn wav(rate: u32, channels: u16, claimed: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + claimed).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate.wrapping_mul(2 * channels as u32)).to_le_bytes());
    v.extend_from_slice(&(2 * channels).to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&claimed.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn decode(bytes: &[u8]) -> Result<Vec<f32>, AudioError> {
    decode_wav(bytes, Path::new("hostile.wav"))
}

/// A data chunk claiming 4 GB over 8 real bytes: read up to the cut, without reserving the claim
/// (the reader reserved the header's sample count up front: 8 GB of f32).
#[test]
fn a_huge_claimed_data_chunk_is_read_up_to_the_cut() {
    let samples = decode(&wav(16_000, 1, 0xFFFF_FEC0, &[0, 64, 0, 192, 0, 0, 0, 0])).unwrap();
    assert_eq!(samples, [0.5, -0.5, 0.0, 0.0]);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < 64 << 20, "an allocation of {largest} B");
}

/// Rates outside what any recording uses would size the FFT resampler by the header's claim.
#[test]
fn absurd_sample_rates_are_refused_by_name() {
    for rate in [1, MIN_SAMPLE_RATE - 1, MAX_SAMPLE_RATE + 1, 2_000_000_000] {
        let err = decode(&wav(rate, 1, 4, &[0; 4])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("hostile.wav") && text.contains(&format!("{rate} Hz")), "{rate}: {text}");
    }
    for rate in [MIN_SAMPLE_RATE, 8_000, 44_100, MAX_SAMPLE_RATE] {
        decode(&wav(rate, 1, 4, &[0; 4])).unwrap_or_else(|e| panic!("{rate} Hz: {e}"));
    }
}

#[test]
fn headers_cut_anywhere_are_errors_naming_the_file() {
    let whole = wav(16_000, 2, 8, &[0; 8]);
    for cut in 0..44 {
        let err = decode(&whole[..cut]).unwrap_err();
        assert!(err.to_string().contains("hostile.wav"), "cut at {cut}: {err}");
    }
}
