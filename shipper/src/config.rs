//! The shipper's configuration file, YAML or TOML. This module is the
//! reference: every field is documented here, with its default and where the
//! default comes from. `shipper/config.example.yaml` shows every field.
//!
//! Unknown fields are rejected, so a typo fails at startup instead of being
//! ignored. Secrets are never in the file: it names a file or an environment
//! variable, read once at startup ([`SecretSource::load`]), and the value is a
//! [`Secret`] that prints as `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::bulk::BatchLimits;
use crate::index_name::{DEFAULT_TEMPLATE, IndexTemplate, TemplateError};
use crate::template::{Codec, TemplateSettings};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where events come from: the Kafka consumer group.
    pub kafka: KafkaConfig,
    /// Where events go: the Elasticsearch or OpenSearch cluster.
    pub elasticsearch: ElasticsearchConfig,
    /// How events are batched into bulk requests and retried.
    #[serde(default)]
    pub bulk: BulkConfig,
    /// Where events the search engine rejects go.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// The index template and retention policy the shipper installs.
    #[serde(default)]
    pub template: TemplateConfig,
    /// The Prometheus metrics endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// The Kafka consumer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from, `host:port`. At least one.
    pub bootstrap_servers: Vec<String>,
    /// Topics to consume. Set this or `topic_regex`, not both.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression of topics to consume, starting with `^` as
    /// librdkafka requires, e.g. `^kelp-events-.*`. Set this or `topics`.
    #[serde(default)]
    pub topic_regex: Option<String>,
    /// The consumer group. Every shipper of one pipeline uses the same group.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Static membership (`group.instance.id`): a stable, unique name per
    /// shipper instance (e.g. the StatefulSet pod name) lets a restart within
    /// `session_timeout_ms` keep its partitions without a rebalance.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// How long the group coordinator waits for a silent member before
    /// reassigning its partitions, in milliseconds.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// How often stored offsets are committed, in milliseconds. Smaller means
    /// fewer events re-sent after a crash (they overwrite, so only work is lost).
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Extra librdkafka properties, e.g. `security.protocol: SSL`. Values may
    /// be strings, numbers or booleans. Properties the shipper sets itself
    /// (group, offsets, commits) are refused here: use the fields above.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyValue>,
}

/// A librdkafka property value: librdkafka takes strings, the file may say
/// `fetch.max.bytes: 1048576` without quotes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PropertyValue {
    /// A boolean, passed as `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string, passed as is.
    String(String),
}

impl fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyValue::Bool(b) => write!(f, "{b}"),
            PropertyValue::Int(i) => write!(f, "{i}"),
            PropertyValue::Float(x) => write!(f, "{x}"),
            PropertyValue::String(s) => f.write_str(s),
        }
    }
}

/// librdkafka properties that the shipper's correctness depends on.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "kafka.bootstrap_servers"),
    ("metadata.broker.list", "kafka.bootstrap_servers"),
    ("group.id", "kafka.group_id"),
    ("group.instance.id", "kafka.group_instance_id"),
    ("session.timeout.ms", "kafka.session_timeout_ms"),
    ("auto.commit.interval.ms", "kafka.commit_interval_ms"),
    (
        "enable.auto.commit",
        "nothing: the shipper commits only what is indexed",
    ),
    (
        "enable.auto.offset.store",
        "nothing: the shipper stores only what is indexed",
    ),
];

/// The search engine.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URLs of the cluster's HTTP endpoints, `http://` or `https://`.
    /// At least one; requests rotate over them.
    pub urls: Vec<String>,
    /// Which index each event goes to; see [`crate::index_name`] for the syntax.
    #[serde(default = "default_index_template")]
    pub index_template: String,
    /// How to authenticate.
    #[serde(default)]
    pub auth: Auth,
    /// TLS settings for `https://` URLs.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Timeout of one request (bulk or setup), in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

