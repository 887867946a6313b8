//! Kibana saved objects for container logs, shipped as data.
//!
//! Architecture Invariant: this crate is data plus pure accessors. The
//! importer that talks to Kibana lives in the deployer.
