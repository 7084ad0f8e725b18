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

use std::io::Read;
use std::path::{Path, PathBuf};

use half::f16;

use crate::error::GgufError;
use crate::gguf::{Rewrite, TensorOut};

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
    let mut g = Rewrite::open(src)?;
    let embd = g.tensor(TOKEN_EMBD)?;
    let t = &g.tensors[embd];
    if t.ty != Q8_0 || t.dims.first().is_none_or(|&d| d % BLOCK as u64 != 0) {
        return Err(GgufError::Malformed {
            path: src.into(),
            message: format!(
                "{TOKEN_EMBD} is ggml type {} with rows of {:?}: expected q8_0 rows of a multiple of 32",
                t.ty,
                t.dims.first()
            ),
        });
    }
    let row_blocks = (t.dims[0] as usize) / BLOCK;
    let changed =
        TensorOut { dims: t.dims.clone(), ty: Q5_0, bytes: g.sizes[embd] / Q8_0_BYTES as u64 * Q5_0_BYTES as u64 };
    let out = g.outputs_with(embd, changed);
    // The metadata is kept as it is.
    let metadata = std::mem::take(&mut g.metadata);
    g.write(dst, &metadata, &out, |g, i, w| {
        if i != embd {
            return g.copy_tensor(i, w, dst);
        }
        let rows = g.sizes[i] / (row_blocks * Q8_0_BYTES) as u64;
        let raw = g.seek_tensor(i)?;
        // Row by row: the whole embedding never sits in memory twice.
        let mut q8 = vec![0u8; row_blocks * Q8_0_BYTES];
        let mut q5 = vec![0u8; row_blocks * Q5_0_BYTES];
        for _ in 0..rows {
            raw.read_exact(&mut q8).map_err(io_src)?;
            for (a, b) in q8.chunks_exact(Q8_0_BYTES).zip(q5.chunks_exact_mut(Q5_0_BYTES)) {
                let d = f16::from_le_bytes([a[0], a[1]]).to_f32();
                let x: [f32; BLOCK] = std::array::from_fn(|j| d * f32::from(a[2 + j] as i8));
                quantize_q5_0_block(&x, b);
            }
            w.write_all(&q5).map_err(io_dst)?;
        }
        Ok(())
    })
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
