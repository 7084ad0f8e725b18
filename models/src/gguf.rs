//! GGUF inspection: architecture, quantisation, context length and chat template, read from the
//! header by hand (the format is small), plus a truncation check against the tensor table.
//!
//! Why not a GGUF crate (the releases current when this was written): `gguf` 0.1.2 parses a
//! byte buffer already in memory, reports a short buffer as `Ok(None)` and errors as bare
//! strings; `ggus` 0.5.1 also wants the whole file's bytes (a memory map) and reads GGUF version 3
//! only. This reader streams just the header of a file of hundreds of MB, reads versions 2 and 3,
//! refuses a corrupt length before allocating it, and names the part a truncated download cuts
//! off: what the store and `sotto models verify` report, and neither crate does.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::GgufError;

#[derive(Debug, Clone, PartialEq)]
pub struct GgufInfo {
    pub version: u32,
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// `general.file_type` (llama.cpp's `llama_ftype`), if present.
    pub file_type: Option<u32>,
    /// Name of the file type, or of the dominant tensor type when the header has none.
    pub quantization: String,
    pub context_length: Option<u64>,
    pub has_chat_template: bool,
    pub tensor_count: u64,
    pub file_size: u64,
}

impl GgufInfo {
    /// Whether the weights are 4-bit (what Sotto's SLM stage is sized for).
    pub fn is_4bit(&self) -> bool {
        let q = self.quantization.to_ascii_uppercase();
        q.starts_with("Q4") || q.starts_with("IQ4") || q == "MXFP4_MOE"
    }
}

/// llama.cpp's `llama_ftype` names.
fn ftype_name(ft: u32) -> Option<&'static str> {
    Some(match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// ggml tensor types: (name, bytes per block, elements per block). Types not listed only give a
/// lower bound for the truncation check.
fn ggml_type(t: u32) -> Option<(&'static str, u64, u64)> {
    Some(match t {
        0 => ("F32", 4, 1),
        1 => ("F16", 2, 1),
        2 => ("Q4_0", 18, 32),
        3 => ("Q4_1", 20, 32),
        6 => ("Q5_0", 22, 32),
        7 => ("Q5_1", 24, 32),
        8 => ("Q8_0", 34, 32),
        9 => ("Q8_1", 36, 32),
        10 => ("Q2_K", 84, 256),
        11 => ("Q3_K", 110, 256),
        12 => ("Q4_K", 144, 256),
        13 => ("Q5_K", 176, 256),
        14 => ("Q6_K", 210, 256),
        15 => ("Q8_K", 292, 256),
        20 => ("IQ4_NL", 18, 32),
        23 => ("IQ4_XS", 136, 256),
        24 => ("I8", 1, 1),
        25 => ("I16", 2, 1),
        26 => ("I32", 4, 1),
        27 => ("I64", 8, 1),
        28 => ("F64", 8, 1),
        30 => ("BF16", 2, 1),
        _ => return None,
    })
}

pub(crate) struct Reader<'a> {
    pub(crate) inner: BufReader<File>,
    path: &'a Path,
    pub(crate) pos: u64,
    pub(crate) size: u64,
}

// Strings or arrays longer than this cannot be real metadata: a corrupt length must give an
// error, not an allocation of gigabytes.
const MAX_LEN: u64 = 1 << 28;

