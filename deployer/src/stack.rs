//! The stack file: one YAML document that describes everything `kelp`
//! installs. Every field is documented here, with its default and why;
//! `kelp init` prints [`init_template`], a commented copy of the defaults,
//! and docs/DEPLOYER.md has the same reference as a table.
//!
//! Unknown fields are rejected, so a typo fails when the file is read
//! instead of being ignored. [`Stack::from_yaml_str`] parses and validates;
//! the manifest builders ([`crate::manifests`]) assume a validated stack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kelp_collector::config::MultilineConfig;
use kelp_shipper::config::{BulkConfig, TemplateConfig};
use serde::{Deserialize, Serialize};

/// The commented stack file, with `@VERSION@` for this kelp's version.
const INIT_TEMPLATE: &str = include_str!("stack/init.yaml");

/// The commented stack file that `kelp init` prints. It parses into
/// [`Stack::default`] and shows every field (tests keep both so), with the
/// image tag pinned to this kelp's version.
pub fn init_template() -> String {
    INIT_TEMPLATE.replace("@VERSION@", env!("CARGO_PKG_VERSION"))
}

/// Registry of kelp's own images when the stack does not name another.
pub const DEFAULT_REGISTRY: &str = "ghcr.io/kelp-project";

/// ZooKeeper for Kafka's ZooKeeper mode: the release Kafka 3.9 is built and
/// tested with (as the testbed runs it).
pub const DEFAULT_ZOOKEEPER_VERSION: &str = "3.8.4";
/// Kafka in ZooKeeper mode: 3.9 is the last line that has it.
pub const DEFAULT_KAFKA_ZOOKEEPER_MODE_VERSION: &str = "3.9.2";
/// Kafka in KRaft mode.
pub const DEFAULT_KAFKA_KRAFT_VERSION: &str = "4.4.0";
/// Elasticsearch (and Kibana, which must match it).
pub const DEFAULT_ELASTICSEARCH_VERSION: &str = "8.19.21";

/// The canary pod of `kelp probe`: busybox's `echo`, in a few MiB.
pub const DEFAULT_PROBE_IMAGE: &str = "docker.io/library/busybox:1.37.0";

/// Largest Elasticsearch heap: below 32 GiB the JVM keeps compressed object
/// pointers; Elastic's guidance is "no more than about 31 GB".
pub const MAX_ELASTICSEARCH_HEAP_MIB: u32 = 31 * 1024;
/// Largest default Kafka heap: Kafka serves from the page cache, not the heap.
pub const MAX_KAFKA_HEAP_MIB: u32 = 6 * 1024;
/// Largest default ZooKeeper heap: its data is Kafka's metadata, small.
pub const MAX_ZOOKEEPER_HEAP_MIB: u32 = 2 * 1024;

/// The whole stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stack {
    /// Namespace of every namespaced object; `kelp render` creates it.
    /// Default `kelp`. It also names the stack (`app.kubernetes.io/instance`)
    /// and the cluster-wide objects (`kelp-collector-<namespace>`).
    pub namespace: String,
    /// Container images.
    pub images: Images,
    /// Where the volumes of ZooKeeper, Kafka and Elasticsearch come from.
    pub storage: Storage,
    /// The ZooKeeper ensemble (only in `kafka.mode: zookeeper`).
    pub zookeeper: ZooKeeper,
    /// The Kafka cluster and its topics.
    pub kafka: Kafka,
    /// The Elasticsearch cluster.
    pub elasticsearch: Elasticsearch,
    /// Kibana.
    pub kibana: Kibana,
    /// The kelp-collector DaemonSet.
    pub collector: Collector,
    /// The kelp-shipper Deployment.
    pub shipper: Shipper,
    /// Settings shared by every component.
    pub common: Common,
}

impl Default for Stack {
    fn default() -> Stack {
        Stack {
            namespace: "kelp".to_owned(),
            images: Images::default(),
            storage: Storage::default(),
            zookeeper: ZooKeeper::default(),
            kafka: Kafka::default(),
            elasticsearch: Elasticsearch::default(),
            kibana: Kibana::default(),
            collector: Collector::default(),
            shipper: Shipper::default(),
            common: Common::default(),
        }
    }
}