/// Authentication to the search engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic(BasicAuth),
    /// An API key, sent as `Authorization: ApiKey <key>` (Elasticsearch; the
    /// key is the base64 `encoded` value the create-API-key call returns).
    ApiKey(ApiKeyAuth),
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// A file holding the password (e.g. a mounted Kubernetes Secret);
    /// trailing whitespace is ignored. Set this or `password_env`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password. Set this or `password_file`.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// API key authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyAuth {
    /// A file holding the key; trailing whitespace is ignored. Set this or `key_env`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// An environment variable holding the key. Set this or `key_file`.
    #[serde(default)]
    pub key_env: Option<String>,
}

/// TLS to the search engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust, instead of the built-in
    /// Mozilla roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. Only for tests: it allows anyone on the
    /// path to read the logs and credentials.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The bulk slots at one moment, for [`BulkConfig::linger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    /// Bulk requests in flight.
    pub in_flight: usize,
    /// Full batches waiting for a slot.
    pub queued: usize,
}

/// Batching, concurrency and retries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BulkConfig {
    /// Largest bulk request body, in bytes (before gzip). A single event
    /// larger than this is still sent, alone.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Most events in one bulk request.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Longest an event waits for its batch to fill before the batch is
    /// sent anyway, in milliseconds, while every bulk slot is busy.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// How long the batch waits instead when a bulk slot is free and no
    /// other batch is queued, in milliseconds: a search engine with nothing
    /// to do gets what there is, so at low rates events do not wait for a
    /// batch to fill. Under load every slot is busy and batches fill up to
    /// `max_events` or `linger_ms`. At most `linger_ms`.
    #[serde(default = "default_idle_linger_ms")]
    pub idle_linger_ms: u64,
    /// Bulk requests in flight at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Compress request bodies with gzip. Saves network, costs CPU: gzip
    /// costs more per event than decoding and encoding it.
    #[serde(default)]
    pub gzip: bool,
    /// First retry delay, in milliseconds; see [`crate::backoff`]. At least 1.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Longest retry delay, in milliseconds. Retries never stop: the offset
    /// waits, nothing is dropped.
    #[serde(default = "default_retry_cap_ms")]
    pub retry_cap_ms: u64,
    /// On a rebalance, how long in-flight bulks of revoked partitions may take
    /// to finish before their partitions are released, in milliseconds; on
    /// shutdown, how long all in-flight bulks may take. Must be below
    /// `kafka.session_timeout_ms`.
    #[serde(default = "default_revoke_drain_timeout_ms")]
    pub revoke_drain_timeout_ms: u64,
}

/// The dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Kafka topic (same brokers) for events the search engine rejects as
    /// malformed (e.g. `mapper_parsing_exception`) and records that are not
    /// valid events. Their offsets move on only after this topic has them.
    #[serde(default = "default_dead_letter_topic")]
    pub topic: String,
}

/// The index template and lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Install (create or update) the template and policy at startup.
    #[serde(default = "default_true")]
    pub install: bool,
    /// Name of the index template and of the lifecycle policy.
    #[serde(default = "default_template_name")]
    pub name: String,
    /// Primary shards per index (`index.number_of_shards`).
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// Replicas per shard (`index.number_of_replicas`); unset keeps the
    /// cluster's default (1). Set 0 on a single-node cluster.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// How often new documents become searchable
    /// (`index.refresh_interval`), in milliseconds.
    #[serde(default = "default_refresh_interval_ms")]
    pub refresh_interval_ms: u64,
    /// Stored-field compression: `default` (LZ4) or `best_compression`.
    #[serde(default = "default_codec")]
    pub codec: Codec,
    /// Delete an index this many days after its creation (ILM on
    /// Elasticsearch, ISM on OpenSearch). 0 keeps indices forever.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

/// The metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address the Prometheus `/metrics`, `/healthz` and `/readyz` endpoints
    /// listen on.
    #[serde(default = "default_listen_address")]
    pub listen_address: SocketAddr,
}

