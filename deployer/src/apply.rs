//! The cluster-facing engine behind `kelp apply`, `plan`, `status` and
//! `destroy`.
//!
//! `apply` walks [`steps::steps`] in order. For each step it server-side
//! applies the step's objects with one field manager (`kelp`), waits for the
//! workloads to roll out ([`rollout`]), then for the application's own gate
//! (ZooKeeper quorum, Kafka brokers and topics, Elasticsearch health, Kibana
//! status), then runs the step's follow-up (generated Secrets, index
//! template, dashboards). Every wait is bounded by [`Options::timeout`]; on
//! a timeout the error carries the stuck pods' states and events
//! ([`stuck::describe`]).
//!
//! A second apply of an unchanged stack changes nothing: server-side apply
//! of the same fields by the same manager is a no-op for the API server,
//! and the report compares each object's `resourceVersion` before and after.

mod cluster;
mod destroy;
pub mod diff;
pub mod endpoints;
mod plan;
pub mod progress;
pub mod rollout;
mod status;
pub mod steps;
pub mod stuck;

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

pub use self::destroy::{DestroyOptions, DestroyReport, destroy};
pub use self::plan::{PlanEntry, format as format_plan, plan};
pub use self::status::{ComponentStatus, StatusReport, status};

use self::endpoints::Endpoints;
use self::progress::{Mode, StepProgress};
use self::rollout::Rollout;
use self::steps::{After, GateKind, Step};
use crate::health::forward::{Forward, forward};
use crate::health::{self, BasicAuth, ClusterColor, Gate, HttpOptions};
use crate::kibana::{ImportOptions, KibanaAuth, KibanaTarget};
use crate::manifests::{self, Object};
use crate::secrets::ElasticsearchCredentials;
use crate::stack::Stack;
use crate::{growth, preflight, secrets};

/// ConfigMap recording the hash of the saved objects and Kibana image last
/// imported, so an unchanged apply does not re-import. Not a rendered
/// object (it is written only after a successful import), so it never
/// counts as a change; it lives as long as the namespace, like the data
/// the dashboards are stored in.
pub const DASHBOARDS_RECORD: &str = "kelp-dashboards-import";

/// The record's key holding the hash.
const DASHBOARDS_HASH_KEY: &str = "hash";

/// Field manager of [`DASHBOARDS_RECORD`].
const DASHBOARDS_MANAGER: &str = "kelp-dashboards";

/// How `kelp apply` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bound of each wait: one rollout, one gate, one import.
    pub timeout: Duration,
    /// Pause between two polls of a rollout or a gate.
    pub poll: Duration,
    /// Where the gates reach the applications instead of a port-forward.
    pub endpoints: Endpoints,
    /// How progress is shown.
    pub progress: Mode,
    /// Skip the preflight checks.
    pub skip_preflight: bool,
    /// Import the dashboards even when the annotation says they are current.
    pub reimport_dashboards: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(2),
            endpoints: Endpoints::default(),
            progress: Mode::Quiet,
            skip_preflight: false,
            reimport_dashboards: false,
        }
    }
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed and changed (its `resourceVersion` moved).
    Changed,
    /// Nothing changed.
    Unchanged,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// Each object's `Kind/name` and outcome.
    pub objects: Vec<(String, Outcome)>,
    /// The gate's healthy text.
    pub gate: Option<String>,
    /// Follow-ups done (secrets, template, dashboards).
    pub notes: Vec<String>,
}

impl StepReport {
    fn count(&self, outcome: Outcome) -> usize {
        self.objects.iter().filter(|(_, o)| *o == outcome).count()
    }
}

/// What `kelp apply` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyReport {
    /// The preflight checks, as their report prints them (warnings
    /// included); `None` when skipped.
    pub preflight: Option<String>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
}

impl ApplyReport {
    /// Objects created or changed.
    pub fn changed(&self) -> usize {
        self.steps
            .iter()
            .map(|s| s.count(Outcome::Created) + s.count(Outcome::Changed))
            .sum()
    }

