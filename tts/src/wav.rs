//! Synthesised audio as 16-bit PCM: a WAV file (whole) or raw little-endian samples (streamable).

use std::io::Write;

use crate::TtsError;

/// Samples in [-1, 1] as 16-bit integers (clipped; non-finite → 0).
pub fn to_i16(samples: &[f32]) -> impl Iterator<Item = i16> + '_ {
    samples.iter().map(|&x| if x.is_finite() { (x.clamp(-1.0, 1.0) * 32767.0).round() as i16 } else { 0 })
}

/// Mono 16-bit WAV bytes.
pub fn encode_wav(samples: &[f32], rate: u32) -> Vec<u8> {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).expect("writing to memory");
        let mut w16 = w.get_i16_writer(samples.len() as u32);
        for s in to_i16(samples) {
            w16.write_sample(s);
        }
        w16.flush().expect("writing to memory");
        w.finalize().expect("writing to memory");
    }
    cursor.into_inner()
}

/// Writes a mono 16-bit WAV file (through a temporary file renamed into place: a reader never sees
/// half a file).
pub fn write_wav(path: &std::path::Path, samples: &[f32], rate: u32) -> Result<(), TtsError> {
    let fail = |e: std::io::Error| TtsError::Output { path: path.display().to_string(), reason: e.to_string() };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(&encode_wav(samples, rate)).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Raw mono s16le bytes, for a pipe that is fed sentence by sentence.
pub fn raw_s16le(samples: &[f32]) -> Vec<u8> {
    to_i16(samples).flat_map(i16::to_le_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trips_through_the_audio_reader() {
        let x: Vec<f32> = (0..1600).map(|i| ((i as f32) * 0.05).sin() * 0.5).collect();
        let bytes = encode_wav(&x, 16_000);
        let back = sotto_audio::decode_wav(std::io::Cursor::new(bytes), std::path::Path::new("mem.wav")).unwrap();
        assert_eq!(back.len(), x.len());
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-3));
        assert_eq!(raw_s16le(&[1.0, -2.0, f32::NAN]), [0xff, 0x7f, 0x01, 0x80, 0, 0]);
    }
}
