//! `kelp-shipper`'s pure core: everything between the Kafka record bytes and
//! the HTTP request body, and between the HTTP response and the Kafka offset.
//!
//! Architecture Invariant: nothing in this library does IO, reads the clock
//! or draws random numbers. Time and randomness come in as parameters, so
//! every decision is a function of its inputs and is tested with data tables.
//! `main.rs` is the rim: it owns the consumer, the HTTP client and the clock.

pub mod backend;
pub mod backoff;
pub mod bulk;
pub mod config;
pub mod dead_letter;
pub mod index_name;
pub mod lag;
pub mod response;
pub mod source;
pub mod template;
mod time;
pub mod watermark;

#[cfg(test)]
mod testutil;
