//! `kelp`: the deployer CLI.
//!
//! Each subcommand lives in its own module under `cmd/` with its arguments
//! and its `run`; the steps themselves are in the library (`kelp_deployer`).

mod cmd;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Stands up ZooKeeper, Kafka, Elasticsearch and Kibana on Kubernetes, each on
/// Ceph RBD volumes, plus kelp-collector and kelp-shipper, in order, gating
/// each step on the application's own health.
#[derive(Debug, Parser)]
#[command(name = "kelp", version, about, long_about)]
struct Cli {
    /// Log filter for the progress lines on stderr, e.g. `info` or `debug`.
    #[arg(long, default_value = "info", env = "KELP_LOG", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a stack file with every field at its default, commented.
    ///
    /// Start from it: `kelp init > stack.yaml`, edit, then `kelp render
    /// --stack stack.yaml`. docs/DEPLOYER.md describes every field.
    Init(cmd::init::InitArgs),
    /// Print every Kubernetes object of the stack as YAML, in rollout order.
    ///
    /// Namespace, storage, service accounts, RBAC and configuration first,
    /// then ZooKeeper, Kafka (and its topic job), Elasticsearch, Kibana, the
    /// shipper and the collector. For `kubectl apply --server-side -f -` or
    /// a GitOps repository; talks to no cluster.
    Render(cmd::render::RenderArgs),
    /// Show what `kelp apply` would change on the cluster, without changing it.
    ///
    /// Each object is applied with a server-side dry run and compared with
    /// the live object: `create` (missing), `change` with the changed
    /// fields, or unchanged. Server-managed fields (status, managedFields,
    /// resourceVersion, generation, uid, creationTimestamp) are ignored.
    /// Uses the current kubeconfig.
    Plan(cmd::plan::PlanArgs),
    /// Install or update the stack on the cluster, in order, gated on health.
    ///
    /// Steps: namespace, RBAC, generated Secrets and config; ZooKeeper;
    /// Kafka, then the topic Job; Elasticsearch, then the index template;
    /// Kibana, then the dashboards; the shipper; the collector. Each step
    /// server-side applies its objects (field manager `kelp`), waits for the
    /// rollout, then for the application's own health (ZooKeeper quorum,
    /// brokers and topics, cluster health, Kibana status). Every wait is
    /// bounded (--timeout-secs); on a timeout the stuck pods' states and
    /// events are printed. Running it again with no change reports
    /// "nothing to do" and changes nothing; a change rolls only what changed.
    Apply(cmd::apply::ApplyArgs),
    /// Report each component: objects present, replicas ready, health.
    ///
    /// Exits with 1 when any component is missing objects, still rolling
    /// out, or not healthy by its application's own check.
    Status(cmd::status::StatusArgs),
    /// Delete the stack in reverse order, keeping its data.
    ///
    /// PersistentVolumeClaims, generated Secrets, the Namespace and the
    /// StorageClasses stay, so `kelp apply` brings the stack back onto its
    /// data. --purge-data deletes them too, after you type the namespace
    /// (or with --yes).
    Destroy(cmd::destroy::DestroyArgs),
    /// Kibana dashboards for container logs.
    #[command(subcommand)]
    Dashboards(cmd::dashboards::DashboardsCommand),
    /// Storage for the stack's volumes: Ceph RBD through ceph-csi.
    #[command(subcommand)]
    Storage(cmd::storage::StorageCommand),
    /// Check the whole pipeline with a canary pod's log line.
    ///
    /// Starts a short-lived pod that writes one line with a unique token,
    /// searches until the token is indexed and prints the write-to-searchable
    /// time; at the deadline, says where it stopped: the pod, Kafka, the
    /// dead-letter topic or the shipper. Exits 0 only when the token was
    /// found. docs/PROBE.md explains the report.
    Probe(Box<cmd::probe::ProbeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_logging(&cli.log) {
        // Logging is not up: stdout is the only channel left that is not stderr.
        println!("kelp: {error:#}");
        return ExitCode::FAILURE;
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init(args) => cmd::init::run(&args),
        Command::Render(args) => cmd::render::run(&args),
        Command::Dashboards(command) => runtime()?.block_on(cmd::dashboards::run(command)),
        Command::Plan(args) => runtime()?.block_on(cmd::plan::run(&args)),
        Command::Apply(args) => runtime()?.block_on(cmd::apply::run(&args)),
        Command::Status(args) => runtime()?.block_on(cmd::status::run(&args)),
        Command::Destroy(args) => runtime()?.block_on(cmd::destroy::run(&args)),
        Command::Storage(command) => {
            // Multi-threaded: the Ceph steps block on child processes.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime failed")?;
            runtime.block_on(cmd::storage::run(command))
        }
        Command::Probe(args) => runtime()?.block_on(cmd::probe::run(&args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime failed")
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("parsing the log filter {filter:?} failed"))?;
    // Colours only for a person at a terminal, not in a collected log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("initialising logging failed: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
