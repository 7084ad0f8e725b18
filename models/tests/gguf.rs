//! GGUF inspection: real models, a non-4-bit file, wrong magic and truncation.

mod common;

use sotto_models::{gguf, GgufError};

/// Appends a GGUF string (u64 length, bytes).
fn s(out: &mut Vec<u8>, v: &str) {
    out.extend((v.len() as u64).to_le_bytes());
    out.extend(v.as_bytes());
}

/// A minimal GGUF v3 file: metadata (architecture, file type, context length, optional chat
/// template) and one F16 tensor of 64 elements (128 bytes of data).
fn tiny_gguf(file_type: u32, chat_template: bool) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // tensors
    b.extend((3 + chat_template as u64).to_le_bytes()); // metadata entries
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "llama");
    s(&mut b, "general.file_type");
    b.extend(4u32.to_le_bytes());
    b.extend(file_type.to_le_bytes());
    s(&mut b, "llama.context_length");
    b.extend(4u32.to_le_bytes());
    b.extend(2048u32.to_le_bytes());
    if chat_template {
        s(&mut b, "tokenizer.chat_template");
        b.extend(8u32.to_le_bytes());
        s(&mut b, "{{ messages }}");
    }
    s(&mut b, "tok_embd.weight");
    b.extend(2u32.to_le_bytes());
    b.extend(16u64.to_le_bytes());
    b.extend(4u64.to_le_bytes());
    b.extend(1u32.to_le_bytes()); // F16
    b.extend(0u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend([0u8; 128]);
    b
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn synthetic_f16_model_is_accepted_but_not_4bit() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "f16.gguf", &tiny_gguf(1, true));
    let info = gguf::inspect(&p).unwrap();
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.quantization, "F16");
    assert!(!info.is_4bit());
    assert_eq!(info.context_length, Some(2048));
    assert!(info.has_chat_template);
    let q4 = write(&dir, "q4.gguf", &tiny_gguf(15, false));
    let info = gguf::inspect(&q4).unwrap();
    assert_eq!(info.quantization, "Q4_K_M");
    assert!(info.is_4bit() && !info.has_chat_template);
}

#[test]
fn wrong_magic_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = tiny_gguf(15, false);
    bytes[..4].copy_from_slice(b"GGML");
    let p = write(&dir, "bad.gguf", &bytes);
    let err = gguf::inspect(&p).unwrap_err();
    assert!(matches!(err, GgufError::BadMagic { .. }), "{err:?}");
    assert!(err.to_string().contains("not a GGUF file") && err.to_string().contains("bad.gguf"));
    let empty = write(&dir, "empty.gguf", b"");
    assert!(matches!(gguf::inspect(&empty), Err(GgufError::BadMagic { .. })));
}

#[test]
fn truncation_in_header_or_data_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let full = tiny_gguf(15, true);
    // Cut inside the tensor data, then inside the metadata.
    for cut in [full.len() - 1, 40] {
        let p = write(&dir, "cut.gguf", &full[..cut]);
        let err = gguf::inspect(&p).unwrap_err();
        assert!(matches!(err, GgufError::Truncated { .. }), "cut at {cut}: {err:?}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}

#[test]
fn real_gemma_is_the_gemma3_base_model_in_q4_k_m() {
    let info = gguf::inspect(&common::real_model("gemma3-270m-q4_k_m")).unwrap();
    assert_eq!(info.architecture.as_deref(), Some("gemma3"));
    assert_eq!(info.quantization, "Q4_K_M");
    assert!(info.is_4bit());
    assert_eq!(info.context_length, Some(32768));
    // The 270M file is the base (not instruction-tuned) model: it ships no chat template.
    assert!(!info.has_chat_template);
}

#[test]
fn real_smollm2_is_llama_q4_1() {
    let path = common::real_model("smollm2-135m-instruct-q4_1");
    let info = gguf::inspect(&path).unwrap();
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.quantization, "Q4_1");
    assert!(info.is_4bit());
    assert!(info.has_chat_template);
    // A real model cut short by one byte is reported as truncated, not parsed.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(gguf::inspect(&cut), Err(GgufError::Truncated { .. })));
}

/// The start of a GGUF v3 file of two tensors and `kv_count` metadata entries, the first of which,
/// `general.architecture = "gemma3"`, it writes.
fn gemma3_header(kv_count: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(kv_count.to_le_bytes());
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "gemma3");
    b
}

