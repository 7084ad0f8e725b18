//! A GGUF language model whose vocabulary keeps only the tokens English text is made of.
//!
//! Why: Gemma 3's vocabulary has 262,144 tokens for 140 languages, and Gemma ties its output layer
//! to the token embedding: every logits row the model computes is a pass over all of them, the
//! largest part of the model, and the embedding is resident whole. Sotto's requests, prompts and
//! answers are English: the tokens that are ASCII (with SentencePiece's `▁` for a space), the byte
//! tokens and the control tokens in use are 144k of them.
//!
//! Tokenizing ASCII text gives exactly the same tokens as before: SentencePiece merges adjacent
//! pieces into a longer one by score, and every piece of ASCII text is itself ASCII, so every merge
//! it can make is still in the vocabulary, with its score. A character outside it (an accented
//! letter, a curly quote) is spelled with byte tokens instead of its own. Kept tokens keep their
//! order, so ids below the first dropped one (`<pad>`, `<eos>`, `<bos>`, `<unk>`) do not change; the
//! special-token ids in the metadata are renumbered, and a special token that would be dropped is
//! an error.
//!
//! Only the token list, its scores and types, the special ids and the embedding's rows change; the
//! rows are copied as they are (a row of a block-quantised matrix is whole blocks). The result is
//! deterministic (a pinned sha256 in the manifest).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::GgufError;
use crate::gguf::{Metadata, Rewrite, TensorOut};
use crate::gguf_requant::TOKEN_EMBD;

const TOKENS: &str = "tokenizer.ggml.tokens";
const SCORES: &str = "tokenizer.ggml.scores";
const TYPES: &str = "tokenizer.ggml.token_type";
const GGUF_STRING: u32 = 8;
const GGUF_ARRAY: u32 = 9;
const GGUF_F32: u32 = 6;
const GGUF_I32: u32 = 5;
const GGUF_U32: u32 = 4;

/// llama.cpp's token types.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

/// Whether a token stays: ASCII text pieces, byte tokens, the unknown token, and control tokens
/// other than the reserved `<unusedN>` ones.
fn keeps(text: &str, ty: i32) -> bool {
    match ty {
        NORMAL | USER_DEFINED => text.chars().all(|c| c.is_ascii() || c == '\u{2581}'),
        CONTROL => !text.starts_with("<unused"),
        UNKNOWN | BYTE => true,
        _ => false,
    }
}