/// Container images. Third-party images are the projects' own official
/// ones (no Bitnami: its versioned tags moved away in 2025), pinned by the
/// component versions below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Images {
    /// Registry and path of kelp's own images. Default `ghcr.io/kelp-project`.
    pub registry: String,
    /// Tag of kelp's own images. Default: this `kelp`'s version, so the
    /// deployer and the binaries it deploys are from the same release.
    pub tag: String,
    /// kelp-collector image. Unset: `<registry>/kelp-collector:<tag>`.
    pub collector: Option<String>,
    /// kelp-shipper image. Unset: `<registry>/kelp-shipper:<tag>`.
    pub shipper: Option<String>,
    /// ZooKeeper image. Unset: `docker.io/library/zookeeper:<zookeeper.version>`.
    pub zookeeper: Option<String>,
    /// Kafka image; also runs the topic job. Unset:
    /// `docker.io/apache/kafka:<kafka version>`.
    pub kafka: Option<String>,
    /// Elasticsearch image; also runs the `vm.max_map_count` init container.
    /// Unset: `docker.elastic.co/elasticsearch/elasticsearch:<elasticsearch.version>`.
    pub elasticsearch: Option<String>,
    /// Kibana image. Unset: `docker.elastic.co/kibana/kibana:<kibana version>`.
    pub kibana: Option<String>,
    /// Image of `kelp probe`'s canary pod; it runs `echo`, so any image
    /// with one on its `PATH` does. Unset: [`DEFAULT_PROBE_IMAGE`], a small
    /// official image.
    pub probe: Option<String>,
    /// Names of existing `kubernetes.io/dockerconfigjson` Secrets in the
    /// namespace, for a private registry or mirror. Default none.
    pub pull_secrets: Vec<String>,
}

impl Default for Images {
    fn default() -> Images {
        Images {
            registry: DEFAULT_REGISTRY.to_owned(),
            tag: env!("CARGO_PKG_VERSION").to_owned(),
            collector: None,
            shipper: None,
            zookeeper: None,
            kafka: None,
            elasticsearch: None,
            kibana: None,
            probe: None,
            pull_secrets: Vec::new(),
        }
    }
}

impl Images {
    /// The image of `kelp probe`'s canary pod.
    pub fn probe(&self) -> &str {
        self.probe.as_deref().unwrap_or(DEFAULT_PROBE_IMAGE)
    }
}

/// Where volumes come from: an existing StorageClass, a ceph-csi RBD
/// StorageClass that kelp renders, or (neither set) the cluster's default
/// StorageClass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Name of an existing StorageClass for every volume. Set this or `rbd`,
    /// not both. Default unset.
    pub storage_class: Option<String>,
    /// A ceph-csi RBD StorageClass rendered by kelp. Default unset.
    pub rbd: Option<Rbd>,
}

/// A ceph-csi (`rbd.csi.ceph.com`) StorageClass. The ceph-csi driver must be
/// installed; kelp renders only the StorageClass, with `reclaimPolicy:
/// Retain` (deleting a claim never deletes the data) and
/// `allowVolumeExpansion: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rbd {
    /// The Ceph cluster's fsid (`ceph fsid`); ceph-csi's `ceph-csi-config`
    /// ConfigMap must have an entry with this `clusterID`.
    pub cluster_id: String,
    /// The RBD pool the images are created in.
    pub pool: String,
    /// The Ceph monitors, `host:6789`. ceph-csi reads them from its
    /// `ceph-csi-config` entry, not from the StorageClass: kelp records them
    /// in the `kelp.io/ceph-monitors` annotation for the preflight check.
    #[serde(default)]
    pub monitors: Vec<String>,
    /// Secret with `userID` and `userKey` of the Ceph client, used to
    /// provision, expand and stage volumes. Default `csi-rbd-secret`.
    #[serde(default = "default_rbd_secret_name")]
    pub secret_name: String,
    /// Namespace of `secret_name`. Default `ceph-csi`.
    #[serde(default = "default_rbd_secret_namespace")]
    pub secret_namespace: String,
    /// File system of ZooKeeper's and Elasticsearch's volumes. Default
    /// `ext4`, ceph-csi's default.
    #[serde(default = "default_fstype")]
    pub fstype: FsType,
    /// File system of Kafka's volumes. Default `xfs`, which Kafka's
    /// operations guide recommends for its log segments.
    #[serde(default = "default_kafka_fstype")]
    pub kafka_fstype: FsType,
    /// RBD image features. Default `layering`: newer features need a
    /// recent kernel RBD client, else mapping fails with "(6) No such
    /// device or address".
    #[serde(default = "default_image_features")]
    pub image_features: String,
}

