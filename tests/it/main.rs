//! One integration test binary for the whole workspace (see CONTRIBUTING.md).

mod collector_kafka;
mod collector_metadata;
mod collector_ops;
mod deployer_apply;
mod deployer_cluster;
mod deployer_gates;
mod deployer_render;
mod fault_e2e;
mod probe;
mod shipper_faults;
mod shipper_index;
mod shipper_support;
mod shipper_tls;
mod smoke_kafka;
mod smoke_search;
mod storage_driver;
mod storage_rbd;