impl Reader<'_> {
    /// A truncated file is an error naming what was being read, before any read or allocation.
    fn ensure(&self, n: u64, what: &str) -> Result<(), GgufError> {
        if self.pos + n > self.size {
            return Err(GgufError::Truncated {
                path: self.path.into(),
                what: what.into(),
                needed: self.pos + n,
                actual: self.size,
            });
        }
        Ok(())
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        self.ensure(n, what)?;
        let mut buf = vec![0; n as usize];
        self.inner.read_exact(&mut buf).map_err(|e| GgufError::Io { path: self.path.into(), source: e })?;
        self.pos += n;
        Ok(buf)
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), GgufError> {
        self.ensure(n, what)?;
        self.inner
            .seek(SeekFrom::Current(n as i64))
            .map_err(|e| GgufError::Io { path: self.path.into(), source: e })?;
        self.pos += n;
        Ok(())
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes(4, what)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes(8, what)?.try_into().expect("8 bytes")))
    }

    fn len(&mut self, what: &str) -> Result<u64, GgufError> {
        let n = self.u64(what)?;
        if n > MAX_LEN {
            return Err(GgufError::Malformed {
                path: self.path.into(),
                message: format!("{what}: length {n} is implausible"),
            });
        }
        Ok(n)
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.len(what)?;
        let b = self.bytes(n, what)?;
        String::from_utf8(b)
            .map_err(|_| GgufError::Malformed { path: self.path.into(), message: format!("{what}: not UTF-8") })
    }

    /// Reads a value of `ty`; returns it when it is a scalar or string we may want.
    pub(crate) fn value(&mut self, ty: u32, key: &str) -> Result<Value, GgufError> {
        let fixed = |t: u32| -> Option<u64> {
            Some(match t {
                0 | 1 | 7 => 1,
                2 | 3 => 2,
                4..=6 => 4,
                10..=12 => 8,
                _ => return None,
            })
        };
        match ty {
            8 => Ok(Value::Str(self.string(key)?)),
            9 => {
                let elem = self.u32(key)?;
                let n = self.len(key)?;
                match (elem, fixed(elem)) {
                    (_, Some(w)) => self.skip(n * w, key)?,
                    (8, None) => {
                        for _ in 0..n {
                            let l = self.len(key)?;
                            self.skip(l, key)?;
                        }
                    }
                    _ => {
                        return Err(GgufError::Malformed {
                            path: self.path.into(),
                            message: format!("{key}: unsupported array element type {elem}"),
                        })
                    }
                }
                Ok(Value::Other)
            }
            4 => Ok(Value::Int(self.u32(key)? as u64)),
            10 => Ok(Value::Int(self.u64(key)?)),
            5 => Ok(Value::Int(self.u32(key)? as i32 as u64)),
            11 => Ok(Value::Int(self.u64(key)?)),
            t => match fixed(t) {
                Some(w) => {
                    self.skip(w, key)?;
                    Ok(Value::Other)
                }
                None => Err(GgufError::Malformed {
                    path: self.path.into(),
                    message: format!("{key}: unknown value type {t}"),
                }),
            },
        }
    }
}

/// One entry of a GGUF tensor table; `offset` is from the start of the data section.
pub(crate) struct TensorInfo {
    pub(crate) name: String,
    pub(crate) dims: Vec<u64>,
    pub(crate) ty: u32,
    pub(crate) offset: u64,
}

impl TensorInfo {
    pub(crate) fn elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, d| n.saturating_mul(*d))
    }

    /// Size of its data, when its type is one [`ggml_type`] knows.
    pub(crate) fn bytes(&self) -> Option<u64> {
        ggml_type(self.ty).map(|(_, block_bytes, block_elems)| self.elements().div_ceil(block_elems) * block_bytes)
    }
}

impl Reader<'_> {
    /// Reads the tensor table (the reader must be just past the metadata).
    pub(crate) fn tensor_table(&mut self, count: u64) -> Result<Vec<TensorInfo>, GgufError> {
        let mut tensors = Vec::new();
        for i in 0..count {
            let what = format!("tensor #{i}");
            let name = self.string(&what)?;
            let n_dims = self.u32(&what)?;
            if n_dims > 8 {
                return Err(GgufError::Malformed {
                    path: self.path.into(),
                    message: format!("{what}: {n_dims} dimensions"),
                });
            }
            let dims = (0..n_dims).map(|_| self.u64(&what)).collect::<Result<Vec<_>, _>>()?;
            let ty = self.u32(&what)?;
            let offset = self.u64(&what)?;
            tensors.push(TensorInfo { name, dims, ty, offset });
        }
        Ok(tensors)
    }
}

