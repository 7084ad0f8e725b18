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

/// A GGUF v3 file with an f16 tensor `a` (64 values) and a q8_0 `token_embd.weight` of `rows` rows
/// of 64 values, with `values(i)` as the embedding's i-th value.
fn gguf_with_q8_embedding(rows: u64, values: impl Fn(usize) -> f32) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "gemma3");
    s(&mut b, "a");
    b.extend(1u32.to_le_bytes());
    b.extend(64u64.to_le_bytes());
    b.extend(1u32.to_le_bytes()); // F16
    b.extend(0u64.to_le_bytes());
    s(&mut b, "token_embd.weight");
    b.extend(2u32.to_le_bytes());
    b.extend(64u64.to_le_bytes());
    b.extend(rows.to_le_bytes());
    b.extend(8u32.to_le_bytes()); // Q8_0
    b.extend(128u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend((0..128u32).map(|i| (i * 7 % 251) as u8));
    let x: Vec<f32> = (0..rows as usize * 64).map(values).collect();
    for block in x.chunks(32) {
        let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        b.extend(half::f16::from_f32(d).to_le_bytes());
        b.extend(block.iter().map(|v| if d == 0.0 { 0 } else { (v / d).round() as i8 as u8 }));
    }
    b
}

/// The data of tensor `name` (offset, ggml type) read from a GGUF file by hand, as llama.cpp does.
fn tensor(bytes: &[u8], name: &str) -> (u32, Vec<u8>) {
    let mut p = 8;
    let u64_at = |p: &mut usize| {
        let v = u64::from_le_bytes(bytes[*p..*p + 8].try_into().unwrap());
        *p += 8;
        v
    };
    let (n_tensors, n_kv) = (u64_at(&mut p), u64_at(&mut p));
    assert_eq!(n_kv, 1, "the test files have one metadata entry");
    let klen = u64_at(&mut p) as usize;
    p += klen + 4;
    let vlen = u64_at(&mut p) as usize;
    p += vlen;
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
    // The same input gives the same bytes: the store pins the result's sha256.
    let again = dir.path().join("again.gguf");
    token_embd_q5_0(&src, &again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), out);
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