    /// Whether the apply changed no object.
    pub fn nothing_to_do(&self) -> bool {
        self.changed() == 0
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(preflight) = &self.preflight {
            writeln!(f, "preflight:")?;
            for line in preflight.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        for step in &self.steps {
            write!(
                f,
                "{}: {} objects ({} created, {} changed, {} unchanged)",
                step.name,
                step.objects.len(),
                step.count(Outcome::Created),
                step.count(Outcome::Changed),
                step.count(Outcome::Unchanged)
            )?;
            if let Some(gate) = &step.gate {
                write!(f, "; healthy: {gate}")?;
            }
            writeln!(f)?;
            for (id, outcome) in &step.objects {
                if *outcome != Outcome::Unchanged {
                    writeln!(f, "  {outcome:?}: {id}")?;
                }
            }
            for note in &step.notes {
                writeln!(f, "  {note}")?;
            }
        }
        let total: usize = self.steps.iter().map(|s| s.objects.len()).sum();
        if self.nothing_to_do() {
            writeln!(
                f,
                "nothing to do: all {total} objects are as the stack says"
            )
        } else {
            writeln!(
                f,
                "applied: {} of {total} objects created or changed",
                self.changed()
            )
        }
    }
}

/// Why an apply (or status, plan, destroy) failed. Each message names the
/// step and what failed in it.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The preflight checks found a problem.
    #[error("preflight failed:\n{0}")]
    Preflight(String),
    /// A call to the API server failed.
    #[error("{step}: {action} {id} failed: {source}")]
    Kube {
        /// The step.
        step: String,
        /// What was being done, e.g. `applying`.
        action: &'static str,
        /// `Kind/name`.
        id: String,
        /// The cause.
        source: kube::Error,
    },
    /// A workload did not roll out in time.
    #[error("{step}: waiting for the rollout of {id} timed out after {secs} s: {last}\n{stuck}")]
    RolloutTimeout {
        /// The step.
        step: String,
        /// `Kind/name`.
        id: String,
        /// The bound.
        secs: u64,
        /// The last state seen.
        last: String,
        /// The stuck pods' states and events.
        stuck: String,
    },
    /// A Job failed for good.
    #[error("{step}: {id} {reason}\n{stuck}")]
    RolloutFailed {
        /// The step.
        step: String,
        /// `Kind/name`.
        id: String,
        /// What failed.
        reason: String,
        /// The pods' states and events.
        stuck: String,
    },
    /// Something else in a step failed: a gate, a port-forward, the
    /// secrets, the index template, the dashboards, volume growth.
    #[error("{step}: {message}")]
    Step {
        /// The step.
        step: String,
        /// What failed, with its cause.
        message: String,
    },
    /// `--purge-data` was not confirmed.
    #[error("destroying failed: {0}")]
    NotConfirmed(String),
}

fn step_error(step: &str, message: impl fmt::Display) -> ApplyError {
    ApplyError::Step {
        step: step.to_owned(),
        message: message.to_string(),
    }
}

fn kube_error(
    step: &str,
    action: &'static str,
    object: &Object,
    source: kube::Error,
) -> ApplyError {
    ApplyError::Kube {
        step: step.to_owned(),
        action,
        id: object.id(),
        source,
    }
}

/// The Kubernetes client plus what every command shares.
pub(crate) struct Context<'a> {
    pub(crate) client: kube::Client,
    pub(crate) stack: &'a Stack,
    pub(crate) endpoints: &'a Endpoints,
}

/// A gate and the port-forwards it reaches its application through; the
/// forwards stop when this is dropped.
pub(crate) struct ReachableGate {
    pub(crate) gate: Box<dyn Gate>,
    _forwards: Vec<Forward>,
}