/// Whether a librdkafka property holds a secret: printed as `***`.
fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password", "secret", "sasl.", "ssl.key", ".pem", "keystore", "token",
    ]
    .iter()
    .any(|needle| key.contains(needle))
}

/// `kelp-shipper`: one consumer group for all shippers of a pipeline.
fn default_group_id() -> String {
    "kelp-shipper".to_owned()
}

/// 45 s: librdkafka's default since 2.0 (KIP-735).
fn default_session_timeout_ms() -> u64 {
    45_000
}

/// 1 s: the low end of the 1-5 s the research notes recommend; librdkafka's
/// default is 5 s. A short interval keeps the replay window after a crash small.
fn default_commit_interval_ms() -> u64 {
    1_000
}

/// [`DEFAULT_TEMPLATE`]: one index per namespace and UTC day.
fn default_index_template() -> String {
    DEFAULT_TEMPLATE.to_owned()
}

/// 60 s: Vector's Elasticsearch sink request timeout.
fn default_request_timeout_ms() -> u64 {
    60_000
}

/// 5 MiB: Kafka Connect's Elasticsearch sink `bulk.size.bytes`, far below
/// Elasticsearch's `http.max_content_length` (100 MiB).
fn default_max_bytes() -> usize {
    5 * 1024 * 1024
}

/// 5000: about 3 MB of kelp records, inside Elastic's advice of 5-15 MB
/// bulks. Kafka Connect's `batch.size` of 2000 drained a backlog at 11 k
/// events/s here against 23 k/s with 5000 (docs/PERFORMANCE.md): each bulk
/// pays a fixed cost (a translog fsync) however small it is. Small rates do
/// not wait for it to fill (`idle_linger_ms`).
fn default_max_events() -> usize {
    5_000
}

/// 50 ms: Logstash's `pipeline.batch.delay`.
fn default_idle_linger_ms() -> u64 {
    50
}

/// 1 s: Vector's `batch.timeout_secs` for the Elasticsearch sink.
fn default_linger_ms() -> u64 {
    1_000
}

/// 4: Kafka Connect's sink uses 5, and Elastic Agent measurements gain little
/// past 4-8 workers; 4 suits a small cluster (about 2 per data node).
fn default_max_in_flight() -> usize {
    4
}

/// 100 ms: Kafka Connect's Elasticsearch sink `retry.backoff.ms`.
fn default_retry_base_ms() -> u64 {
    100
}

/// 30 s: Vector's maximum retry backoff for the Elasticsearch sink.
fn default_retry_cap_ms() -> u64 {
    30_000
}

/// 22.5 s: half the default session timeout, as Vector's Kafka source
/// defaults its drain timeout.
fn default_revoke_drain_timeout_ms() -> u64 {
    22_500
}

/// `kelp-dead-letter`: named after the pipeline.
fn default_dead_letter_topic() -> String {
    "kelp-dead-letter".to_owned()
}

fn default_true() -> bool {
    true
}

/// `kelp-logs`: matches the default index names `kelp-logs-*`.
fn default_template_name() -> String {
    "kelp-logs".to_owned()
}

/// 1: log indices are per namespace and day, hence many and small;
/// Elastic's guidance is shards of 10-50 GB.
fn default_shards() -> u32 {
    1
}

/// 1 s: the Elasticsearch and OpenSearch default.
fn default_refresh_interval_ms() -> u64 {
    1_000
}

/// `best_compression`: logs compress well and are read rarely.
fn default_codec() -> Codec {
    Codec::BestCompression
}

/// 7 days: an assumption (long enough to investigate an incident, small
/// enough for a small cluster's disks); set it to your needs.
fn default_retention_days() -> u32 {
    7
}

/// Port 9102, all interfaces, so a Prometheus in the cluster can scrape it.
fn default_listen_address() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 9102))
}