/// A GGUF file read past its preamble (magic, version, counts): the reader is at the metadata.
pub(crate) struct Preamble<'a> {
    pub(crate) reader: Reader<'a>,
    pub(crate) version: u32,
    pub(crate) tensor_count: u64,
    pub(crate) kv_count: u64,
}

/// Opens a GGUF file and checks its preamble: the magic, a version this reader knows (2 or 3),
/// and plausible counts.
pub(crate) fn open(path: &Path) -> Result<Preamble<'_>, GgufError> {
    let io = |e| GgufError::Io { path: PathBuf::from(path), source: e };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut r = Reader { inner: BufReader::with_capacity(1 << 16, file), path, pos: 0, size };
    let magic = if size >= 4 { r.bytes(4, "magic")? } else { r.bytes(size, "magic")? };
    if magic != b"GGUF" {
        return Err(GgufError::BadMagic { path: path.into(), found: magic });
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { path: path.into(), version });
    }
    let tensor_count = r.u64("tensor count")?;
    let kv_count = r.u64("metadata count")?;
    if tensor_count > MAX_LEN || kv_count > MAX_LEN {
        return Err(GgufError::Malformed { path: path.into(), message: "implausible tensor or metadata count".into() });
    }
    Ok(Preamble { reader: r, version, tensor_count, kv_count })
}

pub(crate) enum Value {
    Str(String),
    Int(u64),
    Other,
}

/// Reads a GGUF file's metadata and checks that the file is long enough for its tensor table.
pub fn inspect(path: &Path) -> Result<GgufInfo, GgufError> {
    let Preamble { reader: mut r, version, tensor_count, kv_count } = open(path)?;
    let size = r.size;
    let (mut architecture, mut name, mut file_type, mut alignment) = (None, None, None, 32u64);
    let mut has_chat_template = false;
    let mut ints = Vec::new();
    for _ in 0..kv_count {
        let key = r.string("metadata key")?;
        let ty = r.u32(&key)?;
        let value = r.value(ty, &key)?;
        match (key.as_str(), value) {
            ("general.architecture", Value::Str(s)) => architecture = Some(s),
            ("general.name", Value::Str(s)) => name = Some(s),
            ("general.file_type", Value::Int(v)) => file_type = Some(v as u32),
            ("general.alignment", Value::Int(v)) => alignment = v.max(1),
            ("tokenizer.chat_template", Value::Str(s)) => has_chat_template = !s.is_empty(),
            (_, Value::Int(v)) if key.ends_with(".context_length") => ints.push((key, v)),
            _ => {}
        }
    }
    let context_length = architecture
        .as_ref()
        .and_then(|a| ints.iter().find(|(k, _)| *k == format!("{a}.context_length")).map(|(_, v)| *v));

    // Tensor table: the data section must reach the end of the last tensor.
    let mut needed = 0u64;
    let mut type_counts: Vec<(u32, u64)> = Vec::new();
    for t in r.tensor_table(tensor_count)? {
        needed = needed.max(t.offset.saturating_add(t.bytes().unwrap_or(0)));
        match type_counts.iter_mut().find(|(ty, _)| *ty == t.ty) {
            Some((_, n)) => *n += t.elements(),
            None => type_counts.push((t.ty, t.elements())),
        }
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    let needed = data_start.saturating_add(needed);
    if needed > size {
        return Err(GgufError::Truncated { path: path.into(), what: "the tensor data".into(), needed, actual: size });
    }
    let quantization = match file_type.and_then(ftype_name) {
        Some(n) => n.to_string(),
        None => {
            // No (known) file type in the header: name the type holding most weights.
            let dominant = type_counts.iter().max_by_key(|(_, n)| *n).map(|(t, _)| *t);
            dominant
                .map(|t| ggml_type(t).map(|(n, _, _)| n.to_string()).unwrap_or_else(|| format!("ggml type {t}")))
                .unwrap_or_else(|| "unknown".into())
        }
    };
    Ok(GgufInfo {
        version,
        architecture,
        name,
        file_type,
        quantization,
        context_length,
        has_chat_template,
        tensor_count,
        file_size: size,
    })
}

/// Inspects a GGUF model and logs a warning when it is not 4-bit (accepted, but slower and larger
/// than what the SLM stage is sized for).
pub fn inspect_and_warn(path: &Path) -> Result<GgufInfo, GgufError> {
    let info = inspect(path)?;
    if !info.is_4bit() {
        tracing::warn!(
            path = %path.display(),
            quantization = %info.quantization,
            "language model is not 4-bit: it will be slower and use more memory than planned"
        );
    }
    Ok(info)
}

/// A GGUF file opened to be rewritten: every metadata entry as raw bytes, the tensor table, and
/// the file positioned nowhere in particular (each writer seeks).
pub(crate) struct Rewrite<'a> {
    pub(crate) path: &'a Path,
    pub(crate) version: u32,
    pub(crate) metadata: Vec<Metadata>,
    pub(crate) tensors: Vec<TensorInfo>,
    /// Data size of each tensor.
    pub(crate) sizes: Vec<u64>,
    pub(crate) data_start: u64,
    pub(crate) alignment: u64,
    pub(crate) file: BufReader<File>,
}