fn default_rbd_secret_name() -> String {
    "csi-rbd-secret".to_owned()
}
fn default_rbd_secret_namespace() -> String {
    "ceph-csi".to_owned()
}
fn default_fstype() -> FsType {
    FsType::Ext4
}
fn default_kafka_fstype() -> FsType {
    FsType::Xfs
}
fn default_image_features() -> String {
    "layering".to_owned()
}

/// A file system for RBD volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    /// ext4.
    Ext4,
    /// XFS.
    Xfs,
}

impl FsType {
    /// The name as ceph-csi's `csi.storage.k8s.io/fstype` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
        }
    }
}

/// CPU and memory of one container. Memory request and limit are equal so
/// the scheduler reserves what the JVM is told it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU requested, in millicores (1000 = one core).
    pub cpu_request_millis: u32,
    /// CPU limit, in millicores. Unset (the default): no limit, because a
    /// CPU limit throttles JVM garbage collection into long pauses.
    #[serde(default)]
    pub cpu_limit_millis: Option<u32>,
    /// Memory request and limit, in MiB.
    pub memory_mib: u32,
}

impl Resources {
    fn new(cpu_request_millis: u32, memory_mib: u32) -> Resources {
        Resources {
            cpu_request_millis,
            cpu_limit_millis: None,
            memory_mib,
        }
    }
}

/// The ZooKeeper ensemble that Kafka's ZooKeeper mode needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZooKeeper {
    /// Servers in the ensemble; odd. Default 3: survives the loss of one.
    pub replicas: u32,
    /// ZooKeeper version; picks the default image. Default 3.8.4.
    pub version: String,
    /// Size of each server's volume, in GiB. Default 10.
    pub volume_size_gib: u32,
    /// CPU and memory per server. Default 250 millicores, 1024 MiB.
    pub resources: Resources,
    /// JVM heap, in MiB. Unset (the default): half of `resources.memory_mib`,
    /// at most 2048.
    pub heap_mib: Option<u32>,
}

impl Default for ZooKeeper {
    fn default() -> ZooKeeper {
        ZooKeeper {
            replicas: 3,
            version: DEFAULT_ZOOKEEPER_VERSION.to_owned(),
            volume_size_gib: 10,
            resources: Resources::new(250, 1024),
            heap_mib: None,
        }
    }
}

impl ZooKeeper {
    /// The JVM heap in MiB.
    pub fn heap_mib(&self) -> u32 {
        self.heap_mib
            .unwrap_or_else(|| half_capped(self.resources.memory_mib, MAX_ZOOKEEPER_HEAP_MIB))
    }
}

/// How Kafka keeps its metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaMode {
    /// ZooKeeper (Kafka 3.9.x, the last line that has it), with the
    /// ZooKeeper ensemble of `zookeeper`.
    #[default]
    Zookeeper,
    /// KRaft (Kafka 4.x): every broker is also a controller; no ZooKeeper.
    Kraft,
}

/// The Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kafka {
    /// `zookeeper` (the default) or `kraft`.
    pub mode: KafkaMode,
    /// Kafka version; picks the default image. Unset: 3.9.2 in ZooKeeper
    /// mode, 4.4.0 in KRaft mode.
    pub version: Option<String>,
    /// Brokers (in KRaft mode each is also a controller). Default 3.
    pub replicas: u32,
    /// Size of each broker's volume, in GiB. Default 100.
    pub volume_size_gib: u32,
    /// CPU and memory per broker. Default 1000 millicores, 4096 MiB.
    pub resources: Resources,
    /// JVM heap, in MiB. Unset (the default): half of
    /// `resources.memory_mib`, at most 6144; the rest is page cache.
    pub heap_mib: Option<u32>,
    /// `default.replication.factor` of the brokers and the replication of
    /// kelp's topics. Default 3.
    pub default_replication_factor: u32,
    /// `min.insync.replicas`. Default 2: with `acks=all` a write survives
    /// the loss of one broker, and one broker may be down for maintenance.
    pub min_insync_replicas: u32,
    /// The cluster id, 22 characters of base64url (a Kafka UUID). Unset (the
    /// default): derived from the namespace, so re-creating the stack gives
    /// the same id and kept volumes still match. Set it to adopt volumes
    /// formatted with another id.
    pub cluster_id: Option<String>,
    /// kelp's topics, created by a Job (`auto.create.topics.enable` is off).
    pub topics: Topics,
}

impl Default for Kafka {
    fn default() -> Kafka {
        Kafka {
            mode: KafkaMode::Zookeeper,
            version: None,
            replicas: 3,
            volume_size_gib: 100,
            resources: Resources::new(1000, 4096),
            heap_mib: None,
            default_replication_factor: 3,
            min_insync_replicas: 2,
            cluster_id: None,
            topics: Topics::default(),
        }
    }
}