impl Default for BulkConfig {
    fn default() -> BulkConfig {
        BulkConfig {
            max_bytes: default_max_bytes(),
            max_events: default_max_events(),
            linger_ms: default_linger_ms(),
            idle_linger_ms: default_idle_linger_ms(),
            max_in_flight: default_max_in_flight(),
            gzip: false,
            retry_base_ms: default_retry_base_ms(),
            retry_cap_ms: default_retry_cap_ms(),
            revoke_drain_timeout_ms: default_revoke_drain_timeout_ms(),
        }
    }
}

impl Default for DeadLetterConfig {
    fn default() -> DeadLetterConfig {
        DeadLetterConfig {
            topic: default_dead_letter_topic(),
        }
    }
}

impl Default for TemplateConfig {
    fn default() -> TemplateConfig {
        TemplateConfig {
            install: true,
            name: default_template_name(),
            shards: default_shards(),
            replicas: None,
            refresh_interval_ms: default_refresh_interval_ms(),
            codec: default_codec(),
            retention_days: default_retention_days(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            listen_address: default_listen_address(),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The YAML does not parse or does not match the structure.
    #[error("reading yaml config failed: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    /// The TOML does not parse or does not match the structure.
    #[error("reading toml config failed: {0}")]
    Toml(#[from] toml::de::Error),
    /// The file name says neither YAML nor TOML.
    #[error("reading config failed: {0} must end in .yaml, .yml or .toml to tell its format")]
    Format(PathBuf),
    /// A field's value is not usable.
    #[error("validating config failed: {field}: {reason}")]
    Invalid {
        /// The dotted path of the field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Config {
    /// Parses and validates a YAML configuration.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_saphyr::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates a TOML configuration.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and validates a file's text, YAML or TOML by the file's
    /// extension (the caller reads the file).
    pub fn from_file_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("yaml" | "yml") => Config::from_yaml_str(text),
            Some("toml") => Config::from_toml_str(text),
            _ => Err(ConfigError::Format(path.to_owned())),
        }
    }

    /// The configuration with the values of secret-looking librdkafka
    /// properties (passwords, keys, SASL settings) replaced by `***`, for
    /// printing. Secrets of the search engine are never in the file.
    pub fn redacted(&self) -> Config {
        let mut config = self.clone();
        for (key, value) in &mut config.kafka.properties {
            if is_secret_property(key) {
                *value = PropertyValue::String("***".to_owned());
            }
        }
        config
    }

    /// Checks what the types cannot: required choices, ranges, consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.elasticsearch.validate()?;
        self.bulk.validate()?;
        if self.bulk.revoke_drain_timeout_ms >= self.kafka.session_timeout_ms {
            return Err(invalid(
                "bulk.revoke_drain_timeout_ms",
                format!(
                    "{} must be below kafka.session_timeout_ms ({}), or the group evicts the shipper while it drains",
                    self.bulk.revoke_drain_timeout_ms, self.kafka.session_timeout_ms
                ),
            ));
        }
        if self.dead_letter.topic.trim().is_empty() {
            return Err(invalid("dead_letter.topic", "must not be empty"));
        }
        if self.kafka.topics.contains(&self.dead_letter.topic) {
            return Err(invalid(
                "dead_letter.topic",
                "must not be one of kafka.topics: rejected events would loop",
            ));
        }
        self.template.validate()?;
        if self.template.install && self.index_template()?.index_pattern().is_none() {
            return Err(invalid(
                "elasticsearch.index_template",
                "must start with literal text (e.g. `kelp-logs-`) when template.install is on: a template for `*` would apply to every index",
            ));
        }
        Ok(())
    }

    /// The parsed index-name template.
    pub fn index_template(&self) -> Result<IndexTemplate, ConfigError> {
        IndexTemplate::parse(&self.elasticsearch.index_template)
            .map_err(|e: TemplateError| invalid("elasticsearch.index_template", e.to_string()))
    }

    /// The index template and policy settings, for [`crate::template`].
    pub fn template_settings(&self) -> Result<TemplateSettings, ConfigError> {
        let pattern = self.index_template()?.index_pattern().ok_or_else(|| {
            invalid(
                "elasticsearch.index_template",
                "must start with literal text to derive an index pattern",
            )
        })?;
        let t = &self.template;
        Ok(TemplateSettings {
            name: t.name.clone(),
            index_patterns: vec![pattern],
            shards: t.shards,
            replicas: t.replicas,
            refresh_interval: format_duration_ms(t.refresh_interval_ms),
            codec: t.codec,
            retention_days: (t.retention_days > 0).then_some(t.retention_days),
        })
    }
}

/// `1000` → `1s`, `1500` → `1500ms`: Elasticsearch time units.
fn format_duration_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl KafkaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty()
            || self.bootstrap_servers.iter().any(|s| s.trim().is_empty())
        {
            return Err(invalid(
                "kafka.bootstrap_servers",
                "needs at least one non-empty host:port",
            ));
        }
        match (&self.topics[..], &self.topic_regex) {
            ([], None) => {
                return Err(invalid(
                    "kafka.topics",
                    "set kafka.topics or kafka.topic_regex",
                ));
            }
            ([_, ..], Some(_)) => {
                return Err(invalid(
                    "kafka.topic_regex",
                    "set kafka.topics or kafka.topic_regex, not both",
                ));
            }
            (_, Some(regex)) if !regex.starts_with('^') => {
                return Err(invalid(
                    "kafka.topic_regex",
                    "must start with `^` (librdkafka treats other names as literal topics)",
                ));
            }
            (topics, None)
                if topics
                    .iter()
                    .any(|t| t.trim().is_empty() || t.starts_with('^')) =>
            {
                return Err(invalid(
                    "kafka.topics",
                    "topic names must be non-empty and must not start with `^` (use kafka.topic_regex)",
                ));
            }
            _ => {}
        }
        if self.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "must not be empty"));
        }
        if self
            .group_instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(invalid(
                "kafka.group_instance_id",
                "must not be empty when set",
            ));
        }
        if self.session_timeout_ms == 0 {
            return Err(invalid("kafka.session_timeout_ms", "must be positive"));
        }
        if self.commit_interval_ms == 0 {
            return Err(invalid("kafka.commit_interval_ms", "must be positive"));
        }
        for key in self.properties.keys() {
            if let Some((_, instead)) = OWNED_PROPERTIES.iter().find(|(k, _)| k == key) {
                return Err(invalid(
                    "kafka.properties",
                    format!("`{key}` is set by the shipper; use {instead}"),
                ));
            }
        }
        Ok(())
    }

    /// The librdkafka properties of the consumer. The extra `properties` may
    /// override the defaults here (`client.id`, `auto.offset.reset`,
    /// `partition.assignment.strategy`, `statistics.interval.ms`, the
    /// prefetch: `queued.min.messages`, `max.partition.fetch.bytes`,
    /// `fetch.queue.backoff.ms`), never the
    /// settings the delivery guarantee rests on (validation refuses those).
    pub fn consumer_properties(&self) -> BTreeMap<String, String> {
        let mut props: BTreeMap<String, String> = [
            ("client.id", "kelp-shipper"),
            // A new group starts at the oldest record: nothing is skipped.
            ("auto.offset.reset", "earliest"),
            // A rebalance moves only the partitions that change owner, so
            // the others keep indexing while it runs.
            ("partition.assignment.strategy", "cooperative-sticky"),
            // Consumer lag comes from librdkafka's statistics.
            ("statistics.interval.ms", "5000"),
            // Prefetch little: the shipper buffers whole bulks itself, and
            // pausing for backpressure throws librdkafka's prefetched
            // records away, to be fetched and decompressed again on resume.
            // With librdkafka's 100,000 per partition a backlog's drain
            // spent 1.7 us per event in the broker thread, and 0.4 us with
            // these (docs/PERFORMANCE.md).
            ("queued.min.messages", "1000"),
            ("max.partition.fetch.bytes", "262144"),
            // The queue above is short: refill it soon after it drains
            // instead of librdkafka's 1 s.
            ("fetch.queue.backoff.ms", "20"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        props.extend(self.property_strings());
        let owned = [
            ("bootstrap.servers", self.bootstrap_servers.join(",")),
            ("group.id", self.group_id.clone()),
            ("session.timeout.ms", self.session_timeout_ms.to_string()),
            // librdkafka commits what was stored, and stores happen only when
            // the watermark moves: every record before the offset is indexed
            // or dead-lettered.
            ("enable.auto.commit", "true".to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            (
                "auto.commit.interval.ms",
                self.commit_interval_ms.to_string(),
            ),
        ];
        props.extend(owned.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if let Some(id) = &self.group_instance_id {
            props.insert("group.instance.id".to_owned(), id.clone());
        }
        props
    }

    /// The librdkafka properties of the dead-letter producer: the extra
    /// `properties` (security settings apply to both clients; consumer-only
    /// ones are ignored by librdkafka with a warning), then idempotent
    /// `acks=all` delivery.
    pub fn producer_properties(&self) -> BTreeMap<String, String> {
        let mut props = BTreeMap::from([(
            "client.id".to_owned(),
            "kelp-shipper-dead-letter".to_owned(),
        )]);
        props.extend(self.property_strings());
        for key in [
            "group.id",
            "group.instance.id",
            "session.timeout.ms",
            "enable.auto.commit",
            "enable.auto.offset.store",
            "auto.commit.interval.ms",
            "auto.offset.reset",
            "partition.assignment.strategy",
        ] {
            props.remove(key);
        }
        let owned = [
            ("bootstrap.servers", self.bootstrap_servers.join(",")),
            ("enable.idempotence", "true".to_owned()),
            ("acks", "all".to_owned()),
            // A failed delivery is retried by the shipper with backoff, so an
            // outage shows up in logs and metrics instead of waiting silently.
            ("message.timeout.ms", "30000".to_owned()),
        ];
        props.extend(owned.into_iter().map(|(k, v)| (k.to_owned(), v)));
        props
    }

    /// The extra properties as librdkafka strings.
    pub fn property_strings(&self) -> BTreeMap<String, String> {
        self.properties
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }
}

impl ElasticsearchConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.urls.is_empty() {
            return Err(invalid("elasticsearch.urls", "needs at least one URL"));
        }
        for url in &self.urls {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
                return Err(invalid(
                    "elasticsearch.urls",
                    format!("{url:?} is not an http:// or https:// URL with a host"),
                ));
            }
        }
        IndexTemplate::parse(&self.index_template)
            .map_err(|e| invalid("elasticsearch.index_template", e.to_string()))?;
        self.auth.source()?;
        let tls = &self.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(invalid(
                "elasticsearch.tls",
                "cert_file and key_file go together",
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(invalid(
                "elasticsearch.request_timeout_ms",
                "must be positive",
            ));
        }
        Ok(())
    }
}

impl Auth {
    /// Where the secret comes from: `None` for [`Auth::None`].
    pub fn source(&self) -> Result<Option<SecretSource>, ConfigError> {
        match self {
            Auth::None => Ok(None),
            Auth::Basic(b) => {
                if b.username.is_empty() {
                    return Err(invalid(
                        "elasticsearch.auth.basic.username",
                        "must not be empty",
                    ));
                }
                one_source(
                    "elasticsearch.auth.basic",
                    "password_file",
                    &b.password_file,
                    "password_env",
                    &b.password_env,
                )
                .map(Some)
            }
            Auth::ApiKey(k) => one_source(
                "elasticsearch.auth.api_key",
                "key_file",
                &k.key_file,
                "key_env",
                &k.key_env,
            )
            .map(Some),
        }
    }
}

fn one_source(
    field: &'static str,
    file_name: &str,
    file: &Option<PathBuf>,
    env_name: &str,
    env: &Option<String>,
) -> Result<SecretSource, ConfigError> {
    match (file, env) {
        (Some(path), None) => Ok(SecretSource::File(path.clone())),
        (None, Some(var)) if !var.is_empty() => Ok(SecretSource::Env(var.clone())),
        (None, Some(_)) => Err(invalid(field, format!("{env_name} must not be empty"))),
        (None, None) => Err(invalid(field, format!("set {file_name} or {env_name}"))),
        (Some(_), Some(_)) => Err(invalid(
            field,
            format!("set {file_name} or {env_name}, not both"),
        )),
    }
}

impl BulkConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_bytes < 1024 {
            return Err(invalid("bulk.max_bytes", "must be at least 1024"));
        }
        if self.max_events == 0 {
            return Err(invalid("bulk.max_events", "must be at least 1"));
        }
        if self.max_in_flight == 0 {
            return Err(invalid("bulk.max_in_flight", "must be at least 1"));
        }
        if self.idle_linger_ms > self.linger_ms {
            return Err(invalid(
                "bulk.idle_linger_ms",
                "must not exceed bulk.linger_ms",
            ));
        }
        self.backoff()?;
        Ok(())
    }

    /// How long the open batch may wait, given the bulk slots' state.
    pub fn linger(&self, slots: Slots) -> std::time::Duration {
        let ms = if slots.in_flight < self.max_in_flight && slots.queued == 0 {
            self.idle_linger_ms
        } else {
            self.linger_ms
        };
        std::time::Duration::from_millis(ms)
    }

    /// The batch limits.
    pub fn limits(&self) -> BatchLimits {
        BatchLimits {
            max_bytes: self.max_bytes,
            max_events: self.max_events,
        }
    }

    /// The retry backoff.
    pub fn backoff(&self) -> Result<Backoff, ConfigError> {
        Backoff::from_millis(self.retry_base_ms, self.retry_cap_ms)
            .map_err(|e| invalid("bulk.retry_base_ms", e.to_string()))
    }
}

