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

/// A 32-bit float WAV at 48 kHz.
fn float_wav(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut v = wav(rate, 1, data.len() as u32, &data);
    v[20..22].copy_from_slice(&3u16.to_le_bytes()); // IEEE float
    v[28..32].copy_from_slice(&(rate * 4).to_le_bytes());
    v[32..34].copy_from_slice(&4u16.to_le_bytes());
    v[34..36].copy_from_slice(&32u16.to_le_bytes());
    v
}

/// Found by the `wav` fuzz target: float samples near f32::MAX overflowed the FFT inside rubato,
/// which then panicked (`Imaginary part of first value was non-zero`). The input as found.
#[test]
fn fuzz_crash_huge_float_samples_resample_without_panic() {
    let samples = decode(include_bytes!("fuzz_inputs/float_48k_non_finite.wav")).unwrap();
    assert!(!samples.is_empty());
    assert!(samples.iter().all(|s| s.is_finite()), "{samples:?}");
}

/// NaN, infinities and overs at every rate path (FFT resampler and 16 kHz pass-through) come out
/// finite: silence for the non-finite, full scale for the overs.
#[test]
fn non_finite_and_over_full_scale_samples_are_made_playable() {
    let hostile = [0.25, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3.0e38, -7.5, 0.5];
    let at_16k = decode(&float_wav(16_000, &hostile)).unwrap();
    assert_eq!(at_16k, [0.25, 0.0, 0.0, 0.0, 1.0, -1.0, 0.5]);
    let mut long = hostile.repeat(2000);
    long.extend([0.0; 4800]);
    let at_48k = decode(&float_wav(48_000, &long)).unwrap();
    assert_eq!(at_48k.len(), (long.len() + 1) / 3);
    assert!(at_48k.iter().all(|s| s.is_finite() && s.abs() < 2.0), "resampled output stays bounded");
}