/// Writes `src` to `dst` with only the tokens [`keeps`] allows. The vocabulary must be
/// SentencePiece's (`tokenizer.ggml.model = "llama"`): a BPE vocabulary's merges would have to be
/// pruned too.
pub fn ascii_vocabulary(src: &Path, dst: &Path) -> Result<(), GgufError> {
    let malformed = |message: String| GgufError::Malformed { path: src.into(), message };
    let io_src = |e| GgufError::Io { path: PathBuf::from(src), source: e };
    let io_dst = |e| GgufError::Io { path: PathBuf::from(dst), source: e };
    let mut g = Rewrite::open(src)?;
    let find = |g: &Rewrite, key: &str| g.metadata.iter().position(|m| m.key == key);
    let model = find(&g, "tokenizer.ggml.model").map(|i| read_string(&g.metadata[i].value));
    if model.as_deref() != Some("llama") {
        return Err(malformed(format!(
            "tokenizer.ggml.model is {model:?}: only a SentencePiece (\"llama\") vocabulary can be pruned"
        )));
    }
    let [tokens_at, scores_at, types_at] =
        [TOKENS, SCORES, TYPES].map(|key| find(&g, key).ok_or_else(|| malformed(format!("no {key} in the metadata"))));
    let (tokens_at, scores_at, types_at) = (tokens_at?, scores_at?, types_at?);
    let tokens = strings(&g.metadata[tokens_at]).map_err(|m| malformed(format!("{TOKENS}: {m}")))?;
    let scores = fixed(&g.metadata[scores_at], GGUF_F32).map_err(|m| malformed(format!("{SCORES}: {m}")))?;
    let types = fixed(&g.metadata[types_at], GGUF_I32).map_err(|m| malformed(format!("{TYPES}: {m}")))?;
    if scores.len() != tokens.len() * 4 || types.len() != tokens.len() * 4 {
        return Err(malformed(format!("{TOKENS}, {SCORES} and {TYPES} differ in length")));
    }
    let type_of = |i: usize| i32::from_le_bytes(types[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    let kept: Vec<usize> = (0..tokens.len()).filter(|&i| keeps(&tokens[i], type_of(i))).collect();
    let mut new_id = vec![None; tokens.len()];
    for (n, &i) in kept.iter().enumerate() {
        new_id[i] = Some(n as u32);
    }

    let embd = g.tensor(TOKEN_EMBD)?;
    let t = &g.tensors[embd];
    if t.dims.len() != 2 || t.dims[1] != tokens.len() as u64 || g.sizes[embd] % tokens.len() as u64 != 0 {
        return Err(malformed(format!(
            "{TOKEN_EMBD} has dims {:?}, expected [n_embd, {}] (the vocabulary)",
            t.dims,
            tokens.len()
        )));
    }
    if g.tensors.iter().any(|t| t.name == "output.weight") {
        return Err(malformed("a separate output.weight is not supported: only a tied embedding".into()));
    }
    let row_bytes = (g.sizes[embd] / tokens.len() as u64) as usize;
    let changed =
        TensorOut { dims: vec![t.dims[0], kept.len() as u64], ty: t.ty, bytes: (row_bytes * kept.len()) as u64 };

    let mut metadata = Vec::with_capacity(g.metadata.len());
    for (i, m) in g.metadata.iter().enumerate() {
        let value = if i == tokens_at {
            let mut v = array_header(GGUF_STRING, kept.len());
            for &k in &kept {
                v.extend_from_slice(&(tokens[k].len() as u64).to_le_bytes());
                v.extend_from_slice(tokens[k].as_bytes());
            }
            v
        } else if i == scores_at || i == types_at {
            let (ty, all) = if i == scores_at { (GGUF_F32, &scores) } else { (GGUF_I32, &types) };
            let mut v = array_header(ty, kept.len());
            for &k in &kept {
                v.extend_from_slice(&all[k * 4..k * 4 + 4]);
            }
            v
        } else if m.key.starts_with("tokenizer.ggml.") && m.key.ends_with("_token_id") && m.ty == GGUF_U32 {
            let old = u32::from_le_bytes(m.value[..4].try_into().map_err(|_| malformed(format!("{}: short", m.key)))?);
            let new = new_id.get(old as usize).copied().flatten().ok_or_else(|| {
                malformed(format!("{} is token {old}, which the pruned vocabulary does not keep", m.key))
            })?;
            new.to_le_bytes().to_vec()
        } else {
            m.value.clone()
        };
        metadata.push(Metadata { key: m.key.clone(), ty: m.ty, value });
    }
    let out = g.outputs_with(embd, changed);
    g.write(dst, &metadata, &out, |g, i, w| {
        if i != embd {
            return g.copy_tensor(i, w, dst);
        }
        let raw = g.seek_tensor(i)?;
        let mut row = vec![0u8; row_bytes];
        for keep in new_id.iter().map(Option::is_some) {
            raw.read_exact(&mut row).map_err(io_src)?;
            if keep {
                w.write_all(&row).map_err(io_dst)?;
            }
        }
        Ok(())
    })
}

fn array_header(ty: u32, n: usize) -> Vec<u8> {
    let mut v = ty.to_le_bytes().to_vec();
    v.extend_from_slice(&(n as u64).to_le_bytes());
    v
}

/// A string value's text (lossy: only compared).
fn read_string(value: &[u8]) -> String {
    String::from_utf8_lossy(value.get(8..).unwrap_or_default()).into_owned()
}

/// The strings of an array-of-strings value.
fn strings(m: &Metadata) -> Result<Vec<String>, String> {
    let v = &m.value;
    if m.ty != GGUF_ARRAY || v.len() < 12 || u32::from_le_bytes(v[..4].try_into().unwrap()) != GGUF_STRING {
        return Err("not an array of strings".into());
    }
    let n = u64::from_le_bytes(v[4..12].try_into().unwrap()) as usize;
    let mut out = Vec::with_capacity(n);
    let mut at = 12;
    for k in 0..n {
        let len = v.get(at..at + 8).ok_or(format!("string {k} cut off"))?;
        let len = u64::from_le_bytes(len.try_into().unwrap()) as usize;
        let text = v.get(at + 8..at + 8 + len).ok_or(format!("string {k} cut off"))?;
        out.push(String::from_utf8(text.to_vec()).map_err(|_| format!("string {k} is not UTF-8"))?);
        at += 8 + len;
    }
    Ok(out)
}

/// The element bytes of an array of 4-byte `ty` values.
fn fixed(m: &Metadata, ty: u32) -> Result<Vec<u8>, String> {
    let v = &m.value;
    if m.ty != GGUF_ARRAY || v.len() < 12 || u32::from_le_bytes(v[..4].try_into().unwrap()) != ty {
        return Err(format!("not an array of GGUF type {ty}"));
    }
    let n = u64::from_le_bytes(v[4..12].try_into().unwrap()) as usize;
    v.get(12..12 + n * 4).map(<[u8]>::to_vec).ok_or_else(|| "cut off".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_pieces_bytes_and_used_control_tokens_stay() {
        assert!(keeps("\u{2581}living", NORMAL));
        assert!(keeps("{\"", NORMAL));
        assert!(keeps("<0xE2>", BYTE));
        assert!(keeps("<start_of_turn>", CONTROL));
        assert!(keeps("<unk>", UNKNOWN));
        assert!(!keeps("\u{2581}für", NORMAL));
        assert!(!keeps("日本", NORMAL));
        assert!(!keeps("<unused42>", CONTROL));
        assert!(!keeps("x", 5));
    }
}