/// The tensor table (an f16 `a` of 64 values, then a q8_0 `token_embd.weight` of `rows` rows of
/// `row` values), the padding, and `a`'s data: the embedding's data is the caller's to append.
fn a_and_q8_embedding(b: &mut Vec<u8>, row: u64, rows: u64) {
    s(b, "a");
    b.extend(1u32.to_le_bytes());
    b.extend(64u64.to_le_bytes());
    b.extend(1u32.to_le_bytes()); // F16
    b.extend(0u64.to_le_bytes());
    s(b, "token_embd.weight");
    b.extend(2u32.to_le_bytes());
    b.extend(row.to_le_bytes());
    b.extend(rows.to_le_bytes());
    b.extend(8u32.to_le_bytes()); // Q8_0
    b.extend(128u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend((0..128u32).map(|i| (i * 7 % 251) as u8));
}

/// A GGUF v3 file with an f16 tensor `a` (64 values) and a q8_0 `token_embd.weight` of `rows` rows
/// of 64 values, with `values(i)` as the embedding's i-th value.
fn gguf_with_q8_embedding(rows: u64, values: impl Fn(usize) -> f32) -> Vec<u8> {
    let mut b = gemma3_header(1);
    a_and_q8_embedding(&mut b, 64, rows);
    let x: Vec<f32> = (0..rows as usize * 64).map(values).collect();
    for block in x.chunks(32) {
        let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        b.extend(half::f16::from_f32(d).to_le_bytes());
        b.extend(block.iter().map(|v| if d == 0.0 { 0 } else { (v / d).round() as i8 as u8 }));
    }
    b
}

/// A GGUF file's metadata read by hand: (key, value type, value bytes) of each entry, and where
/// the tensor table starts.
fn metadata(bytes: &[u8]) -> (Vec<(String, u32, Vec<u8>)>, usize) {
    let u32_at = |p: usize| u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
    let u64_at = |p: usize| u64::from_le_bytes(bytes[p..p + 8].try_into().unwrap()) as usize;
    fn width(ty: u32) -> Option<usize> {
        match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        }
    }
    let value_len = |at: usize, ty: u32| -> usize {
        match (ty, width(ty)) {
            (_, Some(w)) => w,
            (8, _) => 8 + u64_at(at),
            (9, _) => {
                let (elem, n) = (u32_at(at), u64_at(at + 4));
                let mut q = at + 12;
                for _ in 0..n {
                    q += width(elem).unwrap_or_else(|| 8 + u64_at(q));
                }
                q - at
            }
            (t, _) => panic!("value type {t}"),
        }
    };
    let n_kv = u64_at(16);
    let mut p = 24;
    let mut out = Vec::new();
    for _ in 0..n_kv {
        let klen = u64_at(p);
        let key = String::from_utf8(bytes[p + 8..p + 8 + klen].to_vec()).unwrap();
        p += 8 + klen;
        let ty = u32_at(p);
        p += 4;
        let n = value_len(p, ty);
        out.push((key, ty, bytes[p..p + n].to_vec()));
        p += n;
    }
    (out, p)
}

/// The data of tensor `name` (offset, ggml type) read from a GGUF file by hand, as llama.cpp does.
fn tensor(bytes: &[u8], name: &str) -> (u32, Vec<u8>) {
    let mut p = 8;
    let u64_at = |p: &mut usize| {
        let v = u64::from_le_bytes(bytes[*p..*p + 8].try_into().unwrap());
        *p += 8;
        v
    };
    let n_tensors = u64_at(&mut p);
    let (_, end) = metadata(bytes);
    p = end;
    let mut found = None;
    let mut infos = Vec::new();
    for _ in 0..n_tensors {
        let len = u64_at(&mut p) as usize;
        let n = String::from_utf8(bytes[p..p + len].to_vec()).unwrap();
        p += len;
        let dims = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
        p += 4;
        let elems: u64 = (0..dims).map(|_| u64_at(&mut p)).product();
        let ty = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
        p += 4;
        let off = u64_at(&mut p);
        infos.push((n, ty, off, elems));
    }
    let start = p.div_ceil(32);
    for (n, ty, off, elems) in infos {
        if n == name {
            let size = match ty {
                1 => elems * 2,
                8 => elems / 32 * 34,
                6 => elems / 32 * 22,
                t => panic!("type {t}"),
            };
            assert_eq!(off % 32, 0, "{name} is aligned");
            let at = start * 32 + off as usize;
            found = Some((ty, bytes[at..at + size as usize].to_vec()));
        }
    }
    found.unwrap_or_else(|| panic!("no tensor {name}"))
}

/// The same input gives the same bytes (`first` is the first result): the store pins a derived
/// file's sha256.
fn assert_deterministic(
    derive: fn(&std::path::Path, &std::path::Path) -> Result<(), GgufError>,
    src: &std::path::Path,
    first: &[u8],
) {
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.gguf");
    derive(src, &again).unwrap();
    assert!(std::fs::read(&again).unwrap() == first, "a second derivation of {} differs", src.display());
}

