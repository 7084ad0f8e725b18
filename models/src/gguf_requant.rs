//! A GGUF model with its token embedding re-quantised to q5_0, every other byte kept.
//!
//! Why: Gemma 3 270M spends 168 M of its 268 M weights on the token embedding (a 262k-token
//! vocabulary), which the Q4_K_M file stores in q8_0, 178 MB of the 253 MB file. Gemma ties the
//! output layer to that embedding, so every generated token reads it whole and it is resident
//! whole. In q5_0 it is 115 MB: the language-model worker's peak goes down by about 60 MiB and
//! the answers of the shipped adapter stay the same on the project's sets (README). The other
//! tensors are copied byte for byte (re-quantising the 4-bit blocks would lose precision), and
//! the metadata is kept as it is, so tokenizer and chat template are the original's.
//!
//! The result is deterministic (a pinned sha256 in the manifest): q5_0 is computed exactly as
//! ggml's reference `quantize_row_q5_0` does, from the q8_0 values.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use half::f16;

use crate::error::GgufError;
use crate::gguf::{open, Preamble, Value};

/// The tensor re-quantised.
pub const TOKEN_EMBD: &str = "token_embd.weight";
const Q8_0: u32 = 8;
const Q5_0: u32 = 6;
const BLOCK: usize = 32;
const Q8_0_BYTES: usize = 34;
const Q5_0_BYTES: usize = 22;

/// Writes `src` to `dst` with [`TOKEN_EMBD`] in q5_0. `src`'s embedding must be q8_0.
pub fn token_embd_q5_0(src: &Path, dst: &Path) -> Result<(), GgufError> {
    let io_src = |e| GgufError::Io { path: PathBuf::from(src), source: e };
    let io_dst = |e| GgufError::Io { path: PathBuf::from(dst), source: e };
    let malformed = |message: String| GgufError::Malformed { path: src.into(), message };
    let Preamble { reader: mut r, version, tensor_count, kv_count } = open(src)?;
    if version != 3 {
        return Err(GgufError::UnsupportedVersion { path: src.into(), version });
    }
    let size = r.size;
    // The metadata is copied as raw bytes: only its extent and the alignment are needed.
    let kv_start = r.pos;
    let mut alignment = 32u64;
    for _ in 0..kv_count {
        let key = r.string("metadata key")?;
        let ty = r.u32(&key)?;
        if let Value::Int(v) = r.value(ty, &key)? {
            if key == "general.alignment" {
                alignment = v.max(1);
            }
        }
    }
    let kv_end = r.pos;
    let tensors = r.tensor_table(tensor_count)?;
    let sizes = tensors
        .iter()
        .map(|t| t.bytes().ok_or_else(|| malformed(format!("{}: ggml type {} is not supported here", t.name, t.ty))))
        .collect::<Result<Vec<u64>, _>>()?;
    let data_start = r.pos.div_ceil(alignment) * alignment;
    let embd = tensors
        .iter()
        .position(|t| t.name == TOKEN_EMBD)
        .ok_or_else(|| malformed(format!("no tensor {TOKEN_EMBD}")))?;
    if tensors[embd].ty != Q8_0 || tensors[embd].dims.first().is_none_or(|&d| d % BLOCK as u64 != 0) {
        return Err(malformed(format!(
            "{TOKEN_EMBD} is ggml type {} with rows of {:?}: expected q8_0 rows of a multiple of 32",
            tensors[embd].ty,
            tensors[embd].dims.first()
        )));
    }
    for (t, bytes) in tensors.iter().zip(&sizes) {
        let end = data_start + t.offset + bytes;
        if end > size {
            return Err(GgufError::Truncated { path: src.into(), what: t.name.clone(), needed: end, actual: size });
        }
    }

    let mut raw = r.inner.into_inner();
    let mut kv = vec![0u8; (kv_end - kv_start) as usize];
    raw.seek(SeekFrom::Start(kv_start)).map_err(io_src)?;
    raw.read_exact(&mut kv).map_err(io_src)?;

    let out = File::create(dst).map_err(io_dst)?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let mut header = Vec::new();
    header.extend_from_slice(b"GGUF");
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&tensor_count.to_le_bytes());
    header.extend_from_slice(&kv_count.to_le_bytes());
    header.extend_from_slice(&kv);
    // New offsets: the same order, each tensor aligned.
    let mut offset = 0u64;
    let mut layout = Vec::with_capacity(tensors.len());
    for (i, (t, &bytes)) in tensors.iter().zip(&sizes).enumerate() {
        let (ty, bytes) = if i == embd { (Q5_0, bytes / Q8_0_BYTES as u64 * Q5_0_BYTES as u64) } else { (t.ty, bytes) };
        header.extend_from_slice(&(t.name.len() as u64).to_le_bytes());
        header.extend_from_slice(t.name.as_bytes());
        header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            header.extend_from_slice(&d.to_le_bytes());
        }
        header.extend_from_slice(&ty.to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        layout.push((offset, bytes));
        offset = (offset + bytes).div_ceil(alignment) * alignment;
    }
    header.resize(header.len().div_ceil(alignment as usize) * alignment as usize, 0);
    w.write_all(&header).map_err(io_dst)?;

    let mut written = 0u64;
    for (i, ((t, &src_bytes), &(at, bytes))) in tensors.iter().zip(&sizes).zip(&layout).enumerate() {
        w.write_all(&vec![0u8; (at - written) as usize]).map_err(io_dst)?;
        raw.seek(SeekFrom::Start(data_start + t.offset)).map_err(io_src)?;
        if i == embd {
            // Row by row: the whole embedding never sits in memory twice.
            let row_blocks = (t.dims[0] as usize) / BLOCK;
            let mut q8 = vec![0u8; row_blocks * Q8_0_BYTES];
            let mut q5 = vec![0u8; row_blocks * Q5_0_BYTES];
            for _ in 0..src_bytes / q8.len() as u64 {
                raw.read_exact(&mut q8).map_err(io_src)?;
                for (a, b) in q8.chunks_exact(Q8_0_BYTES).zip(q5.chunks_exact_mut(Q5_0_BYTES)) {
                    let d = f16::from_le_bytes([a[0], a[1]]).to_f32();
                    let x: [f32; BLOCK] = std::array::from_fn(|j| d * f32::from(a[2 + j] as i8));
                    quantize_q5_0_block(&x, b);
                }
                w.write_all(&q5).map_err(io_dst)?;
            }
        } else {
            let copied = std::io::copy(&mut (&mut raw).take(src_bytes), &mut w).map_err(io_dst)?;
            if copied != src_bytes {
                return Err(GgufError::Truncated {
                    path: src.into(),
                    what: t.name.clone(),
                    needed: src_bytes,
                    actual: copied,
                });
            }
        }
        written = at + bytes;
    }
    w.flush().map_err(io_dst)?;
    w.into_inner().map_err(|e| io_dst(e.into_error()))?.sync_all().map_err(io_dst)?;
    Ok(())
}