impl Context<'_> {
    fn namespace(&self) -> &str {
        &self.stack.namespace
    }

    /// A local address for `pod:port`, through a port-forward kept in `forwards`.
    async fn forwarded(
        &self,
        step: &str,
        pod: &str,
        port: u16,
        forwards: &mut Vec<Forward>,
    ) -> Result<String, ApplyError> {
        let forward = forward(self.client.clone(), self.namespace(), pod, port)
            .await
            .map_err(|e| step_error(step, format!("reaching {pod}:{port} failed: {e}")))?;
        let address = forward.local_addr().to_string();
        forwards.push(forward);
        Ok(address)
    }

    /// A running pod of the Kibana Deployment, for the port-forward.
    async fn kibana_pod(&self, step: &str) -> Result<String, ApplyError> {
        let selector = format!(
            "app.kubernetes.io/name=kibana,app.kubernetes.io/instance={}",
            self.namespace()
        );
        let pods = Api::<Pod>::namespaced(self.client.clone(), self.namespace())
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| step_error(step, format!("listing kibana pods failed: {e}")))?;
        pods.items
            .iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .and_then(|p| p.metadata.name.clone())
            .ok_or_else(|| step_error(step, "no running kibana pod to reach"))
    }

    /// Elasticsearch's URL for the gates: the override or a port-forward
    /// to the first node.
    async fn elasticsearch_url(
        &self,
        step: &str,
        forwards: &mut Vec<Forward>,
    ) -> Result<String, ApplyError> {
        if let Some(url) = &self.endpoints.elasticsearch {
            return Ok(url.clone());
        }
        let address = self
            .forwarded(step, "elasticsearch-0", 9200, forwards)
            .await?;
        Ok(if self.stack.elasticsearch.security_enabled() {
            // The forward listens on 127.0.0.1; `localhost` is a name the
            // generated certificate carries, an IP address is not.
            let port = address.rsplit(':').next().unwrap_or("9200");
            format!("https://localhost:{port}")
        } else {
            format!("http://{address}")
        })
    }

    async fn kibana_url(
        &self,
        step: &str,
        forwards: &mut Vec<Forward>,
    ) -> Result<String, ApplyError> {
        if let Some(url) = &self.endpoints.kibana {
            return Ok(url.clone());
        }
        let pod = self.kibana_pod(step).await?;
        let address = self.forwarded(step, &pod, 5601, forwards).await?;
        Ok(format!("http://{address}"))
    }

    /// The `elastic` user's credentials and Elasticsearch's CA from the
    /// generated Secrets, when security is on. Secrets that cannot be read
    /// give no credentials (with a warning), so a security-off engine
    /// behind `--health-endpoint` still answers.
    async fn elastic_credentials(&self) -> Option<ElasticsearchCredentials> {
        if !self.stack.elasticsearch.security_enabled() {
            return None;
        }
        match secrets::read_credentials(&self.client, self.stack).await {
            Ok(credentials) => Some(credentials),
            Err(error) => {
                tracing::warn!(
                    "reading the elasticsearch credentials failed, the gates go without: {error}"
                );
                None
            }
        }
    }

    /// Basic authentication as `elastic`, and the CA to trust.
    async fn elastic_auth(&self) -> (Option<BasicAuth>, HttpOptions) {
        match self.elastic_credentials().await {
            Some(credentials) => (
                Some(BasicAuth::new("elastic", credentials.elastic.expose())),
                HttpOptions {
                    ca_certificates_pem: Some(credentials.ca_pem),
                    ..HttpOptions::default()
                },
            ),
            None => (None, HttpOptions::default()),
        }
    }

    /// The gate of `kind`, reachable from here.
    pub(crate) async fn gate(
        &self,
        step: &str,
        kind: GateKind,
    ) -> Result<ReachableGate, ApplyError> {
        let stack = self.stack;
        let mut forwards = Vec::new();
        let gate: Box<dyn Gate> = match kind {
            GateKind::ZooKeeper => {
                let servers = match &self.endpoints.zookeeper {
                    Some(servers) => servers.clone(),
                    None => {
                        let mut servers = Vec::new();
                        for i in 0..stack.zookeeper.replicas {
                            let pod = format!("zookeeper-{i}");
                            servers.push(self.forwarded(step, &pod, 2181, &mut forwards).await?);
                        }
                        servers
                    }
                };
                Box::new(health::zookeeper::ZooKeeperQuorum::new(servers))
            }
            GateKind::Kafka { topics } => {
                let bootstrap = match &self.endpoints.kafka {
                    Some(bootstrap) => bootstrap.clone(),
                    None => self.forwarded(step, "kafka-0", 9092, &mut forwards).await?,
                };
                let expected = usize::try_from(stack.kafka.replicas).unwrap_or(usize::MAX);
                let cluster = health::kafka::KafkaCluster::new(bootstrap, expected);
                Box::new(if topics {
                    let names = vec![
                        stack.kafka.topics.logs.name.clone(),
                        stack.kafka.topics.dead_letter.name.clone(),
                    ];
                    let min_isr = usize::try_from(stack.kafka.min_insync_replicas).unwrap_or(1);
                    cluster.with_topics(names, min_isr)
                } else {
                    cluster
                })
            }
            GateKind::Elasticsearch => {
                let url = self.elasticsearch_url(step, &mut forwards).await?;
                // One node cannot place replicas: green would never come.
                let want = if stack.elasticsearch.replicas > 1 {
                    ClusterColor::Green
                } else {
                    ClusterColor::Yellow
                };
                let (auth, http) = self.elastic_auth().await;
                Box::new(health::search::SearchHealth::new(url, auth, want).with_http(http))
            }
            GateKind::Kibana => {
                let url = self.kibana_url(step, &mut forwards).await?;
                // Kibana's own server is plain HTTP in the rendered stack.
                let (auth, _) = self.elastic_auth().await;
                Box::new(health::kibana::KibanaAvailable::new(url, auth))
            }
        };
        Ok(ReachableGate {
            gate,
            _forwards: forwards,
        })
    }
}

