//! CTranslate2 → ggml Whisper conversion, on a tiny synthetic model whose every value is known,
//! and on the real converted base model in the store.

mod common;

use std::collections::HashMap;
use std::path::Path;

use half::f16;
use sotto_models::whisper_ct2::{self, WeightType};
use sotto_models::ConvertError;

const STATE: usize = 4;
const MELS: usize = 2;
const FF: usize = 8;

/// Writes a CTranslate2 `model.bin` (binary version 6) with f16 weights whose values encode
/// their position, so that splits and layouts can be checked exactly.
struct Ct2Builder {
    vars: Vec<(String, Vec<usize>, u8, Vec<u8>)>,
}

impl Ct2Builder {
    fn f16(&mut self, name: &str, shape: &[usize], f: impl Fn(usize) -> f32) {
        let n: usize = shape.iter().product();
        let data = (0..n).flat_map(|i| f16::from_f32(f(i)).to_le_bytes()).collect();
        self.vars.push((name.into(), shape.to_vec(), 4, data));
    }
    fn i16(&mut self, name: &str, v: i16) {
        self.vars.push((name.into(), vec![], 2, v.to_le_bytes().to_vec()));
    }
    fn bytes(&self) -> Vec<u8> {
        fn s(out: &mut Vec<u8>, v: &str) {
            out.extend(((v.len() + 1) as u16).to_le_bytes());
            out.extend(v.as_bytes());
            out.push(0);
        }
        let mut b = 6u32.to_le_bytes().to_vec();
        s(&mut b, "WhisperSpec");
        b.extend(3u32.to_le_bytes());
        b.extend((self.vars.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in &self.vars {
            s(&mut b, name);
            b.push(shape.len() as u8);
            for d in shape {
                b.extend((*d as u32).to_le_bytes());
            }
            b.push(*dtype);
            b.extend((data.len() as u32).to_le_bytes());
            b.extend(data);
        }
        b.extend(1u32.to_le_bytes());
        s(&mut b, "decoder/projection/weight");
        s(&mut b, "decoder/embeddings/weight");
        b
    }
}

fn linear(b: &mut Ct2Builder, name: &str, rows: usize, cols: usize, zero_from: Option<(usize, usize)>) {
    b.f16(&format!("{name}/weight"), &[rows, cols], |i| (i % 97) as f32 / 8.0);
    b.f16(&format!("{name}/bias"), &[rows], |i| match zero_from {
        Some((a, z)) if i >= a && i < z => 0.0,
        _ => 1.0 + i as f32,
    });
}

fn norm(b: &mut Ct2Builder, name: &str) {
    b.f16(&format!("{name}/gamma"), &[STATE], |i| 1.0 + i as f32);
    b.f16(&format!("{name}/beta"), &[STATE], |i| -(i as f32));
}

/// A one-layer Whisper: vocabulary of 4 regular tokens + <|endoftext|> + 1 special.
fn synthetic(dir: &Path, key_bias: f32) {
    let mut b = Ct2Builder { vars: Vec::new() };
    b.f16("encoder/conv1/weight", &[STATE, MELS, 3], |i| i as f32);
    b.f16("encoder/conv1/bias", &[STATE], |i| i as f32);
    b.f16("encoder/conv2/weight", &[STATE, STATE, 3], |i| i as f32 / 64.0);
    b.f16("encoder/conv2/bias", &[STATE], |i| i as f32);
    b.f16("encoder/position_encodings/encodings", &[6, STATE], |i| i as f32);
    b.i16("encoder/num_heads", 2);
    b.i16("decoder/num_heads", 2);
    norm(&mut b, "encoder/layer_0/self_attention/layer_norm");
    linear(&mut b, "encoder/layer_0/self_attention/linear_0", 3 * STATE, STATE, Some((STATE, 2 * STATE)));
    linear(&mut b, "encoder/layer_0/self_attention/linear_1", STATE, STATE, None);
    norm(&mut b, "encoder/layer_0/ffn/layer_norm");
    linear(&mut b, "encoder/layer_0/ffn/linear_0", FF, STATE, None);
    linear(&mut b, "encoder/layer_0/ffn/linear_1", STATE, FF, None);
    norm(&mut b, "encoder/layer_norm");
    b.f16("decoder/embeddings/weight", &[6, STATE], |i| i as f32);
    b.f16("decoder/position_encodings/encodings", &[5, STATE], |i| i as f32);
    norm(&mut b, "decoder/layer_0/self_attention/layer_norm");
    linear(&mut b, "decoder/layer_0/self_attention/linear_0", 3 * STATE, STATE, Some((STATE, 2 * STATE)));
    linear(&mut b, "decoder/layer_0/self_attention/linear_1", STATE, STATE, None);
    norm(&mut b, "decoder/layer_0/attention/layer_norm");
    linear(&mut b, "decoder/layer_0/attention/linear_0", STATE, STATE, None);
    linear(&mut b, "decoder/layer_0/attention/linear_1", 2 * STATE, STATE, Some((0, STATE)));
    linear(&mut b, "decoder/layer_0/attention/linear_2", STATE, STATE, None);
    norm(&mut b, "decoder/layer_0/ffn/layer_norm");
    linear(&mut b, "decoder/layer_0/ffn/linear_0", FF, STATE, None);
    linear(&mut b, "decoder/layer_0/ffn/linear_1", STATE, FF, None);
    norm(&mut b, "decoder/layer_norm");
    let mut bytes = b.bytes();
    if key_bias != 0.0 {
        // Make the encoder key bias non-zero by rebuilding that variable.
        let mut b2 = Ct2Builder { vars: b.vars.clone() };
        let kb = b2.vars.iter_mut().find(|v| v.0 == "encoder/layer_0/self_attention/linear_0/bias").unwrap();
        let vals: Vec<f32> =
            (0..3 * STATE).map(|i| if (STATE..2 * STATE).contains(&i) { key_bias } else { 1.0 }).collect();
        kb.3 = vals.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
        bytes = b2.bytes();
    }
    std::fs::write(dir.join("model.bin"), bytes).unwrap();
    // GPT-2 byte-level text: "Ġ" is the space byte, "Ċ" the newline.
    std::fs::write(dir.join("vocabulary.txt"), "a\nĠthe\nĊ\n\n<|endoftext|>\n<|startoftranscript|>\n").unwrap();
}

/// A parsed ggml Whisper file.
struct Ggml {
    hparams: Vec<i32>,
    mel: (usize, usize, Vec<f32>),
    vocab: Vec<Vec<u8>>,
    tensors: HashMap<String, (Vec<usize>, i32, Vec<u8>)>,
}

fn read_ggml(path: &Path) -> Ggml {
    let b = std::fs::read(path).unwrap();
    let mut p = 0;
    let rd = |p: &mut usize| {
        let v = i32::from_le_bytes(b[*p..*p + 4].try_into().unwrap());
        *p += 4;
        v
    };
    assert_eq!(rd(&mut p) as u32, 0x6767_6d6c, "magic");
    let hparams: Vec<i32> = (0..11).map(|_| rd(&mut p)).collect();
    let (n_mel, n_fft) = (rd(&mut p) as usize, rd(&mut p) as usize);
    let mel: Vec<f32> =
        b[p..p + 4 * n_mel * n_fft].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    p += 4 * n_mel * n_fft;
    let n_vocab = rd(&mut p) as usize;
    let mut vocab = Vec::new();
    for _ in 0..n_vocab {
        let l = rd(&mut p) as usize;
        vocab.push(b[p..p + l].to_vec());
        p += l;
    }
    let mut tensors = HashMap::new();
    while p < b.len() {
        let (nd, nl, ty) = (rd(&mut p) as usize, rd(&mut p) as usize, rd(&mut p));
        let dims: Vec<usize> = (0..nd).map(|_| rd(&mut p) as usize).collect();
        let name = String::from_utf8(b[p..p + nl].to_vec()).unwrap();
        p += nl;
        let n: usize = dims.iter().product();
        let size = match ty {
            0 => 4 * n,
            1 => 2 * n,
            8 => n / 32 * 34,
            t => panic!("type {t}"),
        };
        tensors.insert(name, (dims, ty, b[p..p + size].to_vec()));
        p += size;
    }
    Ggml { hparams, mel: (n_mel, n_fft, mel), vocab, tensors }
}

fn f16s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
}
fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn synthetic_model_converts_with_split_projections_and_byte_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path(), 0.0);
    let out = dir.path().join("ggml.bin");
    let info = whisper_ct2::convert_atomic(dir.path(), &out, WeightType::F16).unwrap();
    // conv 4 + pos 1 + 15 per encoder block + ln_post 2; emb 2 + 24 per decoder block + ln 2.
    assert_eq!(info.tensors, 4 + 1 + 15 + 2 + 2 + 24 + 2);
    let g = read_ggml(&out);
    assert_eq!(g.hparams, vec![6, 6, STATE as i32, 2, 1, 5, STATE as i32, 2, 1, MELS as i32, 1]);
    assert_eq!((g.mel.0, g.mel.1), (MELS, 201));
    // Regular tokens only, as raw bytes (the empty token keeps its id).
    assert_eq!(g.vocab, vec![b"a".to_vec(), b" the".to_vec(), b"\n".to_vec(), Vec::new()]);

    let (dims, ty, data) = &g.tensors["encoder.blocks.0.attn.key.weight"];
    assert_eq!((dims.clone(), *ty), (vec![STATE, STATE], 1));
    // Rows STATE..2*STATE of the fused weight.
    let expected: Vec<f32> = (STATE * STATE..2 * STATE * STATE).map(|i| (i % 97) as f32 / 8.0).collect();
    assert_eq!(f16s(data), expected);
    let (_, _, vb) = &g.tensors["encoder.blocks.0.attn.value.bias"];
    assert_eq!(f32s(vb), (2 * STATE..3 * STATE).map(|i| 1.0 + i as f32).collect::<Vec<_>>());
    assert!(!g.tensors.contains_key("encoder.blocks.0.attn.key.bias"));
    assert!(!g.tensors.contains_key("decoder.blocks.0.cross_attn.key.bias"));
    let (_, _, cvb) = &g.tensors["decoder.blocks.0.cross_attn.value.bias"];
    assert_eq!(f32s(cvb), (STATE..2 * STATE).map(|i| 1.0 + i as f32).collect::<Vec<_>>());
    // Conv bias as an [n, 1] column in f32; conv kernel dims innermost first; layer norms f32.
    assert_eq!(g.tensors["encoder.conv1.bias"].0, vec![1, STATE]);
    assert_eq!(g.tensors["encoder.conv1.bias"].1, 0);
    assert_eq!(g.tensors["encoder.conv1.weight"].0, vec![3, MELS, STATE]);
    let (_, ty, gamma) = &g.tensors["decoder.ln.weight"];
    assert_eq!((*ty, f32s(gamma)), (0, vec![1.0, 2.0, 3.0, 4.0]));
    assert_eq!(g.tensors["decoder.positional_embedding"].1, 0);
    assert!(g.tensors.contains_key("decoder.blocks.0.mlp.2.weight"));
}

