//! The parts of the `sotto` daemon that are usable without the binary: the typed configuration,
//! the dialogue core (no I/O: the binary's async shell carries out its effects) and the MQTT side. The fuzz targets (`fuzz/`) drive [`config::Config::from_toml`] through this.

pub mod config;
pub mod dialogue;
pub mod mqtt;