impl Kafka {
    /// The Kafka version: the configured one or the mode's default.
    pub fn version(&self) -> &str {
        match (&self.version, self.mode) {
            (Some(version), _) => version,
            (None, KafkaMode::Zookeeper) => DEFAULT_KAFKA_ZOOKEEPER_MODE_VERSION,
            (None, KafkaMode::Kraft) => DEFAULT_KAFKA_KRAFT_VERSION,
        }
    }

    /// The JVM heap in MiB.
    pub fn heap_mib(&self) -> u32 {
        self.heap_mib
            .unwrap_or_else(|| half_capped(self.resources.memory_mib, MAX_KAFKA_HEAP_MIB))
    }

    /// Replication of the internal topics (`__consumer_offsets`,
    /// transactions): 3, or fewer on a smaller cluster, where 3 could never
    /// be placed and consumers would wait forever.
    pub fn internal_replication_factor(&self) -> u32 {
        self.replicas.clamp(1, 3)
    }
}

/// kelp's two topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    /// The events: the collector writes, the shipper reads. Default
    /// `kelp-logs`, 12 partitions (the shipper's parallelism), 72 hours.
    pub logs: Topic,
    /// Events the search engine rejected. Default `kelp-dead-letter`, 3
    /// partitions, 168 hours (a week to look at them).
    pub dead_letter: Topic,
}

impl Default for Topics {
    fn default() -> Topics {
        Topics {
            logs: Topic {
                name: "kelp-logs".to_owned(),
                partitions: 12,
                retention_hours: 72,
            },
            dead_letter: Topic {
                name: "kelp-dead-letter".to_owned(),
                partitions: 3,
                retention_hours: 168,
            },
        }
    }
}

/// One Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Partitions: at most this many shipper consumers share the work.
    pub partitions: u32,
    /// How long records are kept (`retention.ms`), in hours.
    pub retention_hours: u32,
}

/// The Elasticsearch cluster: every node is master-eligible and holds data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Elasticsearch {
    /// Version, 8.x or 7.17.x; picks the image and the security default.
    /// Default 8.19.21.
    pub version: String,
    /// Nodes. Default 3: a master quorum survives the loss of one.
    pub replicas: u32,
    /// Size of each node's volume, in GiB. Default 100.
    pub volume_size_gib: u32,
    /// CPU and memory per node. Default 1000 millicores, 4096 MiB.
    pub resources: Resources,
    /// JVM heap, in MiB. Unset (the default): half of
    /// `resources.memory_mib` (the rest is file system cache), at most 31744
    /// (31 GiB, below the compressed-pointer limit).
    pub heap_mib: Option<u32>,
    /// Authentication and TLS (transport and HTTP). Unset (the default): on
    /// for 8.x, off for 7.17, as each version ships. The certificates and
    /// passwords are Secrets the stack refers to (docs/DEPLOYER.md lists them).
    pub security: Option<bool>,
    /// Raise `vm.max_map_count` to 262144 on the node with a privileged init
    /// container (the only privileged container of the stack). Default true.
    /// Where privileged pods are not allowed, set false and either set the
    /// sysctl on the nodes or set `allow_mmap: false`.
    pub max_map_count_init: bool,
    /// Let Elasticsearch memory-map its index files (`node.store.allow_mmap`).
    /// Default true. False skips the `vm.max_map_count` bootstrap check, at
    /// some cost in search speed.
    pub allow_mmap: bool,
}

impl Default for Elasticsearch {
    fn default() -> Elasticsearch {
        Elasticsearch {
            version: DEFAULT_ELASTICSEARCH_VERSION.to_owned(),
            replicas: 3,
            volume_size_gib: 100,
            resources: Resources::new(1000, 4096),
            heap_mib: None,
            security: None,
            max_map_count_init: true,
            allow_mmap: true,
        }
    }
}

impl Elasticsearch {
    /// The JVM heap in MiB.
    pub fn heap_mib(&self) -> u32 {
        self.heap_mib
            .unwrap_or_else(|| half_capped(self.resources.memory_mib, MAX_ELASTICSEARCH_HEAP_MIB))
    }

    /// The major version (8 if the version does not parse, which validation
    /// refuses).
    pub fn major(&self) -> u32 {
        version_parts(&self.version).map_or(8, |(major, _)| major)
    }

