//! Hub tests against real brokers.