/// Applies the stack: see the module documentation.
///
/// # Errors
/// The first step that fails, with what failed in it.
pub async fn apply(
    client: kube::Client,
    stack: &Stack,
    options: &Options,
) -> Result<ApplyReport, ApplyError> {
    let context = Context {
        client,
        stack,
        endpoints: &options.endpoints,
    };
    let mut report = ApplyReport::default();
    if !options.skip_preflight {
        let mut progress = StepProgress::start(options.progress, "preflight");
        progress.set("checking the cluster");
        let checks = preflight::run(&context.client, stack)
            .await
            .map_err(|e| ApplyError::Preflight(e.to_string()))?;
        if !checks.passed() {
            progress.finish(false, "a check failed");
            return Err(ApplyError::Preflight(checks.to_string()));
        }
        progress.finish(true, "passed");
        report.preflight = Some(checks.to_string());
    }
    for step in steps::steps(stack) {
        let mut progress = StepProgress::start(options.progress, step.name);
        match apply_step(&context, &step, options, &mut progress).await {
            Ok(step_report) => {
                let changed =
                    step_report.count(Outcome::Created) + step_report.count(Outcome::Changed);
                let summary = match &step_report.gate {
                    Some(gate) => format!("{changed} changed; {gate}"),
                    None => format!("{changed} changed"),
                };
                progress.finish(true, &summary);
                report.steps.push(step_report);
            }
            Err(error) => {
                progress.finish(false, "see below");
                return Err(error);
            }
        }
    }
    Ok(report)
}

async fn apply_step(
    context: &Context<'_>,
    step: &Step,
    options: &Options,
    progress: &mut StepProgress,
) -> Result<StepReport, ApplyError> {
    let mut report = StepReport {
        name: step.name.to_owned(),
        objects: Vec::new(),
        gate: None,
        notes: Vec::new(),
    };
    for object in &step.objects {
        progress.set(&format!("applying {}", object.id()));
        let outcome = apply_object(context, step.name, object, &mut report.notes).await?;
        report.objects.push((object.id(), outcome));
    }
    if step.after == Some(After::Secrets) {
        progress.set("generating secrets");
        let secrets = secrets::ensure(&context.client, context.stack)
            .await
            .map_err(|e| step_error(step.name, e))?;
        report.notes.push(secrets.to_string().trim_end().to_owned());
    }
    for workload in step.workloads() {
        wait_rollout(context, step.name, workload, options, progress).await?;
    }
    if step.objects.iter().any(|o| matches!(o, Object::Job(_))) {
        remove_old_jobs(context, step).await?;
    }
    if let Some(kind) = step.gate {
        let reachable = context.gate(step.name, kind).await?;
        let healthy = health::wait(
            reachable.gate.as_ref(),
            options.timeout,
            options.poll,
            |status| {
                progress.set(&format!(
                    "{}: {}",
                    reachable.gate.name(),
                    match status {
                        health::GateStatus::Healthy(t) | health::GateStatus::NotYet(t) => t,
                    }
                ));
            },
        )
        .await
        .map_err(|e| step_error(step.name, e))?;
        report.gate = Some(healthy);
    }
    match step.after {
        Some(After::ElasticsearchSetup) => {
            let mut forwards = Vec::new();
            let url = context.elasticsearch_url(step.name, &mut forwards).await?;
            if let Some(credentials) = context.elastic_credentials().await {
                progress.set("setting up the kibana_system and kelp-shipper users");
                let done =
                    secrets::configure_elasticsearch_users(&url, &credentials, context.stack)
                        .await
                        .map_err(|e| step_error(step.name, e))?;
                report.notes.push(format!("users: {}", done.join(", ")));
            }
            progress.set("installing the index template");
            let (auth, http) = context.elastic_auth().await;
            let done = health::template::install_index_template_with(
                &url,
                auth.as_ref(),
                &http,
                context.stack,
            )
            .await
            .map_err(|e| step_error(step.name, e))?;
            report.notes.push(format!("index template: {done}"));
        }
        Some(After::Dashboards) => {
            progress.set("importing the dashboards");
            let note = import_dashboards(context, step, options).await?;
            report.notes.push(note);
        }
        _ => {}
    }
    Ok(report)
}

