//! The collector's configuration file (YAML or TOML). Every field is
//! documented here; this file is the reference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::parse::multiline::{self, Rule, RuleName};
use crate::parse::{DEFAULT_MAX_EVENT_BYTES, Format};
use crate::sink::KafkaSinkConfig;
use crate::tail::TailConfig;

/// The whole configuration of `kelp-collector run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Node name written to `kubernetes.node.name` and `host.name`. Default:
    /// the `NODE_NAME` environment variable (set it from the downward API),
    /// else the machine's host name.
    #[serde(default)]
    pub node_name: Option<String>,
    /// Which files are tailed and how; see each field.
    #[serde(default)]
    pub tail: TailConfig,
    /// How lines become events.
    #[serde(default)]
    pub parse: ParseConfig,
    /// Where resume offsets are kept.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Where events go.
    pub sink: SinkConfig,
    /// Delivery retries and in-flight bounds.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// The `/metrics`, `/healthz` and `/readyz` endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The collector's own log.
    #[serde(default)]
    pub log: LogConfig,
    /// Pod metadata from the Kubernetes API and the annotations that
    /// exclude pods or choose their multiline rule (docs/COLLECTOR.md).
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
}

/// Pod metadata from the Kubernetes API: one list+watch of this node's
/// pods and one of namespaces. See docs/COLLECTOR.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Enrich events with labels, owner, node and image, and honour the
    /// exclusion and multiline annotations. Default false: metadata comes
    /// from the log file path only, as with `kelp-collector parse` (the
    /// deployer turns it on in the cluster).
    pub enabled: bool,
    /// A kubeconfig file to reach the API server from outside the cluster
    /// (tests, debugging). Default unset: the `KUBECONFIG` environment
    /// variable or `~/.kube/config` when present, else the pod's service
    /// account (in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Ship every pod label as `kubernetes.labels.*`. Default true, as
    /// Fluent Bit and Vector do.
    pub include_labels: bool,
    /// Pod annotations shipped as `kubernetes.annotations.*`: exact keys,
    /// or prefixes ending in `*` (e.g. `example.com/*`). Default none:
    /// annotations are often large (`last-applied-configuration`) and
    /// sometimes sensitive.
    pub include_annotations: Vec<String>,
    /// At start, how long reading waits for the first complete list of pods
    /// and namespaces, in milliseconds; after that it starts anyway, with
    /// path metadata for pods not yet known. Default 10000.
    pub initial_sync_timeout_ms: u64,
    /// How long the lines of a new file whose pod is not known yet are held
    /// back waiting for the watch to deliver the pod, in milliseconds; then
    /// they go out with path metadata only (counted in
    /// `kelp_collector_metadata_missing_total`). Default 2000: the pod
    /// event normally arrives before the container's first line. 0 disables
    /// holding.
    pub unknown_pod_wait_ms: u64,
    /// How long a deleted pod's metadata stays known for files found after
    /// the deletion, in milliseconds. Files already open keep their pod's
    /// metadata until they are drained and released, however long that
    /// takes. Default 300000 (five minutes, `tail.deleted_file_grace_ms`'s
    /// default).
    pub deleted_pod_retention_ms: u64,
}

impl Default for KubernetesConfig {
    fn default() -> KubernetesConfig {
        KubernetesConfig {
            enabled: false,
            kubeconfig: None,
            include_labels: true,
            include_annotations: Vec::new(),
            initial_sync_timeout_ms: 10_000,
            unknown_pod_wait_ms: 2_000,
            deleted_pod_retention_ms: 300_000,
        }
    }
}

/// Parsing settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// Log format: `auto` (default: detected from each file's first line),
    /// `cri` (containerd, CRI-O) or `docker` (json-file).
    pub format: FormatChoice,
    /// Largest event; longer content is cut and the event flagged
    /// `truncated`. Default 256 KiB, well under Kafka's 1 MiB `message.max.bytes`.
    pub max_event_bytes: usize,
    /// Joining of stack traces and other multi-line messages.
    pub multiline: MultilineConfig,
}