fn dequantize_q5_0(data: &[u8]) -> Vec<f32> {
    data.chunks(22)
        .flat_map(|b| {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            (0..32).map(move |j| {
                let nib = if j < 16 { b[6 + j] & 0x0f } else { b[6 + j - 16] >> 4 };
                d * (f32::from(nib | ((((qh >> j) & 1) as u8) << 4)) - 16.0)
            })
        })
        .collect()
}

#[test]
fn token_embedding_is_requantised_to_q5_0_and_the_rest_copied() {
    use sotto_models::gguf_requant::token_embd_q5_0;
    let dir = tempfile::tempdir().unwrap();
    let value = |i: usize| ((i as f32) * 0.61).sin() * 0.08;
    let src_bytes = gguf_with_q8_embedding(3, value);
    let src = write(&dir, "q8.gguf", &src_bytes);
    let dst = dir.path().join("q5.gguf");
    token_embd_q5_0(&src, &dst).unwrap();
    let out = std::fs::read(&dst).unwrap();
    assert_eq!(gguf::inspect(&dst).unwrap().architecture.as_deref(), Some("gemma3"));
    assert_eq!(tensor(&out, "a"), tensor(&src_bytes, "a"), "other tensors are copied byte for byte");
    let (ty, q5) = tensor(&out, "token_embd.weight");
    assert_eq!(ty, 6, "q5_0");
    let y = dequantize_q5_0(&q5);
    assert_eq!(y.len(), 3 * 64);
    for (i, v) in y.iter().enumerate() {
        // Two roundings (q8_0 then q5_0): within one q5_0 step (a block's largest magnitude, at
        // most 0.08, over 16; the far end of the range is clamped to code 31).
        assert!((v - value(i)).abs() <= 0.08 / 16.0 * 1.02, "value {i}: {} became {v}", value(i));
    }
    assert_deterministic(token_embd_q5_0, &src, &out);
}

#[test]
fn requantising_refuses_what_it_cannot_convert_naming_the_file() {
    use sotto_models::gguf_requant::token_embd_q5_0;
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.gguf");
    // No q8_0 embedding: the f16 test file of the inspection tests.
    let f16 = write(&dir, "f16.gguf", &tiny_gguf(1, false));
    let err = token_embd_q5_0(&f16, &dst).unwrap_err().to_string();
    assert!(err.contains("f16.gguf") && err.contains("token_embd.weight"), "{err}");
    // A file cut inside the embedding's data.
    let full = gguf_with_q8_embedding(2, |i| i as f32);
    let cut = write(&dir, "cut.gguf", &full[..full.len() - 10]);
    let err = token_embd_q5_0(&cut, &dst).unwrap_err();
    assert!(matches!(err, GgufError::Truncated { .. }) && err.to_string().contains("cut.gguf"), "{err}");
}

#[test]
fn real_derived_gemma_is_the_base_with_a_q5_0_embedding() {
    let base = gguf::inspect(&common::real_model("gemma3-270m-q4_k_m")).unwrap();
    let derived = gguf::inspect(&common::real_model("gemma3-270m-q4_k_m-emb-q5_0")).unwrap();
    // The metadata is the base's: same architecture, tokenizer, file type and tensors.
    assert_eq!(
        (derived.architecture, derived.quantization, derived.tensor_count),
        (base.architecture, base.quantization, base.tensor_count)
    );
    assert_eq!(derived.context_length, base.context_length);
    assert!(derived.file_size + 60_000_000 < base.file_size, "{} vs {}", derived.file_size, base.file_size);
}

/// A GGUF v3 file with a SentencePiece vocabulary of `tokens` (text, llama.cpp token type), special
/// ids bos 2 / eos 1 / eot `eot`, an f16 tensor `a` and a q8_0 `token_embd.weight` whose row `r`
/// holds the value `r` everywhere.
fn gguf_with_vocabulary(tokens: &[(&str, i32)], eot: u32) -> Vec<u8> {
    let mut b = gemma3_header(7);
    s(&mut b, "tokenizer.ggml.model");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "llama");
    let array = |b: &mut Vec<u8>, key: &str, elem: u32| {
        s(b, key);
        b.extend(9u32.to_le_bytes());
        b.extend(elem.to_le_bytes());
        b.extend((tokens.len() as u64).to_le_bytes());
    };
    array(&mut b, "tokenizer.ggml.tokens", 8);
    for (t, _) in tokens {
        s(&mut b, t);
    }
    array(&mut b, "tokenizer.ggml.scores", 6);
    for i in 0..tokens.len() {
        b.extend((-(i as f32)).to_le_bytes());
    }
    array(&mut b, "tokenizer.ggml.token_type", 5);
    for (_, ty) in tokens {
        b.extend(ty.to_le_bytes());
    }
    for (key, id) in [("tokenizer.ggml.bos_token_id", 2u32), ("tokenizer.ggml.eot_token_id", eot)] {
        s(&mut b, key);
        b.extend(4u32.to_le_bytes());
        b.extend(id.to_le_bytes());
    }
    a_and_q8_embedding(&mut b, 32, tokens.len() as u64);
    for r in 0..tokens.len() {
        b.extend(half::f16::from_f32(r as f32).to_le_bytes());
        b.extend([1u8; 32]);
    }
    b
}

