//! Minimal reader for the 16 kHz mono 16-bit WAV files the tests and the benchmark use
//! (included with `#[path]`; the product's audio input lives in `sotto-audio`).

#![allow(dead_code)]

use std::path::Path;

/// Samples as f32 in [-1, 1); errors name the file and what is wrong with it.
pub fn read_wav_16k_mono(path: &Path) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("{}: not a RIFF/WAVE file", path.display()));
    }
    let mut i = 12;
    let (mut format, mut data) = (None, None);
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
        let chunk = &bytes[i + 8..(i + 8 + len).min(bytes.len())];
        if id == b"fmt " && chunk.len() >= 16 {
            let channels = u16::from_le_bytes([chunk[2], chunk[3]]);
            let rate = u32::from_le_bytes(chunk[4..8].try_into().unwrap());
            let bits = u16::from_le_bytes([chunk[14], chunk[15]]);
            format = Some((channels, rate, bits));
        } else if id == b"data" {
            data = Some(chunk);
        }
        i += 8 + len + (len & 1);
    }
    match format {
        Some((1, 16_000, 16)) => {}
        Some((c, r, b)) => {
            return Err(format!(
                "{}: {c} channel(s), {r} Hz, {b}-bit; need 1 channel, 16000 Hz, 16-bit",
                path.display()
            ))
        }
        None => return Err(format!("{}: no fmt chunk", path.display())),
    }
    let data = data.ok_or_else(|| format!("{}: no data chunk", path.display()))?;
    Ok(data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0).collect())
}
