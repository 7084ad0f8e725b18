//! The parts of the `sotto` daemon that are usable without the binary: the typed configuration and
//! the MQTT side. The fuzz targets (`fuzz/`) drive [`config::Config::from_toml`] through this.

pub mod config;
pub mod mqtt;
