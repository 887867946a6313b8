//! `kelp-collector` as a library: the per-node agent's parts, for its binary,
//! benchmarks and tests.

pub mod app;
pub mod checkpoint;
pub mod config;
pub mod fingerprint;
pub mod health;
pub mod internal_events;
pub mod metadata;
pub mod parse;
pub mod pipeline;
pub mod reload;
pub mod server;
pub mod sink;
pub mod tail;