/// Applies one object; grows a StatefulSet's volumes first when its claim
/// templates ask for more (a template cannot be changed in place).
async fn apply_object(
    context: &Context<'_>,
    step: &str,
    object: &Object,
    notes: &mut Vec<String>,
) -> Result<Outcome, ApplyError> {
    let client = &context.client;
    let live = cluster::get(client, object)
        .await
        .map_err(|e| kube_error(step, "reading", object, e))?;
    if let (Object::StatefulSet(desired), Some(_)) = (object, &live) {
        let live_sts = Api::<StatefulSet>::namespaced(client.clone(), context.namespace())
            .get(object.name())
            .await
            .map_err(|e| kube_error(step, "reading", object, e))?;
        let plan = growth::plan(&live_sts, desired);
        // A refused plan fails in execute with its fix, before the API
        // server would refuse the StatefulSet with a less helpful message.
        if plan.is_needed() || !plan.refused.is_empty() {
            let done = growth::execute(client, context.namespace(), &plan)
                .await
                .map_err(|e| step_error(step, e))?;
            notes.push(format!("volumes of {}: {done}", object.id()));
        }
    }
    let applied = cluster::server_side_apply(client, object, false)
        .await
        .map_err(|e| kube_error(step, "applying", object, e))?;
    let before = live.and_then(|l| l.metadata.resource_version);
    Ok(match before {
        None => Outcome::Created,
        Some(version) if Some(&version) == applied.metadata.resource_version.as_ref() => {
            Outcome::Unchanged
        }
        Some(_) => Outcome::Changed,
    })
}

/// Waits until the workload has rolled out, or the timeout.
async fn wait_rollout(
    context: &Context<'_>,
    step: &str,
    object: &Object,
    options: &Options,
    progress: &mut StepProgress,
) -> Result<(), ApplyError> {
    let started = Instant::now();
    loop {
        let state = cluster::rollout_state(&context.client, object)
            .await
            .map_err(|e| kube_error(step, "reading", object, e))?;
        match state {
            None | Some(Rollout::Done(_)) => return Ok(()),
            Some(Rollout::Failed(reason)) => {
                return Err(ApplyError::RolloutFailed {
                    step: step.to_owned(),
                    id: object.id(),
                    reason,
                    stuck: cluster::describe_stuck(&context.client, object).await,
                });
            }
            Some(Rollout::Waiting(reason)) => {
                progress.set(&format!("{}: {reason}", object.id()));
                if started.elapsed() + options.poll > options.timeout {
                    return Err(ApplyError::RolloutTimeout {
                        step: step.to_owned(),
                        id: object.id(),
                        secs: options.timeout.as_secs(),
                        last: reason,
                        stuck: cluster::describe_stuck(&context.client, object).await,
                    });
                }
            }
        }
        tokio::time::sleep(options.poll).await;
    }
}