impl TemplateConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
            && !self.name.starts_with(['-', '_', '.']);
        if !valid_name {
            return Err(invalid(
                "template.name",
                "use a-z 0-9 - _ . and do not start with - _ .",
            ));
        }
        if self.shards == 0 {
            return Err(invalid("template.shards", "must be at least 1"));
        }
        if self.refresh_interval_ms == 0 {
            return Err(invalid("template.refresh_interval_ms", "must be positive"));
        }
        Ok(())
    }
}

/// Where a secret is read from at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file, e.g. a mounted Kubernetes Secret.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("loading secret failed: reading {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The variable is unset (or not valid UTF-8).
    #[error("loading secret failed: environment variable {0} is not set")]
    EnvUnset(String),
    /// The secret is empty after trimming.
    #[error("loading secret failed: {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Loads the secret through the given readers (the rim passes
    /// `std::fs::read_to_string` and `|k| std::env::var(k).ok()`).
    /// Trailing whitespace, such as a file's final newline, is removed.
    pub fn load(
        &self,
        read_file: impl FnOnce(&Path) -> std::io::Result<String>,
        get_env: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Secret, SecretError> {
        let (raw, what) = match self {
            SecretSource::File(path) => (
                read_file(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?,
                path.display().to_string(),
            ),
            SecretSource::Env(var) => (
                get_env(var).ok_or_else(|| SecretError::EnvUnset(var.clone()))?,
                format!("environment variable {var}"),
            ),
        };
        let mut value = raw;
        value.truncate(value.trim_end().len());
        if value.is_empty() {
            return Err(SecretError::Empty(what));
        }
        Ok(Secret(value))
    }
}

/// A password or key. Prints as `***` so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests;