    /// Whether authentication and TLS are on.
    pub fn security_enabled(&self) -> bool {
        self.security.unwrap_or(self.major() >= 8)
    }
}

/// Kibana.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kibana {
    /// Instances. Default 1: more only share load, and an upgrade migrates
    /// saved objects once whatever the count (the Deployment recreates, so
    /// two versions never run together).
    pub replicas: u32,
    /// Kibana version. Unset (the default): `elasticsearch.version`, which
    /// it must match.
    pub version: Option<String>,
    /// CPU and memory per instance. Default 500 millicores, 1024 MiB.
    pub resources: Resources,
}

impl Default for Kibana {
    fn default() -> Kibana {
        Kibana {
            replicas: 1,
            version: None,
            resources: Resources::new(500, 1024),
        }
    }
}

/// The kelp-collector DaemonSet. The rest of the collector's config comes
/// from the other sections (brokers, topic) or keeps the collector's
/// defaults (collector/config.example.yaml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Collector {
    /// Files to tail (the collector's `tail.include`), under `/var/log/pods/`
    /// or `/var/log/containers/` (the directories mounted). Default
    /// `/var/log/pods/*/*/*.log*`: the live and the kubelet's rotated files.
    pub include: Vec<String>,
    /// Multiline joining, the collector's `parse.multiline` section: `rule`
    /// (`none`, `java` (default), `go`, `python`, `custom` with `start` and
    /// `continue_pattern`), `flush_timeout_ms`, `max_lines`.
    pub multiline: MultilineConfig,
    /// Tolerations of the collector's pods. Default: tolerate every taint,
    /// so every node's logs are collected.
    pub tolerations: Vec<Toleration>,
    /// PriorityClass of the collector's pods. Default
    /// `system-node-critical`: a node under pressure evicts others first.
    pub priority_class: Option<String>,
    /// Directory on each node for the collector's checkpoints. Default
    /// `/var/lib/kelp-collector`: it survives pod restarts and upgrades.
    pub state_dir: String,
    /// CPU and memory per node. Default 100 millicores, 256 MiB.
    pub resources: Resources,
}

impl Default for Collector {
    fn default() -> Collector {
        Collector {
            include: vec!["/var/log/pods/*/*/*.log*".to_owned()],
            multiline: MultilineConfig::default(),
            tolerations: vec![Toleration {
                key: None,
                operator: TolerationOperator::Exists,
                value: None,
                effect: None,
            }],
            priority_class: Some("system-node-critical".to_owned()),
            state_dir: "/var/lib/kelp-collector".to_owned(),
            resources: Resources::new(100, 256),
        }
    }
}

/// A pod toleration (Kubernetes' `Toleration`, in this file's spelling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// Taint key; unset with `operator: exists` matches every taint.
    #[serde(default)]
    pub key: Option<String>,
    /// `exists` or `equal`.
    pub operator: TolerationOperator,
    /// Taint value, for `operator: equal`.
    #[serde(default)]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; unset: every effect.
    #[serde(default)]
    pub effect: Option<String>,
}

/// How a toleration matches a taint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TolerationOperator {
    /// The key exists (any value).
    Exists,
    /// The key has `value`.
    Equal,
}

/// The kelp-shipper Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shipper {
    /// Consumers in the group. Default 2, so indexing goes on while one
    /// restarts; more than `kafka.topics.logs.partitions` would idle.
    pub replicas: u32,
    /// Index name per event (the shipper's `elasticsearch.index_template`).
    /// Default `kelp-logs-{kubernetes.namespace}-{@timestamp:%Y.%m.%d}`.
    pub index_template: String,
    /// Batching and retries, the shipper's `bulk` section (every field of
    /// shipper/config.example.yaml's `bulk`).
    pub bulk: BulkConfig,
    /// The index template and retention policy the shipper installs, its
    /// `template` section.
    pub template: TemplateConfig,
    /// CPU and memory per consumer. Default 500 millicores, 512 MiB.
    pub resources: Resources,
}

impl Default for Shipper {
    fn default() -> Shipper {
        Shipper {
            replicas: 2,
            index_template: kelp_shipper::index_name::DEFAULT_TEMPLATE.to_owned(),
            bulk: BulkConfig::default(),
            template: TemplateConfig::default(),
            resources: Resources::new(500, 512),
        }
    }
}