/// ggml's `quantize_row_q5_0_ref` for one block: scale by the value of largest magnitude so that
/// it maps to -16, five-bit codes 0..=31 split into low nibbles and a 32-bit mask of high bits.
fn quantize_q5_0_block(x: &[f32; BLOCK], out: &mut [u8]) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    let mut qh = 0u32;
    for j in 0..BLOCK / 2 {
        // As C's (int8_t) cast: truncation toward zero of a value that is >= 0.5 here.
        let x0 = ((x[j] * id + 16.5) as i8).min(31) as u8;
        let x1 = ((x[BLOCK / 2 + j] * id + 16.5) as i8).min(31) as u8;
        out[6 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
        qh |= u32::from((x0 & 0x10) >> 4) << j;
        qh |= u32::from((x1 & 0x10) >> 4) << (j + BLOCK / 2);
    }
    out[2..6].copy_from_slice(&qh.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dequantize_q5_0_block(b: &[u8]) -> [f32; BLOCK] {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        std::array::from_fn(|j| {
            let (nib, bit) =
                if j < 16 { (b[6 + j] & 0x0f, (qh >> j) & 1) } else { (b[6 + j - 16] >> 4, (qh >> j) & 1) };
            d * (f32::from(nib | ((bit as u8) << 4)) - 16.0)
        })
    }

    #[test]
    fn q5_0_round_trip_is_within_half_a_step() {
        // Largest magnitude negative, the positive side within 15 steps: no value is clamped.
        let x: [f32; BLOCK] = std::array::from_fn(|j| ((j as f32) * 0.37).sin() * 0.05 - 0.01);
        let mut b = [0u8; Q5_0_BYTES];
        quantize_q5_0_block(&x, &mut b);
        let y = dequantize_q5_0_block(&b);
        let step = x.iter().fold(0f32, |m, v| m.max(v.abs())) / 16.0;
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= step * 0.51, "{a} -> {b} (step {step})");
        }
        // The value of largest magnitude is exactly representable (code 0 or its sign's end).
        let (i, _) = x.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        assert!((x[i] - y[i]).abs() < step * 0.01, "{} -> {}", x[i], y[i]);
    }

    #[test]
    fn an_all_zero_block_stays_zero() {
        let mut b = [0xffu8; Q5_0_BYTES];
        quantize_q5_0_block(&[0.0; BLOCK], &mut b);
        assert!(dequantize_q5_0_block(&b).iter().all(|&v| v == 0.0));
    }
}
