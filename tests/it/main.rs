//! One integration test binary for the whole workspace (see CONTRIBUTING.md).

mod smoke_kafka;
mod smoke_search;