/// Settings shared by every component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Common {
    /// Labels added to every object and pod, e.g. `team: platform`.
    /// `app.kubernetes.io/*` labels are kelp's and refused here.
    pub labels: BTreeMap<String, String>,
    /// Spreading of ZooKeeper, Kafka and Elasticsearch pods over nodes:
    /// `required` (the default: never two on one node, so a node loss costs
    /// one member) or `preferred` (for clusters with fewer nodes than
    /// replicas). Kibana and shipper pods are always spread `preferred`.
    pub anti_affinity: AntiAffinity,
    /// The cluster's DNS domain, for the pods' FQDNs. Default `cluster.local`.
    pub cluster_domain: String,
}

impl Default for Common {
    fn default() -> Common {
        Common {
            labels: BTreeMap::new(),
            anti_affinity: AntiAffinity::Required,
            cluster_domain: "cluster.local".to_owned(),
        }
    }
}

/// Pod anti-affinity strength.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AntiAffinity {
    /// Never two pods of one component on a node.
    #[default]
    Required,
    /// Spread if the scheduler can.
    Preferred,
}

/// Why a stack file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The file could not be read.
    #[error("reading stack file {path} failed: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// YAML syntax or schema error (unknown fields included).
    #[error("parsing stack file failed: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    /// A value is out of range or inconsistent with another.
    #[error("validating stack file failed: {field}: {reason}")]
    Invalid {
        /// The field, as a dotted path.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StackError {
    StackError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Stack {
    /// Reads and validates a stack file.
    ///
    /// # Errors
    /// When the file cannot be read, parsed or validated.
    pub fn load(path: &Path) -> Result<Stack, StackError> {
        let text = std::fs::read_to_string(path).map_err(|source| StackError::Read {
            path: path.to_owned(),
            source,
        })?;
        Stack::from_yaml_str(&text)
    }

    /// Parses and validates YAML. An empty document is the defaults.
    ///
    /// # Errors
    /// When the text is not a valid stack.
    pub fn from_yaml_str(text: &str) -> Result<Stack, StackError> {
        let stack: Option<Stack> = serde_saphyr::from_str(text)?;
        let stack = stack.unwrap_or_default();
        stack.validate()?;
        Ok(stack)
    }

    /// Checks what would render manifests the cluster or the programs refuse.
    ///
    /// # Errors
    /// Names the field and what is wrong with it.
    pub fn validate(&self) -> Result<(), StackError> {
        if !is_dns_label(&self.namespace) {
            return Err(invalid(
                "namespace",
                "must be a DNS label: a-z, 0-9 and -, at most 63 characters",
            ));
        }
        self.validate_images()?;
        self.validate_storage()?;
        self.validate_zookeeper()?;
        self.validate_kafka()?;
        self.validate_elasticsearch()?;
        self.validate_workloads()?;
        for key in self.common.labels.keys() {
            if key.starts_with("app.kubernetes.io/") {
                return Err(invalid("common.labels", format!("{key} is set by kelp")));
            }
        }
        if self.common.cluster_domain.is_empty() {
            return Err(invalid("common.cluster_domain", "must not be empty"));
        }
        Ok(())
    }

    fn validate_images(&self) -> Result<(), StackError> {
        let images = &self.images;
        if images.registry.is_empty() || images.registry.ends_with('/') {
            return Err(invalid(
                "images.registry",
                "must be a registry path without a trailing /",
            ));
        }
        if images.tag.is_empty() {
            return Err(invalid("images.tag", "must not be empty"));
        }
        let overrides = [
            &images.collector,
            &images.shipper,
            &images.zookeeper,
            &images.kafka,
            &images.elasticsearch,
            &images.kibana,
            &images.probe,
        ];
        if overrides.iter().any(|image| {
            image
                .as_deref()
                .is_some_and(|i| i.is_empty() || i.contains(char::is_whitespace))
        }) {
            return Err(invalid(
                "images",
                "an image must be non-empty, without spaces",
            ));
        }
        Ok(())
    }

    fn validate_storage(&self) -> Result<(), StackError> {
        match (&self.storage.storage_class, &self.storage.rbd) {
            (Some(_), Some(_)) => {
                return Err(invalid("storage", "set storage_class or rbd, not both"));
            }
            (Some(class), None) if !is_dns_subdomain(class) => {
                return Err(invalid(
                    "storage.storage_class",
                    "must be a StorageClass name",
                ));
            }
            _ => {}
        }
        if let Some(rbd) = &self.storage.rbd {
            if rbd.cluster_id.is_empty() || rbd.cluster_id.len() > 36 {
                return Err(invalid(
                    "storage.rbd.cluster_id",
                    "must be the Ceph fsid (at most 36 characters)",
                ));
            }
            if rbd.pool.is_empty() {
                return Err(invalid("storage.rbd.pool", "must not be empty"));
            }
            if !is_dns_subdomain(&rbd.secret_name) || !is_dns_label(&rbd.secret_namespace) {
                return Err(invalid(
                    "storage.rbd.secret_name",
                    "secret_name and secret_namespace must be Kubernetes names",
                ));
            }
            if rbd.image_features.is_empty() {
                return Err(invalid("storage.rbd.image_features", "must not be empty"));
            }
        }
        Ok(())
    }

    fn validate_zookeeper(&self) -> Result<(), StackError> {
        let zk = &self.zookeeper;
        if zk.replicas == 0 || zk.replicas.is_multiple_of(2) {
            return Err(invalid(
                "zookeeper.replicas",
                "must be odd: an even ensemble survives no more losses than one server fewer",
            ));
        }
        if version_parts(&zk.version).is_none() {
            return Err(invalid("zookeeper.version", "must be a version like 3.8.4"));
        }
        positive("zookeeper.volume_size_gib", zk.volume_size_gib)?;
        resources("zookeeper.resources", &zk.resources)?;
        heap("zookeeper.heap_mib", zk.heap_mib(), &zk.resources)
    }

    fn validate_kafka(&self) -> Result<(), StackError> {
        let kafka = &self.kafka;
        let Some((major, minor)) = version_parts(kafka.version()) else {
            return Err(invalid("kafka.version", "must be a version like 3.9.2"));
        };
        match kafka.mode {
            KafkaMode::Zookeeper if major != 3 => {
                return Err(invalid(
                    "kafka.version",
                    "ZooKeeper mode needs Kafka 3.x (4.0 removed ZooKeeper); use mode: kraft",
                ));
            }
            KafkaMode::Kraft if major < 3 || (major == 3 && minor < 7) => {
                return Err(invalid(
                    "kafka.version",
                    "KRaft mode needs Kafka 3.7 or later",
                ));
            }
            _ => {}
        }
        positive("kafka.replicas", kafka.replicas)?;
        positive("kafka.volume_size_gib", kafka.volume_size_gib)?;
        resources("kafka.resources", &kafka.resources)?;
        heap("kafka.heap_mib", kafka.heap_mib(), &kafka.resources)?;
        if kafka.default_replication_factor == 0
            || kafka.default_replication_factor > kafka.replicas
        {
            return Err(invalid(
                "kafka.default_replication_factor",
                format!("must be between 1 and kafka.replicas ({})", kafka.replicas),
            ));
        }
        if kafka.min_insync_replicas == 0
            || kafka.min_insync_replicas > kafka.default_replication_factor
        {
            return Err(invalid(
                "kafka.min_insync_replicas",
                "must be between 1 and kafka.default_replication_factor",
            ));
        }
        if let Some(id) = &kafka.cluster_id
            && !is_kafka_uuid(id)
        {
            return Err(invalid(
                "kafka.cluster_id",
                "must be a Kafka cluster id: 22 characters of base64url (kafka-storage.sh random-uuid)",
            ));
        }
        let topics = &kafka.topics;
        for (field, topic) in [
            ("kafka.topics.logs", &topics.logs),
            ("kafka.topics.dead_letter", &topics.dead_letter),
        ] {
            if !is_topic_name(&topic.name) {
                return Err(invalid(field, "name must be 1 to 249 of a-z A-Z 0-9 . _ -"));
            }
            if topic.partitions == 0 || topic.retention_hours == 0 {
                return Err(invalid(
                    field,
                    "partitions and retention_hours must be positive",
                ));
            }
        }
        if topics.logs.name == topics.dead_letter.name {
            return Err(invalid(
                "kafka.topics.dead_letter",
                "must not be the log topic",
            ));
        }
        Ok(())
    }

    fn validate_elasticsearch(&self) -> Result<(), StackError> {
        let es = &self.elasticsearch;
        match version_parts(&es.version) {
            Some((8, _)) | Some((7, 17)) => {}
            _ => {
                return Err(invalid(
                    "elasticsearch.version",
                    "must be 8.x or 7.17.x, e.g. 8.19.21",
                ));
            }
        }
        positive("elasticsearch.replicas", es.replicas)?;
        positive("elasticsearch.volume_size_gib", es.volume_size_gib)?;
        resources("elasticsearch.resources", &es.resources)?;
        heap("elasticsearch.heap_mib", es.heap_mib(), &es.resources)?;
        if es.heap_mib() > MAX_ELASTICSEARCH_HEAP_MIB {
            return Err(invalid(
                "elasticsearch.heap_mib",
                format!(
                    "must be at most {MAX_ELASTICSEARCH_HEAP_MIB} (31 GiB) to keep compressed pointers"
                ),
            ));
        }
        if let Some(version) = &self.kibana.version
            && version_parts(version).map(|(major, _)| major)
                != version_parts(&es.version).map(|(major, _)| major)
        {
            return Err(invalid(
                "kibana.version",
                "must have elasticsearch.version's major version",
            ));
        }
        Ok(())
    }

    fn validate_workloads(&self) -> Result<(), StackError> {
        positive("kibana.replicas", self.kibana.replicas)?;
        resources("kibana.resources", &self.kibana.resources)?;
        let collector = &self.collector;
        if collector.include.is_empty() {
            return Err(invalid("collector.include", "must name at least one glob"));
        }
        if !collector.include.iter().all(|glob| {
            glob.starts_with("/var/log/pods/") || glob.starts_with("/var/log/containers/")
        }) {
            return Err(invalid(
                "collector.include",
                "globs must be under /var/log/pods/ or /var/log/containers/, the directories mounted",
            ));
        }
        collector
            .multiline
            .compile(kelp_collector::parse::DEFAULT_MAX_EVENT_BYTES)
            .map_err(|error| invalid("collector.multiline", error.to_string()))?;
        if !collector.state_dir.starts_with('/') || collector.state_dir.len() < 2 {
            return Err(invalid(
                "collector.state_dir",
                "must be an absolute directory other than /",
            ));
        }
        for toleration in &collector.tolerations {
            let consistent = match toleration.operator {
                TolerationOperator::Exists => toleration.value.is_none(),
                TolerationOperator::Equal => toleration.key.is_some(),
            };
            if !consistent {
                return Err(invalid(
                    "collector.tolerations",
                    "exists takes no value; equal needs a key",
                ));
            }
        }
        resources("collector.resources", &collector.resources)?;
        positive("shipper.replicas", self.shipper.replicas)?;
        resources("shipper.resources", &self.shipper.resources)?;
        kelp_shipper::index_name::IndexTemplate::parse(&self.shipper.index_template)
            .map_err(|error| invalid("shipper.index_template", error.to_string()))?;
        Ok(())
    }
}

fn positive(field: &'static str, value: u32) -> Result<(), StackError> {
    if value == 0 {
        return Err(invalid(field, "must be at least 1"));
    }
    Ok(())
}

fn resources(field: &'static str, resources: &Resources) -> Result<(), StackError> {
    if resources.cpu_request_millis == 0 || resources.memory_mib < 64 {
        return Err(invalid(
            field,
            "cpu_request_millis must be positive and memory_mib at least 64",
        ));
    }
    if resources
        .cpu_limit_millis
        .is_some_and(|limit| limit < resources.cpu_request_millis)
    {
        return Err(invalid(
            field,
            "cpu_limit_millis must not be below cpu_request_millis",
        ));
    }
    Ok(())
}

fn heap(field: &'static str, heap_mib: u32, resources: &Resources) -> Result<(), StackError> {
    // The JVM needs room beside the heap (metaspace, threads, direct buffers).
    if heap_mib < 64 || heap_mib > resources.memory_mib.saturating_sub(128) {
        return Err(invalid(
            field,
            format!(
                "must be at least 64 and leave 128 MiB of the {} MiB memory limit",
                resources.memory_mib
            ),
        ));
    }
    Ok(())
}

/// Half of `memory_mib`, at most `cap`.
fn half_capped(memory_mib: u32, cap: u32) -> u32 {
    (memory_mib / 2).min(cap)
}

/// `(major, minor)` of a version like `8.19.21`.
pub fn version_parts(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch_ok = parts.next().is_none_or(|patch| {
        !patch.is_empty() && patch.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    (patch_ok && parts.next().is_none()).then_some((major, minor))
}

/// A DNS-1123 label: what namespaces and most names must be.
pub(crate) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A Kafka topic name.
fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A Kafka UUID as text: 16 bytes in unpadded base64url.
fn is_kafka_uuid(id: &str) -> bool {
    // Kafka never generates ids starting with `-`: command lines would
    // read them as options.
    id.len() == 22
        && !id.starts_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        // The last character carries 2 bits: only these fit.
        && id.ends_with(|c: char| "AQgw".contains(c))
}

#[cfg(test)]
mod tests;