const VOCABULARY: &[(&str, i32)] = &[
    ("<pad>", 3),
    ("<eos>", 3),
    ("<bos>", 3),
    ("<unused0>", 3),
    ("\u{2581}hello", 1),
    ("\u{2581}für", 1),
    ("<end_of_turn>", 3),
    ("<0xC3>", 6),
    ("{\"", 1),
    ("日本", 4),
];

#[test]
fn vocabulary_is_cut_to_ascii_with_its_embedding_rows_and_special_ids() {
    use sotto_models::gguf_vocab::ascii_vocabulary;
    let dir = tempfile::tempdir().unwrap();
    let src_bytes = gguf_with_vocabulary(VOCABULARY, 6);
    let src = write(&dir, "full.gguf", &src_bytes);
    let dst = dir.path().join("en.gguf");
    ascii_vocabulary(&src, &dst).unwrap();
    let out = std::fs::read(&dst).unwrap();
    let kept = [0usize, 1, 2, 4, 6, 7, 8];
    let (meta, _) = metadata(&out);
    let value = |key: &str| meta.iter().find(|m| m.0 == key).unwrap_or_else(|| panic!("no {key}")).2.clone();
    // Tokens, scores and types: the kept ones, in their order.
    let tokens = value("tokenizer.ggml.tokens");
    assert_eq!(u64::from_le_bytes(tokens[4..12].try_into().unwrap()), kept.len() as u64);
    let mut expected = Vec::new();
    for &k in &kept {
        s(&mut expected, VOCABULARY[k].0);
    }
    assert_eq!(&tokens[12..], &expected[..]);
    let scores = value("tokenizer.ggml.scores");
    let scores: Vec<f32> = scores[12..].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(scores, kept.iter().map(|&k| -(k as f32)).collect::<Vec<_>>());
    // Ids: bos keeps 2, the end-of-turn token moves from 6 to 4; the rest of the metadata is kept.
    assert_eq!(value("tokenizer.ggml.bos_token_id"), 2u32.to_le_bytes());
    assert_eq!(value("tokenizer.ggml.eot_token_id"), 4u32.to_le_bytes());
    assert_eq!(meta.len(), 7);
    // The embedding keeps the kept tokens' rows, as they were; the other tensor is copied.
    assert_eq!(tensor(&out, "a"), tensor(&src_bytes, "a"));
    let (ty, rows) = tensor(&out, "token_embd.weight");
    assert_eq!(ty, 8);
    let scales: Vec<f32> = rows.chunks(34).map(|r| half::f16::from_le_bytes([r[0], r[1]]).to_f32()).collect();
    assert_eq!(scales, kept.iter().map(|&k| k as f32).collect::<Vec<_>>());
    assert_eq!(gguf::inspect(&dst).unwrap().architecture.as_deref(), Some("gemma3"));
    assert_deterministic(ascii_vocabulary, &src, &out);
}

#[test]
fn cutting_a_vocabulary_refuses_to_drop_a_special_token_or_a_bpe_vocabulary() {
    use sotto_models::gguf_vocab::ascii_vocabulary;
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.gguf");
    // The end-of-turn id names a token that is not ASCII.
    let src = write(&dir, "special.gguf", &gguf_with_vocabulary(VOCABULARY, 5));
    let err = ascii_vocabulary(&src, &dst).unwrap_err().to_string();
    assert!(err.contains("special.gguf") && err.contains("tokenizer.ggml.eot_token_id"), "{err}");
    // A file without a SentencePiece vocabulary: the f16 test file of the inspection tests.
    let none = write(&dir, "plain.gguf", &tiny_gguf(1, false));
    let err = ascii_vocabulary(&none, &dst).unwrap_err().to_string();
    assert!(err.contains("plain.gguf") && err.contains("tokenizer.ggml.model"), "{err}");
}

#[test]
fn real_english_gemma_keeps_the_ascii_tokens() {
    let base = gguf::inspect(&common::real_model("gemma3-270m-q4_k_m-emb-q5_0")).unwrap();
    let en = gguf::inspect(&common::real_model("gemma3-270m-q4_k_m-en")).unwrap();
    assert_eq!(
        (en.architecture, en.tensor_count, en.context_length),
        (base.architecture, base.tensor_count, base.context_length)
    );
    // 144k of 262k rows of 440 bytes.
    assert!(en.file_size + 50_000_000 < base.file_size, "{} vs {}", en.file_size, base.file_size);
}