#[test]
fn non_zero_key_bias_is_refused_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path(), 0.5);
    let out = dir.path().join("ggml.bin");
    let err = whisper_ct2::convert_atomic(dir.path(), &out, WeightType::F16).unwrap_err();
    assert!(
        matches!(&err, ConvertError::BadVariable { name, .. } if name == "encoder/layer_0/self_attention/linear_0/bias"),
        "{err}"
    );
    assert!(!out.exists(), "a failed conversion must not leave the output file");
}

#[test]
fn truncated_or_foreign_model_bin_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path(), 0.0);
    let model = dir.path().join("model.bin");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let err = whisper_ct2::convert(dir.path(), &dir.path().join("o.bin"), WeightType::F16).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    std::fs::write(&model, b"GGUF....").unwrap();
    let err = whisper_ct2::convert(dir.path(), &dir.path().join("o.bin"), WeightType::F16).unwrap_err();
    assert!(matches!(err, ConvertError::Format { .. }), "{err}");
}

#[test]
fn mel_filterbank_is_slaney_normalised_triangles() {
    let m = whisper_ct2::mel_filters(80);
    assert_eq!(m.len(), 80 * 201);
    for row in m.chunks_exact(201) {
        assert!(row.iter().all(|v| *v >= 0.0));
        // A triangle: rises then falls, one peak.
        let peak = row.iter().cloned().fold(0f32, f32::max);
        assert!(peak > 0.0);
    }
    // Slaney normalisation: each filter's area (in Hz) is 1, so bin-sum × bin width ≈ 1 for the
    // wide high filters where the sampling of the triangle is fine.
    let bin_hz = 8000.0 / 200.0;
    for row in m.chunks_exact(201).skip(60) {
        let area: f32 = row.iter().sum::<f32>() * bin_hz;
        assert!((area - 1.0).abs() < 0.05, "area {area}");
    }
    // Below 1 kHz the mel scale is linear: the first filters are equally wide (200/3 Hz apart).
    let first_nonzero = |r: &[f32]| r.iter().position(|v| *v > 0.0).unwrap();
    let rows: Vec<&[f32]> = m.chunks_exact(201).collect();
    assert!(first_nonzero(rows[0]) <= 1 && first_nonzero(rows[3]) >= 3);
}