/// Deletes topic Jobs of earlier stacks once the current one succeeded:
/// their names carry a hash of their spec, so each change left one behind.
async fn remove_old_jobs(context: &Context<'_>, step: &Step) -> Result<(), ApplyError> {
    let current: Vec<&str> = step.objects.iter().map(Object::name).collect();
    let api = Api::<Job>::namespaced(context.client.clone(), context.namespace());
    let selector = format!(
        "app.kubernetes.io/name=kafka,app.kubernetes.io/instance={}",
        context.namespace()
    );
    let jobs = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| step_error(step.name, format!("listing jobs failed: {e}")))?;
    for job in jobs.items {
        let name = job.metadata.name.unwrap_or_default();
        if name.starts_with("kafka-topics-") && !current.contains(&name.as_str()) {
            tracing::info!(job = %name, "deleting the topic job of an earlier stack");
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => {
                    return Err(step_error(
                        step.name,
                        format!("deleting job {name} failed: {e}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The hash recorded after an import: the saved objects and the Kibana
/// image they were imported into.
pub fn dashboards_hash(kibana_image: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kelp_dashboards::NDJSON.as_bytes());
    hasher.update(b"\n");
    hasher.update(kibana_image.as_bytes());
    hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Imports the dashboards unless [`DASHBOARDS_RECORD`] says this exact set
/// went into this Kibana already, then records it.
async fn import_dashboards(
    context: &Context<'_>,
    step: &Step,
    options: &Options,
) -> Result<String, ApplyError> {
    let image = manifests::images(&step.objects)
        .into_iter()
        .find(|(workload, _)| workload == "kibana")
        .map(|(_, image)| image)
        .unwrap_or_default();
    let hash = dashboards_hash(&image);
    let api = Api::<ConfigMap>::namespaced(context.client.clone(), context.namespace());
    let recorded = api
        .get_opt(DASHBOARDS_RECORD)
        .await
        .map_err(|e| {
            step_error(
                step.name,
                format!("reading configmap {DASHBOARDS_RECORD} failed: {e}"),
            )
        })?
        .and_then(|c| c.data)
        .and_then(|d| d.get(DASHBOARDS_HASH_KEY).cloned());
    if recorded.as_deref() == Some(hash.as_str()) && !options.reimport_dashboards {
        return Ok("dashboards: already imported".to_owned());
    }
    let mut forwards = Vec::new();
    let url = context.kibana_url(step.name, &mut forwards).await?;
    let url = reqwest::Url::parse(&url).map_err(|e| {
        step_error(
            step.name,
            format!("reading the kibana url {url} failed: {e}"),
        )
    })?;
    let auth = match context.elastic_auth().await {
        (Some(auth), _) => KibanaAuth::Basic {
            username: auth.username,
            password: auth.password.expose().to_owned(),
        },
        (None, _) => KibanaAuth::None,
    };
    let target = KibanaTarget {
        url,
        space: None,
        auth,
        ca_certificates_pem: None,
    };
    let import = ImportOptions {
        timeout: options.timeout,
        poll_interval: options.poll,
        ..ImportOptions::default()
    };
    let imported = crate::kibana::import_dashboards(&target, &import)
        .await
        .map_err(|e| step_error(step.name, e))?;
    let record = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": DASHBOARDS_RECORD, "namespace": context.namespace()},
        "data": {DASHBOARDS_HASH_KEY: hash},
    });
    api.patch(
        DASHBOARDS_RECORD,
        &PatchParams::apply(DASHBOARDS_MANAGER).force(),
        &Patch::Apply(&record),
    )
    .await
    .map_err(|e| {
        step_error(
            step.name,
            format!("recording the dashboards import failed: {e}"),
        )
    })?;
    Ok(format!(
        "dashboards: imported {} objects",
        imported.imported.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboards_record_changes_with_the_kibana_image_only() {
        let a = dashboards_hash("docker.elastic.co/kibana/kibana:8.19.21");
        assert_eq!(
            a,
            dashboards_hash("docker.elastic.co/kibana/kibana:8.19.21")
        );
        assert_ne!(a, dashboards_hash("docker.elastic.co/kibana/kibana:9.1.0"));
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_report_says_nothing_to_do_only_without_changes() {
        let step = |outcomes: &[Outcome]| StepReport {
            name: "kafka".to_owned(),
            objects: outcomes
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("Service/s{i}"), *o))
                .collect(),
            gate: Some("1 broker".to_owned()),
            notes: Vec::new(),
        };
        let table = [
            (vec![Outcome::Unchanged, Outcome::Unchanged], true, 0),
            (vec![Outcome::Unchanged, Outcome::Changed], false, 1),
            (vec![Outcome::Created, Outcome::Changed], false, 2),
        ];
        for (outcomes, nothing, changed) in table {
            let report = ApplyReport {
                preflight: None,
                steps: vec![step(&outcomes)],
            };
            assert_eq!(report.nothing_to_do(), nothing);
            assert_eq!(report.changed(), changed);
            let text = report.to_string();
            assert_eq!(
                text.contains("nothing to do: all 2 objects"),
                nothing,
                "{text}"
            );
            assert!(text.starts_with("kafka: 2 objects"), "{text}");
            assert!(text.contains("; healthy: 1 broker"), "{text}");
            assert_eq!(
                text.contains("  Changed: Service/s1"),
                outcomes[1] == Outcome::Changed
            );
        }
    }
}