impl Default for ParseConfig {
    fn default() -> ParseConfig {
        ParseConfig {
            format: FormatChoice::Auto,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            multiline: MultilineConfig::default(),
        }
    }
}

/// How the format of a file is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    /// Detected from the file's first line.
    Auto,
    /// CRI (containerd, CRI-O).
    Cri,
    /// Docker json-file.
    Docker,
}

impl FormatChoice {
    /// The fixed format, if one is chosen.
    pub fn fixed(self) -> Option<Format> {
        match self {
            FormatChoice::Auto => None,
            FormatChoice::Cri => Some(Format::Cri),
            FormatChoice::Docker => Some(Format::Docker),
        }
    }
}

/// Multiline settings; applied after CRI and docker reassembly, per file and stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultilineConfig {
    /// Rule: `none`, `java` (default: the most common stack traces in
    /// container logs), `go`, `python`, or `custom` with `start` and
    /// `continue_pattern`. A pod can choose another with the
    /// `kelp.io/multiline` annotation.
    pub rule: String,
    /// For `custom`: a regex that matches the first line of an event.
    pub start: Option<String>,
    /// For `custom`: a regex that matches the lines that continue an event.
    pub continue_pattern: Option<String>,
    /// Silence on a stream after which its pending event is sent, in
    /// milliseconds. Default 2000, as Fluent Bit's `flush_timeout`.
    pub flush_timeout_ms: u64,
    /// Most lines joined into one event; later lines are dropped and the
    /// event flagged `truncated`. Default 500.
    pub max_lines: usize,
}

impl Default for MultilineConfig {
    fn default() -> MultilineConfig {
        MultilineConfig {
            rule: "java".to_owned(),
            start: None,
            continue_pattern: None,
            flush_timeout_ms: multiline::DEFAULT_FLUSH_TIMEOUT_MS,
            max_lines: multiline::DEFAULT_MAX_LINES,
        }
    }
}

impl MultilineConfig {
    /// The compiled multiline settings.
    ///
    /// # Errors
    /// When the rule name is unknown or a custom pattern does not compile.
    pub fn compile(&self, max_event_bytes: usize) -> Result<multiline::Config, ConfigError> {
        let rule = if self.rule == "custom" {
            let (Some(start), Some(continuation)) = (&self.start, &self.continue_pattern) else {
                return Err(ConfigError::Invalid(
                    "parse.multiline: rule custom needs start and continue_pattern".into(),
                ));
            };
            Rule::custom(start, continuation)
                .map_err(|error| ConfigError::Invalid(format!("parse.multiline: {error}")))?
        } else {
            let name: RuleName = self
                .rule
                .parse()
                .map_err(|error| ConfigError::Invalid(format!("parse.multiline: {error}")))?;
            Rule::from(name)
        };
        let mut config = multiline::Config::new(rule);
        config.flush_timeout_ms = self.flush_timeout_ms;
        config.max_lines = self.max_lines;
        config.max_event_bytes = max_event_bytes;
        Ok(config)
    }
}

/// Checkpoint settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// The checkpoint file; keep it on a hostPath so it survives pod
    /// restarts. Default `/var/lib/kelp-collector/checkpoints.json`.
    pub path: PathBuf,
    /// How often acknowledged progress is written, in milliseconds. Default
    /// 1000: a crash re-sends at most about a second of events, which the
    /// shipper overwrites by id.
    pub interval_ms: u64,
}

impl Default for CheckpointConfig {
    fn default() -> CheckpointConfig {
        CheckpointConfig {
            path: PathBuf::from("/var/lib/kelp-collector/checkpoints.json"),
            interval_ms: 1_000,
        }
    }
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// Kafka (production).
    Kafka(KafkaSinkConfig),
    /// One JSON line per event on stdout (debugging).
    Stdout,
    /// One JSON line per event appended to a file (debugging, tests).
    File {
        /// The file to append to.
        path: PathBuf,
    },
}

