//! GGUF inspection: real models, a non-4-bit file, wrong magic and truncation.

mod common;

use sotto_models::{gguf, GgufError};

/// A minimal GGUF v3 file: metadata (architecture, file type, context length, optional chat
/// template) and one F16 tensor of 64 elements (128 bytes of data).
fn tiny_gguf(file_type: u32, chat_template: bool) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend((v.len() as u64).to_le_bytes());
        out.extend(v.as_bytes());
    }
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