#[test]
fn q8_0_weights_are_quantised_in_blocks_of_32() {
    let dir = tempfile::tempdir().unwrap();
    synthetic(dir.path(), 0.0);
    let out = dir.path().join("q8.bin");
    whisper_ct2::convert_atomic(dir.path(), &out, WeightType::Q8_0).unwrap();
    let g = read_ggml(&out);
    assert_eq!(g.hparams[10], 7, "ftype q8_0");
    // Rows of 4 or 8 cannot form 32-blocks: such weights stay f16, f32 stays f32.
    assert_eq!(g.tensors["encoder.blocks.0.attn.query.weight"].1, 1);
    assert_eq!(g.tensors["decoder.ln.weight"].1, 0);
}

#[test]
fn real_base_model_in_the_store_has_whisper_base_shape() {
    let path = common::real_model("whisper-base");
    let g = read_ggml(&path);
    assert_eq!(g.hparams, vec![51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]);
    assert_eq!(g.vocab.len(), 50257);
    assert_eq!(g.vocab[3322], b"the".to_vec()); // line 3323 of vocabulary.txt
    assert_eq!(g.vocab[264], b" the".to_vec()); // "Ġthe"
    assert_eq!(g.tensors.len(), 245);
    assert_eq!(g.tensors["decoder.token_embedding.weight"].0, vec![512, 51865]);
}
