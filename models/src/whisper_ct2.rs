//! Conversion of a CTranslate2 Whisper model (the faster-whisper format: `model.bin` +
//! `vocabulary.txt`) into the ggml Whisper file that whisper.cpp loads.
//!
//! The two formats hold the same weights under different names and layouts: CTranslate2 fuses
//! the self-attention q/k/v projections (`linear_0`) and the cross-attention k/v projections
//! (`attention/linear_1`), stores layer-norm scale/shift as gamma/beta, and keeps the
//! vocabulary as GPT-2 byte-level BPE text; the ggml file wants separate q/k/v tensors without a
//! key bias, raw token bytes, and the mel filterbank in its header.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use half::f16;

use crate::error::ConvertError;

/// How the large (2-D) weights are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    F16,
    /// 8-bit blocks of 32 with an f16 scale: half the size of f16, whisper.cpp's `q8_0`.
    Q8_0,
}

impl WeightType {
    /// whisper.cpp's `ftype` header value.
    fn ftype(self) -> i32 {
        match self {
            WeightType::F16 => 1,
            WeightType::Q8_0 => 7,
        }
    }
}

const GGML_MAGIC: u32 = 0x6767_6d6c;
const CT2_BINARY_VERSION: u32 = 6;
const SAMPLE_RATE: f64 = 16000.0;
const N_FFT: usize = 400;

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct Converted {
    pub tensors: usize,
    pub n_vocab: usize,
    pub n_mels: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
}

struct Var {
    shape: Vec<usize>,
    dtype: u8,
    start: usize,
    len: usize,
}

/// A parsed CTranslate2 `model.bin` (variables point into the file's bytes).
pub struct Ct2Model {
    path: PathBuf,
    bytes: Vec<u8>,
    pub spec_name: String,
    vars: HashMap<String, Var>,
}

impl Ct2Model {
    pub fn open(path: &Path) -> Result<Ct2Model, ConvertError> {
        let bytes = std::fs::read(path).map_err(|e| ConvertError::Io { path: path.into(), source: e })?;
        Ct2Model::parse(path, bytes)
    }

