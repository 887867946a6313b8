//! `kelp apply`: the ordered, gated rollout of the stack onto the cluster
//! of the current kubeconfig. Also the arguments `plan`, `status` and
//! `destroy` share.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kelp_deployer::apply::endpoints::{self, Endpoints};
use kelp_deployer::apply::progress::Mode;
use kelp_deployer::apply::{self, Options};
use kelp_deployer::stack::Stack;

/// The stack file argument.
#[derive(Debug, Args)]
pub(crate) struct StackArgs {
    /// The stack file (`kelp init` writes one); without it, the defaults.
    #[arg(long, value_name = "FILE", env = "KELP_STACK")]
    stack: Option<PathBuf>,
}

impl StackArgs {
    /// Reads and validates the stack file, or the defaults.
    pub(crate) fn load(&self) -> anyhow::Result<Stack> {
        match &self.stack {
            Some(path) => Ok(Stack::load(path)?),
            None => {
                tracing::info!("no --stack given: using the defaults (namespace kelp)");
                Ok(Stack::default())
            }
        }
    }
}

/// Where the health gates reach the applications.
#[derive(Debug, Args)]
pub(crate) struct EndpointArgs {
    /// Reach a component's health gate at ADDR instead of through a
    /// port-forward to its pods; repeatable. COMPONENT is zookeeper
    /// (host:port[,host:port...], one per server), kafka (bootstrap
    /// host:port[,...]), elasticsearch or kibana (a URL, or host:port). For
    /// clusters kelp cannot port-forward to (kwok test clusters have no
    /// kubelet) or to go through an ingress.
    #[arg(long = "health-endpoint", value_name = "COMPONENT=ADDR")]
    health_endpoint: Vec<String>,
}

impl EndpointArgs {
    pub(crate) fn parse(&self, stack: &Stack) -> anyhow::Result<Endpoints> {
        Ok(endpoints::parse(
            &self.health_endpoint,
            stack.elasticsearch.security_enabled(),
        )?)
    }
}

/// Arguments of `kelp apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    endpoints: EndpointArgs,
    /// Bound of each wait, in seconds: one rollout, one health gate, the
    /// dashboards import. On a timeout kelp prints the stuck pods' states
    /// and events and stops.
    #[arg(long, value_name = "N", default_value_t = 600)]
    timeout_secs: u64,
    /// Pause between two polls of a rollout or a gate, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    poll_ms: u64,
    /// Skip the preflight checks (Kubernetes version, StorageClass, nodes,
    /// PodSecurity).
    #[arg(long)]
    skip_preflight: bool,
    /// Import the Kibana dashboards even when this exact set was imported
    /// into this Kibana before (e.g. after deleting them in Kibana).
    #[arg(long)]
    reimport_dashboards: bool,
}

/// Connects to the cluster of the current kubeconfig (or in-cluster).
pub(crate) async fn client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.context(
        "connecting to the kubernetes api failed (KUBECONFIG, ~/.kube/config or in-cluster)",
    )
}

/// Applies the stack and prints what changed.
pub(crate) async fn run(args: &ApplyArgs) -> anyhow::Result<()> {
    let stack = args.stack.load()?;
    let options = Options {
        timeout: Duration::from_secs(args.timeout_secs),
        poll: Duration::from_millis(args.poll_ms.max(50)),
        endpoints: args.endpoints.parse(&stack)?,
        progress: Mode::detect(),
        skip_preflight: args.skip_preflight,
        reimport_dashboards: args.reimport_dashboards,
    };
    let report = apply::apply(client().await?, &stack, &options).await?;
    super::write_stdout(&report.to_string())
}
