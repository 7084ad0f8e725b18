//! One module per command family; each is owned by the crate it fronts.

pub mod audio;
pub mod daemon;
pub mod intents;
pub mod models;
pub mod say;