    fn parse(path: &Path, bytes: Vec<u8>) -> Result<Ct2Model, ConvertError> {
        let mut c = Cursor { bytes: &bytes, pos: 0, path };
        let version = c.u32("binary version")?;
        if version != CT2_BINARY_VERSION {
            return Err(c.err(format!("binary version {version}, this converter reads version {CT2_BINARY_VERSION}")));
        }
        let spec_name = c.string("spec name")?;
        let _revision = c.u32("spec revision")?;
        let count = c.u32("variable count")?;
        let mut vars = HashMap::new();
        for i in 0..count {
            let name = c.string(&format!("name of variable #{i}"))?;
            let rank = c.u8(&name)? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32(&name)? as usize);
            }
            let dtype = c.u8(&name)?;
            let len = c.u32(&name)? as usize;
            let start = c.pos;
            c.take(len, &name)?;
            vars.insert(name, Var { shape, dtype, start, len });
        }
        // Aliases (e.g. the output projection tied to the embeddings) point at existing variables.
        let aliases = c.u32("alias count")?;
        for _ in 0..aliases {
            let alias = c.string("alias")?;
            let target = c.string("alias target")?;
            if let Some(v) = vars.get(&target) {
                let copy = Var { shape: v.shape.clone(), dtype: v.dtype, start: v.start, len: v.len };
                vars.insert(alias, copy);
            }
        }
        Ok(Ct2Model { path: path.into(), bytes, spec_name, vars })
    }

    fn var(&self, name: &str) -> Result<&Var, ConvertError> {
        self.vars.get(name).ok_or_else(|| ConvertError::MissingVariable { path: self.path.clone(), name: name.into() })
    }

    fn bad(&self, name: &str, message: impl Into<String>) -> ConvertError {
        ConvertError::BadVariable { path: self.path.clone(), name: name.into(), message: message.into() }
    }

    pub fn shape(&self, name: &str) -> Result<Vec<usize>, ConvertError> {
        Ok(self.var(name)?.shape.clone())
    }

    /// A floating-point variable as f32 values.
    pub fn floats(&self, name: &str) -> Result<Vec<f32>, ConvertError> {
        let v = self.var(name)?;
        let data = &self.bytes[v.start..v.start + v.len];
        let elements: usize = v.shape.iter().product();
        let (width, conv): (usize, fn(&[u8]) -> f32) = match v.dtype {
            0 => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            4 => (2, |b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
            5 => (2, |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            d => {
                return Err(self.bad(name, format!("type id {d}; only float32/float16/bfloat16 weights convert (int8-quantised CTranslate2 models do not)")))
            }
        };
        if data.len() != elements * width {
            return Err(self.bad(name, format!("{} bytes for shape {:?}", data.len(), v.shape)));
        }
        Ok(data.chunks_exact(width).map(conv).collect())
    }

    /// A small integer attribute (e.g. `encoder/num_heads`).
    pub fn int(&self, name: &str) -> Result<i64, ConvertError> {
        let v = self.var(name)?;
        let b = &self.bytes[v.start..v.start + v.len];
        Ok(match (v.dtype, b.len()) {
            (1, 1) => b[0] as i8 as i64,
            (2, 2) => i16::from_le_bytes([b[0], b[1]]) as i64,
            (3, 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => {
                return Err(
                    self.bad(name, format!("type id {} and {} bytes, expected a scalar integer", v.dtype, b.len()))
                )
            }
        })
    }

    fn count_layers(&self, prefix: &str) -> usize {
        (0..).take_while(|i| self.vars.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))).count()
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl Cursor<'_> {
    fn err(&self, message: String) -> ConvertError {
        ConvertError::Format { path: self.path.into(), message }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], ConvertError> {
        if self.pos + n > self.bytes.len() {
            return Err(self.err(format!(
                "truncated while reading {what}: needs {} bytes, the file has {}",
                self.pos + n,
                self.bytes.len()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ConvertError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, ConvertError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    fn string(&mut self, what: &str) -> Result<String, ConvertError> {
        let n = u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")) as usize;
        let raw = self.take(n, what)?;
        // Stored with a trailing NUL.
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
}

/// Slaney-style mel filterbank (librosa's default, as Whisper's `mel_filters.npz`): `n_mels` ×
/// (`N_FFT`/2 + 1), area-normalised triangles between mel-spaced edges from 0 Hz to Nyquist.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| if f >= MIN_LOG_HZ { MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep } else { f / F_SP };
    let mel_to_hz = |m: f64| if m >= MIN_LOG_MEL { MIN_LOG_HZ * (logstep * (m - MIN_LOG_MEL)).exp() } else { F_SP * m };

    let n_bins = N_FFT / 2 + 1;
    let nyquist = SAMPLE_RATE / 2.0;
    let fft_freqs: Vec<f64> = (0..n_bins).map(|i| i as f64 * nyquist / (n_bins - 1) as f64).collect();
    let (mel_lo, mel_hi) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let edges: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(mel_lo + (mel_hi - mel_lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut out = Vec::with_capacity(n_mels * n_bins);
    for m in 0..n_mels {
        let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (hi - lo);
        for &f in &fft_freqs {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            out.push((lower.min(upper).max(0.0) * norm) as f32);
        }
    }
    out
}

/// GPT-2's byte-level BPE alphabet: the printable character standing for each byte.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable.into_iter().zip(chars).map(|(b, c)| (char::from_u32(c).expect("valid code point"), b as u8)).collect()
}

/// The regular (non-special) tokens of `vocabulary.txt` as raw bytes, in id order. whisper.cpp
/// derives the special tokens' ids from the header's `n_vocab`, so the file lists only these.
pub fn read_vocabulary(path: &Path) -> Result<(Vec<Vec<u8>>, usize), ConvertError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConvertError::Io { path: path.into(), source: e })?;
    let decoder = byte_decoder();
    let lines: Vec<&str> = text.split('\n').collect();
    let lines = match lines.split_last() {
        Some((&"", rest)) => rest,
        _ => &lines[..],
    };
    let eot = lines.iter().position(|l| *l == "<|endoftext|>").ok_or_else(|| ConvertError::Vocabulary {
        path: path.into(),
        message: "no <|endoftext|> token: not a Whisper vocabulary".into(),
    })?;
    let mut tokens = Vec::with_capacity(eot);
    for (i, line) in lines[..eot].iter().enumerate() {
        let bytes: Option<Vec<u8>> = line.chars().map(|c| decoder.get(&c).copied()).collect();
        tokens.push(bytes.ok_or_else(|| ConvertError::Vocabulary {
            path: path.into(),
            message: format!("token {i} ({line:?}) has a character outside GPT-2's byte alphabet"),
        })?);
    }
    Ok((tokens, lines.len()))
}

#[derive(Clone, Copy, PartialEq)]
enum Out {
    F32,
    Weight,
}

struct GgmlWriter<W: Write> {
    out: W,
    weights: WeightType,
    tensors: usize,
}

impl<W: Write> GgmlWriter<W> {
    fn i32(&mut self, v: i32) -> std::io::Result<()> {
        self.out.write_all(&v.to_le_bytes())
    }

    /// One tensor; `shape` is row-major (outermost first) like numpy; ggml lists it innermost first.
    fn tensor(&mut self, name: &str, shape: &[usize], data: &[f32], kind: Out) -> std::io::Result<()> {
        let inner = *shape.last().expect("tensors have a shape");
        let ty = match kind {
            Out::F32 => 0,
            Out::Weight => match self.weights {
                WeightType::F16 => 1,
                // Only 2-D weights are quantised (as whisper.cpp's quantizer does); conv kernels stay f16.
                WeightType::Q8_0 if shape.len() == 2 && inner % 32 == 0 => 8,
                WeightType::Q8_0 => 1,
            },
        };
        self.i32(shape.len() as i32)?;
        self.i32(name.len() as i32)?;
        self.i32(ty)?;
        for &d in shape.iter().rev() {
            self.i32(d as i32)?;
        }
        self.out.write_all(name.as_bytes())?;
        match ty {
            0 => {
                for v in data {
                    self.out.write_all(&v.to_le_bytes())?;
                }
            }
            1 => {
                for v in data {
                    self.out.write_all(&f16::from_f32(*v).to_le_bytes())?;
                }
            }
            _ => {
                for block in data.chunks_exact(32) {
                    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let d = amax / 127.0;
                    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                    self.out.write_all(&f16::from_f32(d).to_le_bytes())?;
                    let qs: Vec<u8> = block.iter().map(|v| (v * id).round() as i8 as u8).collect();
                    self.out.write_all(&qs)?;
                }
            }
        }
        self.tensors += 1;
        Ok(())
    }
}

/// Converts the CTranslate2 Whisper model in `dir` into a ggml Whisper file at `out`
/// (created or truncated; callers wanting atomicity pass a temporary path).
pub fn convert(dir: &Path, out: &Path, weights: WeightType) -> Result<Converted, ConvertError> {
    let model = Ct2Model::open(&dir.join("model.bin"))?;
    if model.spec_name != "WhisperSpec" {
        return Err(ConvertError::Format {
            path: dir.join("model.bin"),
            message: format!("spec {:?}, expected \"WhisperSpec\"", model.spec_name),
        });
    }
    let (tokens, n_vocab_file) = read_vocabulary(&dir.join("vocabulary.txt"))?;
    let io = |e| ConvertError::Io { path: out.into(), source: e };
    let file = std::fs::File::create(out).map_err(io)?;
    let mut w = GgmlWriter { out: BufWriter::with_capacity(1 << 20, file), weights, tensors: 0 };
    let info = write_model(&model, &tokens, n_vocab_file, &mut w)?;
    let file = w.out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(info)
}

fn write_model<W: Write>(
    m: &Ct2Model,
    tokens: &[Vec<u8>],
    n_vocab_file: usize,
    w: &mut GgmlWriter<W>,
) -> Result<Converted, ConvertError> {
    let io = |e: std::io::Error| ConvertError::Io { path: m.path.clone(), source: e };
    let emb = m.shape("decoder/embeddings/weight")?;
    let enc_pos = m.shape("encoder/position_encodings/encodings")?;
    let dec_pos = m.shape("decoder/position_encodings/encodings")?;
    let conv1 = m.shape("encoder/conv1/weight")?;
    if emb.len() != 2 || enc_pos.len() != 2 || dec_pos.len() != 2 || conv1.len() != 3 {
        return Err(m.bad("decoder/embeddings/weight", "unexpected rank among embeddings/position encodings/conv1"));
    }
    let (n_vocab, n_text_state) = (emb[0], emb[1]);
    let (n_audio_ctx, n_audio_state) = (enc_pos[0], enc_pos[1]);
    let n_text_ctx = dec_pos[0];
    let n_mels = conv1[1];
    if n_vocab != n_vocab_file {
        return Err(
            m.bad("decoder/embeddings/weight", format!("{n_vocab} rows but vocabulary.txt has {n_vocab_file} tokens"))
        );
    }
    let enc_layers = m.count_layers("encoder");
    let dec_layers = m.count_layers("decoder");
    let hparams = [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        m.int("encoder/num_heads")? as usize,
        enc_layers,
        n_text_ctx,
        n_text_state,
        m.int("decoder/num_heads")? as usize,
        dec_layers,
        n_mels,
    ];
    w.out.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for h in hparams {
        w.i32(h as i32).map_err(io)?;
    }
    w.i32(w.weights.ftype()).map_err(io)?;

    let filters = mel_filters(n_mels);
    w.i32(n_mels as i32).map_err(io)?;
    w.i32((N_FFT / 2 + 1) as i32).map_err(io)?;
    for v in &filters {
        w.out.write_all(&v.to_le_bytes()).map_err(io)?;
    }

    w.i32(tokens.len() as i32).map_err(io)?;
    for t in tokens {
        w.i32(t.len() as i32).map_err(io)?;
        w.out.write_all(t).map_err(io)?;
    }

    // Copies one CT2 variable under its ggml name.
    let copy = |w: &mut GgmlWriter<W>, to: &str, from: &str, kind: Out| -> Result<(), ConvertError> {
        let shape = m.shape(from)?;
        let data = m.floats(from)?;
        w.tensor(to, &shape, &data, kind).map_err(io)
    };
    let linear = |w: &mut GgmlWriter<W>, to: &str, from: &str| -> Result<(), ConvertError> {
        copy(w, &format!("{to}.weight"), &format!("{from}/weight"), Out::Weight)?;
        copy(w, &format!("{to}.bias"), &format!("{from}/bias"), Out::F32)
    };
    let norm = |w: &mut GgmlWriter<W>, to: &str, from: &str| -> Result<(), ConvertError> {
        copy(w, &format!("{to}.weight"), &format!("{from}/gamma"), Out::F32)?;
        copy(w, &format!("{to}.bias"), &format!("{from}/beta"), Out::F32)
    };
    // Splits a fused projection (`names.len()` equal row blocks) into separate tensors. Whisper's
    // key projections have no bias; CTranslate2 stores zeros there, which must really be zero.
    let split = |w: &mut GgmlWriter<W>, to: &str, names: &[&str], from: &str| -> Result<(), ConvertError> {
        let wname = format!("{from}/weight");
        let bname = format!("{from}/bias");
        let shape = m.shape(&wname)?;
        let (weight, bias) = (m.floats(&wname)?, m.floats(&bname)?);
        let parts = names.len();
        if shape.len() != 2 || shape[0] % parts != 0 || bias.len() != shape[0] {
            return Err(m.bad(&wname, format!("shape {shape:?} cannot be split in {parts}")));
        }
        let rows = shape[0] / parts;
        let cols = shape[1];
        for (i, part) in names.iter().enumerate() {
            let wpart = &weight[i * rows * cols..(i + 1) * rows * cols];
            let bpart = &bias[i * rows..(i + 1) * rows];
            w.tensor(&format!("{to}.{part}.weight"), &[rows, cols], wpart, Out::Weight).map_err(io)?;
            if *part == "key" {
                if bpart.iter().any(|v| *v != 0.0) {
                    return Err(m.bad(&bname, "a non-zero key bias, which whisper.cpp cannot represent"));
                }
            } else {
                w.tensor(&format!("{to}.{part}.bias"), &[rows], bpart, Out::F32).map_err(io)?;
            }
        }
        Ok(())
    };
    // Conv biases are written as [n, 1] columns, the layout whisper.cpp adds to the conv output.
    let conv = |w: &mut GgmlWriter<W>, n: usize| -> Result<(), ConvertError> {
        copy(w, &format!("encoder.conv{n}.weight"), &format!("encoder/conv{n}/weight"), Out::Weight)?;
        let bias = m.floats(&format!("encoder/conv{n}/bias"))?;
        w.tensor(&format!("encoder.conv{n}.bias"), &[bias.len(), 1], &bias, Out::F32).map_err(io)
    };

    conv(w, 1)?;
    conv(w, 2)?;
    copy(w, "encoder.positional_embedding", "encoder/position_encodings/encodings", Out::F32)?;
    for i in 0..enc_layers {
        let (to, from) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        norm(w, &format!("{to}.attn_ln"), &format!("{from}/self_attention/layer_norm"))?;
        split(w, &format!("{to}.attn"), &["query", "key", "value"], &format!("{from}/self_attention/linear_0"))?;
        linear(w, &format!("{to}.attn.out"), &format!("{from}/self_attention/linear_1"))?;
        norm(w, &format!("{to}.mlp_ln"), &format!("{from}/ffn/layer_norm"))?;
        linear(w, &format!("{to}.mlp.0"), &format!("{from}/ffn/linear_0"))?;
        linear(w, &format!("{to}.mlp.2"), &format!("{from}/ffn/linear_1"))?;
    }
    norm(w, "encoder.ln_post", "encoder/layer_norm")?;

    copy(w, "decoder.token_embedding.weight", "decoder/embeddings/weight", Out::Weight)?;
    copy(w, "decoder.positional_embedding", "decoder/position_encodings/encodings", Out::F32)?;
    for i in 0..dec_layers {
        let (to, from) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        norm(w, &format!("{to}.attn_ln"), &format!("{from}/self_attention/layer_norm"))?;
        split(w, &format!("{to}.attn"), &["query", "key", "value"], &format!("{from}/self_attention/linear_0"))?;
        linear(w, &format!("{to}.attn.out"), &format!("{from}/self_attention/linear_1"))?;
        norm(w, &format!("{to}.cross_attn_ln"), &format!("{from}/attention/layer_norm"))?;
        linear(w, &format!("{to}.cross_attn.query"), &format!("{from}/attention/linear_0"))?;
        split(w, &format!("{to}.cross_attn"), &["key", "value"], &format!("{from}/attention/linear_1"))?;
        linear(w, &format!("{to}.cross_attn.out"), &format!("{from}/attention/linear_2"))?;
        norm(w, &format!("{to}.mlp_ln"), &format!("{from}/ffn/layer_norm"))?;
        linear(w, &format!("{to}.mlp.0"), &format!("{from}/ffn/linear_0"))?;
        linear(w, &format!("{to}.mlp.2"), &format!("{from}/ffn/linear_1"))?;
    }
    norm(w, "decoder.ln", "decoder/layer_norm")?;
    w.out.flush().map_err(io)?;
    Ok(Converted { tensors: w.tensors, n_vocab, n_mels, encoder_layers: enc_layers, decoder_layers: dec_layers })
}

/// [`convert`] into a temporary file beside `out`, renamed into place only when complete.
pub fn convert_atomic(dir: &Path, out: &Path, weights: WeightType) -> Result<Converted, ConvertError> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |e| ConvertError::Io { path: out.into(), source: e };
    let tmp = tempfile::Builder::new().prefix(".sotto-convert-").suffix(".partial").tempfile_in(parent).map_err(io)?;
    let info = convert(dir, tmp.path(), weights)?;
    crate::fetch::set_readable(tmp.as_file()).map_err(io)?;
    tmp.persist(out).map_err(|e| io(e.error))?;
    Ok(info)
}
