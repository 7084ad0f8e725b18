//! Model files small enough to ship inside Sotto (`kind = "bundled"` sources): compiled into the
//! binary, so they are "fetched" without a network. The distilled LoRA adapter (about 4 MB) is
//! one; tools/distil/distil.sh makes it, and the record beside it says what it was trained from.

/// Path under `models/` and the file's bytes.
const FILES: &[(&str, &[u8])] =
    &[("adapters/gemma3-270m-sotto-lora.gguf", include_bytes!("../adapters/gemma3-270m-sotto-lora.gguf"))];

/// The bytes of the bundled file `path` (as the manifest names it).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// Every bundled path, for error messages.
pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(p, _)| *p).collect()
}
