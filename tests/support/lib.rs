//! Shared helpers for the end-to-end tests.
pub mod daemon;
pub mod mqtt;
pub mod secure_mqtt;