/// Delivery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Most events sent and not yet acknowledged; at the limit reading
    /// pauses. Default 100000, about 40 MB of records at 400 bytes.
    pub max_in_flight_events: usize,
    /// First delay before re-sending an event whose delivery failed, in
    /// milliseconds; doubles per attempt. Default 100.
    pub retry_base_ms: u64,
    /// Longest delay between re-sends, in milliseconds. Default 30000.
    pub retry_cap_ms: u64,
    /// On SIGTERM, how long to wait for outstanding acknowledgements before
    /// saving checkpoints and exiting, in milliseconds. Default 10000; what
    /// is not acknowledged by then is read again after the restart.
    pub shutdown_timeout_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            max_in_flight_events: 100_000,
            retry_base_ms: 100,
            retry_cap_ms: 30_000,
            shutdown_timeout_ms: 10_000,
        }
    }
}

/// The operations endpoint: `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve the endpoint. Default true.
    pub enabled: bool,
    /// Address to listen on. Default `0.0.0.0:9101`: every interface, so
    /// Prometheus and the kubelet's probes reach it. 9101 is next to
    /// node_exporter's 9100, which shares the node's ports when both run
    /// with `hostNetwork`; the shipper uses 9102. A port that cannot be
    /// bound is logged and the collector runs on without the endpoint:
    /// shipping logs matters more.
    pub listen: SocketAddr,
    /// `/healthz` answers 503 once the pipeline loop has not made a round
    /// for this long, in milliseconds. Default 30000: a round takes at most
    /// `tail.poll_interval_ms` plus a checkpoint save, and waiting on a full
    /// Kafka queue still counts as rounds.
    pub liveness_timeout_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 9101)),
            liveness_timeout_ms: 30_000,
        }
    }
}