/// One metadata entry: its key, value type and value bytes (as in the file).
pub(crate) struct Metadata {
    pub(crate) key: String,
    pub(crate) ty: u32,
    pub(crate) value: Vec<u8>,
}

/// Where one tensor goes in a rewritten file: its name, dims and type, and its data size.
pub(crate) struct TensorOut {
    pub(crate) dims: Vec<u64>,
    pub(crate) ty: u32,
    pub(crate) bytes: u64,
}

impl<'a> Rewrite<'a> {
    /// Reads `path`'s metadata and tensor table, and checks that every tensor's data is in the
    /// file: a derivation never writes a result from a truncated source. GGUF version 3 only.
    pub(crate) fn open(path: &'a Path) -> Result<Self, GgufError> {
        let malformed = |message: String| GgufError::Malformed { path: path.into(), message };
        let Preamble { reader: mut r, version, tensor_count, kv_count } = open(path)?;
        if version != 3 {
            return Err(GgufError::UnsupportedVersion { path: path.into(), version });
        }
        let mut spans = Vec::with_capacity(kv_count as usize);
        let mut alignment = 32u64;
        for _ in 0..kv_count {
            let key = r.string("metadata key")?;
            let ty = r.u32(&key)?;
            let start = r.pos;
            if let Value::Int(v) = r.value(ty, &key)? {
                if key == "general.alignment" {
                    alignment = v.max(1);
                }
            }
            spans.push((key, ty, start, r.pos));
        }
        let tensors = r.tensor_table(tensor_count)?;
        let sizes = tensors
            .iter()
            .map(|t| {
                t.bytes().ok_or_else(|| malformed(format!("{}: ggml type {} is not supported here", t.name, t.ty)))
            })
            .collect::<Result<Vec<u64>, _>>()?;
        let data_start = r.pos.div_ceil(alignment) * alignment;
        for (t, bytes) in tensors.iter().zip(&sizes) {
            let end = data_start + t.offset + bytes;
            if end > r.size {
                return Err(GgufError::Truncated {
                    path: path.into(),
                    what: t.name.clone(),
                    needed: end,
                    actual: r.size,
                });
            }
        }
        let mut file = r.inner;
        let io = |e| GgufError::Io { path: PathBuf::from(path), source: e };
        let mut metadata = Vec::with_capacity(spans.len());
        for (key, ty, start, end) in spans {
            let mut value = vec![0u8; (end - start) as usize];
            file.seek(SeekFrom::Start(start)).map_err(io)?;
            file.read_exact(&mut value).map_err(io)?;
            metadata.push(Metadata { key, ty, value });
        }
        Ok(Rewrite { path, version, metadata, tensors, sizes, data_start, alignment, file })
    }

