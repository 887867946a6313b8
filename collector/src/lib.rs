//! `kelp-collector` as a library: the per-node agent's parts, for its binary,
//! benchmarks and tests.

pub mod checkpoint;
pub mod fingerprint;
pub mod parse;
pub mod sink;
pub mod tail;
