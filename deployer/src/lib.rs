//! The deployer's steps as a library, so that `kelp`'s subcommands share
//! them: `kelp dashboards import` runs [`kibana::import_dashboards`] alone,
//! and `kelp apply` runs it once Kibana is up. [`stack`] reads the stack
//! file and [`manifests`] turns it into Kubernetes objects (`kelp render`);
//! [`apply`] puts them on a cluster (`kelp plan`, `apply`, `status`, `destroy`);
//! [`probe`] is `kelp probe`, the live canary.

pub mod apply;
pub mod ceph;
pub mod growth;
pub mod health;
pub mod kibana;
pub mod manifests;
pub mod preflight;
pub mod probe;
pub mod secrets;
pub mod stack;