    /// The index of the tensor called `name`.
    pub(crate) fn tensor(&self, name: &str) -> Result<usize, GgufError> {
        self.tensors
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| GgufError::Malformed { path: self.path.into(), message: format!("no tensor {name}") })
    }

    /// The tensors as they are, but tensor `i` as `changed` (for [`Self::write`]).
    pub(crate) fn outputs_with(&self, i: usize, changed: TensorOut) -> Vec<TensorOut> {
        let mut changed = Some(changed);
        self.tensors
            .iter()
            .zip(&self.sizes)
            .enumerate()
            .map(|(k, (t, &bytes))| match changed.take_if(|_| k == i) {
                Some(c) => c,
                None => TensorOut { dims: t.dims.clone(), ty: t.ty, bytes },
            })
            .collect()
    }

    /// Positions the source at tensor `i`'s data.
    pub(crate) fn seek_tensor(&mut self, i: usize) -> Result<&mut BufReader<File>, GgufError> {
        let at = self.data_start + self.tensors[i].offset;
        self.file.seek(SeekFrom::Start(at)).map_err(|e| GgufError::Io { path: self.path.into(), source: e })?;
        Ok(&mut self.file)
    }

    /// Writes `dst`: the header, `metadata`, the tensor table of `out` (the source's tensors in
    /// their order, each aligned) and each tensor's data, which `data` writes for tensor `i` (see
    /// [`Self::copy_tensor`] for one kept as it is). The file is synced before returning.
    pub(crate) fn write(
        &mut self,
        dst: &Path,
        metadata: &[Metadata],
        out: &[TensorOut],
        mut data: impl FnMut(&mut Self, usize, &mut dyn Write) -> Result<(), GgufError>,
    ) -> Result<(), GgufError> {
        let io_dst = |e| GgufError::Io { path: PathBuf::from(dst), source: e };
        let file = File::create(dst).map_err(io_dst)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&self.version.to_le_bytes());
        header.extend_from_slice(&(out.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for m in metadata {
            header.extend_from_slice(&(m.key.len() as u64).to_le_bytes());
            header.extend_from_slice(m.key.as_bytes());
            header.extend_from_slice(&m.ty.to_le_bytes());
            header.extend_from_slice(&m.value);
        }
        let mut offset = 0u64;
        let mut layout = Vec::with_capacity(out.len());
        for (t, o) in self.tensors.iter().zip(out) {
            header.extend_from_slice(&(t.name.len() as u64).to_le_bytes());
            header.extend_from_slice(t.name.as_bytes());
            header.extend_from_slice(&(o.dims.len() as u32).to_le_bytes());
            for d in &o.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&o.ty.to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            layout.push((offset, o.bytes));
            offset = (offset + o.bytes).div_ceil(self.alignment) * self.alignment;
        }
        header.resize(header.len().div_ceil(self.alignment as usize) * self.alignment as usize, 0);
        w.write_all(&header).map_err(io_dst)?;
        let mut written = 0u64;
        for (i, &(at, bytes)) in layout.iter().enumerate() {
            w.write_all(&vec![0u8; (at - written) as usize]).map_err(io_dst)?;
            data(self, i, &mut w)?;
            written = at + bytes;
        }
        w.flush().map_err(io_dst)?;
        w.into_inner().map_err(|e| io_dst(e.into_error()))?.sync_all().map_err(io_dst)?;
        Ok(())
    }

    /// Copies tensor `i`'s data unchanged to `w` (for [`Self::write`]).
    pub(crate) fn copy_tensor(&mut self, i: usize, w: &mut dyn Write, dst: &Path) -> Result<(), GgufError> {
        let bytes = self.sizes[i];
        let path = self.path;
        let src = self.seek_tensor(i)?;
        let copied = std::io::copy(&mut src.take(bytes), w)
            .map_err(|e| GgufError::Io { path: PathBuf::from(dst), source: e })?;
        if copied != bytes {
            return Err(GgufError::Truncated {
                path: path.into(),
                what: self.tensors[i].name.clone(),
                needed: bytes,
                actual: copied,
            });
        }
        Ok(())
    }
}