/// The collector's own log (stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Which log lines are written, as `tracing` filter directives: `info`
    /// (default), `warn`, or per module, e.g.
    /// `info,kelp_collector::tail=debug`. The `RUST_LOG` environment
    /// variable, when set, overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            filter: "info".to_owned(),
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path} failed: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// YAML syntax or schema error (unknown fields included).
    #[error("parsing yaml config failed: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    /// TOML syntax or schema error (unknown fields included).
    #[error("parsing toml config failed: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("validating config failed: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a config file; `.toml` is TOML, anything else YAML.
    ///
    /// # Errors
    /// When the file cannot be read, parsed or validated.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if path.extension().is_some_and(|ext| ext == "toml") {
            Config::from_toml_str(&text)
        } else {
            Config::from_yaml_str(&text)
        }
    }

    /// Parses and validates YAML.
    ///
    /// # Errors
    /// When the text is not a valid configuration.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_saphyr::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates TOML.
    ///
    /// # Errors
    /// When the text is not a valid configuration.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that would make the collector misbehave.
    ///
    /// # Errors
    /// Names the field and what is wrong with it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.tail
            .validate()
            .map_err(|error| ConfigError::Invalid(format!("tail: {error}")))?;
        self.parse.multiline.compile(self.parse.max_event_bytes)?;
        if self.parse.max_event_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "parse.max_event_bytes must be at least 1024".into(),
            ));
        }
        if let SinkConfig::Kafka(kafka) = &self.sink {
            kafka
                .client_config()
                .map_err(|error| ConfigError::Invalid(format!("sink: {error}")))?;
            // The record adds metadata around the message: keep room for it.
            let needed = self.parse.max_event_bytes as u64 + 64 * 1024;
            if kafka.message_max_bytes < needed {
                return Err(ConfigError::Invalid(format!(
                    "sink.message_max_bytes ({}) must be at least parse.max_event_bytes + 64 KiB ({needed})",
                    kafka.message_max_bytes
                )));
            }
        }
        if self.delivery.max_in_flight_events == 0 || self.delivery.retry_base_ms == 0 {
            return Err(ConfigError::Invalid(
                "delivery.max_in_flight_events and delivery.retry_base_ms must be positive".into(),
            ));
        }
        if self.metrics.liveness_timeout_ms < 1_000
            || self.metrics.liveness_timeout_ms <= 2 * self.tail.poll_interval_ms
        {
            return Err(ConfigError::Invalid(format!(
                "metrics.liveness_timeout_ms ({}) must be at least 1000 and more than twice tail.poll_interval_ms ({})",
                self.metrics.liveness_timeout_ms, self.tail.poll_interval_ms
            )));
        }
        if let Some(bad) = self
            .kubernetes
            .include_annotations
            .iter()
            .find(|key| key.is_empty() || key.trim_end_matches('*').contains('*'))
        {
            return Err(ConfigError::Invalid(format!(
                "kubernetes.include_annotations: {bad:?} must be a key or a prefix ending in *"
            )));
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.log.filter)
            .map_err(|error| ConfigError::Invalid(format!("log.filter: {error}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_with_every_field() {
        let text = include_str!("../config.example.yaml");
        let config = Config::from_yaml_str(text).unwrap();
        assert!(matches!(config.sink, SinkConfig::Kafka(ref k) if k.topic == "kelp-logs"));
        assert_eq!(config.parse.multiline.rule, "java");
        assert_eq!(config.checkpoint.interval_ms, 1000);
        assert_eq!(config.metrics, MetricsConfig::default());
        assert_eq!(config.metrics.listen.to_string(), "0.0.0.0:9101");
        assert_eq!(config.log, LogConfig::default());
        // Every field is spelled out: the defaults give the same config.
        let defaults = Config::from_yaml_str(
            "sink: {kind: kafka, bootstrap_servers: \"kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092\"}\n",
        )
        .unwrap();
        assert_eq!(config, defaults);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let table = [
            ("sink: {kind: stdout}\nbogus: 1\n", "bogus"),
            ("sink: {kind: stdout}\ntail: {includ: []}\n", "includ"),
            (
                "sink: {kind: stdout}\nparse: {multiline: {rule: cobol}}\n",
                "cobol",
            ),
            (
                "sink: {kind: stdout}\nparse: {multiline: {rule: custom}}\n",
                "custom",
            ),
            (
                "sink: {kind: kafka, bootstrap_servers: x, message_max_bytes: 1000}\n",
                "message_max_bytes",
            ),
            (
                "sink: {kind: stdout}\ndelivery: {max_in_flight_events: 0}\n",
                "max_in_flight_events",
            ),
            (
                "sink: {kind: stdout}\nlog: {filter: \"info,=x=y\"}\n",
                "log.filter",
            ),
            (
                "sink: {kind: stdout}\nmetrics: {liveness_timeout_ms: 400}\n",
                "liveness_timeout_ms",
            ),
            (
                "sink: {kind: stdout}\nmetrics: {listen: \"nowhere\"}\n",
                "listen",
            ),
            (
                "sink: {kind: stdout}\ntail: {include: [\"/var/log/[\"]}\n",
                "include",
            ),
            (
                "sink: {kind: kafka, bootstrap_servers: x, properties: {acks: \"1\"}}\n",
                "acks",
            ),
            (
                "sink: {kind: stdout}\nkubernetes: {enabeld: true}\n",
                "enabeld",
            ),
            (
                "sink: {kind: stdout}\nkubernetes: {include_annotations: [\"a*b\"]}\n",
                "include_annotations",
            ),
        ];
        for (text, needle) in table {
            let error = Config::from_yaml_str(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn toml_works_too() {
        let config = Config::from_toml_str("[sink]\nkind = \"file\"\npath = \"/tmp/x\"\n").unwrap();
        assert!(matches!(config.sink, SinkConfig::File { .. }));
    }
}
