//! `kelp`: the deployer CLI.

use clap::Parser;

/// Stands up ZooKeeper, Kafka, Elasticsearch and Kibana on Kubernetes, each on
/// Ceph RBD volumes, plus kelp-collector and kelp-shipper, in order, gating
/// each step on the application's own health.
#[derive(Debug, Parser)]
#[command(name = "kelp", version, about, long_about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
