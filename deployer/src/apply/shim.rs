//! TEMPORARY SHIM, delete at merge. Stand-ins with the signatures of what
//! other branches build in parallel (`health::{zookeeper, kafka, search,
//! kibana, forward, template, wait, BasicAuth, HttpOptions}`, `preflight`,
//! `secrets`, `growth`), so the apply engine compiles and its integration
//! test runs before they land. Once `gates` and `secrets` are merged:
//!
//! ```sh
//! git rm deployer/src/apply/shim.rs
//! sed -i '/^pub(crate) mod shim;$/d; s/self::shim::secrets::/crate::secrets::/; s/self::shim::health::/crate::health::/; s/self::shim::{growth, preflight, secrets}/crate::{growth, preflight, secrets}/' deployer/src/apply.rs
//! sed -i 's/super::shim::health::GateStatus/crate::health::GateStatus/' deployer/src/apply/status.rs
//! ```
//!
//! (Tried on a scratch merge of `apply`, `gates` and `secrets` at their
//! 2026-11-27 23:55 heads: it builds, clippy is clean, and both
//! `deployer_apply` integration tests pass with the real gates, preflight,
//! secrets and template install.)
//!
//! The gates here are deliberately small but real (ZooKeeper `srvr`, Kafka
//! metadata, `_cluster/health`, `/api/status`); preflight, secrets, growth,
//! the port-forward and the index template are no-ops or refusals.

pub(crate) mod health {
    use std::time::Duration;

    pub(crate) use crate::health::{Gate, GateFuture, GateStatus};

    /// A password that never reaches a log line.
    #[derive(Clone)]
    pub(crate) struct Password(String);

    impl Password {
        pub(crate) fn expose(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Debug for Password {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("[redacted]")
        }
    }

    /// Basic credentials.
    #[derive(Debug, Clone)]
    pub(crate) struct BasicAuth {
        pub(crate) username: String,
        pub(crate) password: Password,
    }

    impl BasicAuth {
        pub(crate) fn new(username: impl Into<String>, password: impl Into<String>) -> BasicAuth {
            BasicAuth {
                username: username.into(),
                password: Password(password.into()),
            }
        }
    }

    /// How the HTTP gates reach HTTPS servers of the cluster.
    #[derive(Debug, Clone, Default)]
    #[allow(dead_code)]
    pub(crate) struct HttpOptions {
        pub(crate) ca_certificates_pem: Option<Vec<u8>>,
        pub(crate) resolve: Vec<(String, std::net::SocketAddr)>,
    }

    /// The cluster health colour a search gate waits for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum ClusterColor {
        Yellow,
        #[allow(dead_code)]
        Green,
    }

    /// The deadline passed.
    #[derive(Debug, thiserror::Error)]
    #[error("waiting for {gate} timed out after {waited_secs} s: {last}")]
    pub(crate) struct GateTimeout {
        pub(crate) gate: String,
        pub(crate) waited_secs: u64,
        pub(crate) last: String,
    }

    /// Polls `gate` until healthy or `deadline`.
    pub(crate) async fn wait(
        gate: &dyn Gate,
        deadline: Duration,
        poll: Duration,
        mut on_progress: impl FnMut(&GateStatus),
    ) -> Result<String, GateTimeout> {
        let started = tokio::time::Instant::now();
        loop {
            let status = gate.check().await;
            on_progress(&status);
            match status {
                GateStatus::Healthy(text) => return Ok(text),
                GateStatus::NotYet(reason) => {
                    if started.elapsed() + poll > deadline {
                        return Err(GateTimeout {
                            gate: gate.name().to_owned(),
                            waited_secs: started.elapsed().as_secs(),
                            last: reason,
                        });
                    }
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default()
    }

    pub(crate) mod zookeeper {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        use super::{Gate, GateFuture, GateStatus, TIMEOUT};

        pub(crate) struct ZooKeeperQuorum {
            servers: Vec<String>,
        }

        impl ZooKeeperQuorum {
            pub(crate) fn new(servers: Vec<String>) -> Self {
                ZooKeeperQuorum { servers }
            }
        }

        async fn srvr(server: &str) -> Result<String, String> {
            let talk = async {
                let mut stream = tokio::net::TcpStream::connect(server).await?;
                stream.write_all(b"srvr").await?;
                let mut out = String::new();
                stream.read_to_string(&mut out).await?;
                Ok::<_, std::io::Error>(out)
            };
            let text = tokio::time::timeout(TIMEOUT, talk)
                .await
                .map_err(|_| format!("{server} did not answer"))?
                .map_err(|e| format!("{server}: {e}"))?;
            text.lines()
                .find_map(|l| l.strip_prefix("Mode: "))
                .map(str::to_owned)
                .ok_or_else(|| format!("{server} answered without a mode"))
        }

        impl Gate for ZooKeeperQuorum {
            fn name(&self) -> &str {
                "zookeeper quorum"
            }
            fn check(&self) -> GateFuture<'_> {
                Box::pin(async move {
                    let mut modes = Vec::new();
                    for server in &self.servers {
                        match srvr(server).await {
                            Ok(mode) => modes.push(mode),
                            Err(reason) => return GateStatus::NotYet(reason),
                        }
                    }
                    let leaders = modes.iter().filter(|m| *m == "leader").count();
                    let ok = (modes.len() == 1 && modes[0] == "standalone")
                        || (leaders == 1 && modes.iter().all(|m| m == "leader" || m == "follower"));
                    let text = format!("modes: {}", modes.join(", "));
                    if ok {
                        GateStatus::Healthy(text)
                    } else {
                        GateStatus::NotYet(text)
                    }
                })
            }
        }
    }

    pub(crate) mod kafka {
        use rdkafka::consumer::{BaseConsumer, Consumer as _};

        use super::{Gate, GateFuture, GateStatus, TIMEOUT};

        pub(crate) struct KafkaCluster {
            bootstrap: String,
            expected_brokers: usize,
            topics: Vec<String>,
            min_isr: usize,
        }

        impl KafkaCluster {
            pub(crate) fn new(bootstrap: String, expected_brokers: usize) -> Self {
                KafkaCluster {
                    bootstrap,
                    expected_brokers,
                    topics: Vec::new(),
                    min_isr: 0,
                }
            }
            pub(crate) fn with_topics(mut self, topics: Vec<String>, min_isr: usize) -> Self {
                self.topics = topics;
                self.min_isr = min_isr;
                self
            }
        }

        fn check(cluster: &KafkaCluster) -> GateStatus {
            let consumer: BaseConsumer = match rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &cluster.bootstrap)
                .set("allow.auto.create.topics", "false")
                .create()
            {
                Ok(c) => c,
                Err(e) => return GateStatus::NotYet(format!("kafka client: {e}")),
            };
            let metadata = match consumer.fetch_metadata(None, TIMEOUT) {
                Ok(m) => m,
                Err(e) => return GateStatus::NotYet(format!("metadata: {e}")),
            };
            let brokers = metadata.brokers().len();
            if brokers < cluster.expected_brokers {
                return GateStatus::NotYet(format!(
                    "{brokers} of {} brokers registered",
                    cluster.expected_brokers
                ));
            }
            for name in &cluster.topics {
                let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
                    return GateStatus::NotYet(format!("topic {name} does not exist"));
                };
                if topic.partitions().is_empty()
                    || topic
                        .partitions()
                        .iter()
                        .any(|p| p.leader() < 0 || p.isr().len() < cluster.min_isr)
                {
                    return GateStatus::NotYet(format!("topic {name} is under-replicated"));
                }
            }
            GateStatus::Healthy(format!(
                "{brokers} brokers, {} topics",
                cluster.topics.len()
            ))
        }

        impl Gate for KafkaCluster {
            fn name(&self) -> &str {
                "kafka cluster"
            }
            fn check(&self) -> GateFuture<'_> {
                Box::pin(async move {
                    let cluster = KafkaCluster {
                        bootstrap: self.bootstrap.clone(),
                        expected_brokers: self.expected_brokers,
                        topics: self.topics.clone(),
                        min_isr: self.min_isr,
                    };
                    tokio::task::spawn_blocking(move || check(&cluster))
                        .await
                        .unwrap_or_else(|e| GateStatus::NotYet(format!("metadata task: {e}")))
                })
            }
        }
    }

    pub(crate) mod search {
        use super::{BasicAuth, ClusterColor, Gate, GateFuture, GateStatus};

        pub(crate) struct SearchHealth {
            url: String,
            auth: Option<BasicAuth>,
            want: ClusterColor,
        }

        impl SearchHealth {
            pub(crate) fn new(url: String, auth: Option<BasicAuth>, want: ClusterColor) -> Self {
                SearchHealth { url, auth, want }
            }
            pub(crate) fn with_http(self, _http: super::HttpOptions) -> Self {
                self
            }
        }

        impl Gate for SearchHealth {
            fn name(&self) -> &str {
                "elasticsearch health"
            }
            fn check(&self) -> GateFuture<'_> {
                Box::pin(async move {
                    let url = format!("{}/_cluster/health", self.url.trim_end_matches('/'));
                    let mut request = super::http().get(&url);
                    if let Some(auth) = &self.auth {
                        request = request.basic_auth(&auth.username, Some(auth.password.expose()));
                    }
                    let body: serde_json::Value = match request.send().await {
                        Ok(r) => match r.bytes().await {
                            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
                            Err(e) => return GateStatus::NotYet(format!("{url}: {e}")),
                        },
                        Err(e) => return GateStatus::NotYet(format!("{url}: {e}")),
                    };
                    let status = body["status"].as_str().unwrap_or("unknown").to_owned();
                    let ok = match self.want {
                        ClusterColor::Yellow => status == "yellow" || status == "green",
                        ClusterColor::Green => status == "green",
                    };
                    let text = format!("status {status}, {} nodes", body["number_of_nodes"]);
                    if ok {
                        GateStatus::Healthy(text)
                    } else {
                        GateStatus::NotYet(text)
                    }
                })
            }
        }
    }

    pub(crate) mod kibana {
        use super::{BasicAuth, Gate, GateFuture, GateStatus};

        pub(crate) struct KibanaAvailable {
            url: String,
            auth: Option<BasicAuth>,
        }

        impl KibanaAvailable {
            pub(crate) fn new(url: String, auth: Option<BasicAuth>) -> Self {
                KibanaAvailable { url, auth }
            }
        }

        impl Gate for KibanaAvailable {
            fn name(&self) -> &str {
                "kibana status"
            }
            fn check(&self) -> GateFuture<'_> {
                Box::pin(async move {
                    let url = format!("{}/api/status", self.url.trim_end_matches('/'));
                    let mut request = super::http().get(&url);
                    if let Some(auth) = &self.auth {
                        request = request.basic_auth(&auth.username, Some(auth.password.expose()));
                    }
                    let body: serde_json::Value = match request.send().await {
                        Ok(r) => r
                            .bytes()
                            .await
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or_default(),
                        Err(e) => return GateStatus::NotYet(format!("{url}: {e}")),
                    };
                    let overall = &body["status"]["overall"];
                    if overall["level"] == "available" || overall["state"] == "green" {
                        GateStatus::Healthy("available".to_owned())
                    } else {
                        GateStatus::NotYet(format!("status {overall}"))
                    }
                })
            }
        }
    }

    pub(crate) mod forward {
        use std::net::SocketAddr;

        /// A port-forward to a pod.
        pub(crate) struct Forward {
            local: SocketAddr,
        }

        impl Forward {
            pub(crate) fn local_addr(&self) -> SocketAddr {
                self.local
            }
        }

        #[derive(Debug, thiserror::Error)]
        #[error(
            "port-forwarding to pod {pod} failed: not in this build yet (use --health-endpoint)"
        )]
        pub(crate) struct ForwardError {
            pod: String,
        }

        pub(crate) async fn forward(
            _client: kube::Client,
            _namespace: &str,
            pod: &str,
            _port: u16,
        ) -> Result<Forward, ForwardError> {
            Err(ForwardError {
                pod: pod.to_owned(),
            })
        }
    }

    pub(crate) mod template {
        use super::BasicAuth;
        use crate::stack::Stack;

        #[derive(Debug, thiserror::Error)]
        #[error("installing the index template failed")]
        pub(crate) struct TemplateError;

        pub(crate) async fn install_index_template_with(
            _url: &str,
            _auth: Option<&BasicAuth>,
            _http: &super::HttpOptions,
            stack: &Stack,
        ) -> Result<String, TemplateError> {
            Ok(format!(
                "template {} left to the shipper (shim)",
                stack.shipper.template.name
            ))
        }
    }
}

pub(crate) mod preflight {
    use crate::stack::Stack;

    pub(crate) struct PreflightReport {
        pub(crate) checks: Vec<String>,
    }

    impl PreflightReport {
        pub(crate) fn passed(&self) -> bool {
            true
        }
    }

    impl std::fmt::Display for PreflightReport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} checks (shim)", self.checks.len())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("preflight failed")]
    pub(crate) struct PreflightError;

    pub(crate) async fn run(
        _client: &kube::Client,
        _stack: &Stack,
    ) -> Result<PreflightReport, PreflightError> {
        Ok(PreflightReport { checks: Vec::new() })
    }
}

pub(crate) mod secrets {
    use crate::stack::Stack;

    pub(crate) struct SecretsReport;

    impl std::fmt::Display for SecretsReport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("secrets: none generated (shim)")
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("ensuring secrets failed")]
    pub(crate) struct SecretsError;

    pub(crate) async fn ensure(
        _client: &kube::Client,
        _stack: &Stack,
    ) -> Result<SecretsReport, SecretsError> {
        Ok(SecretsReport)
    }

    pub(crate) struct ElasticsearchCredentials {
        pub(crate) ca_pem: Vec<u8>,
        pub(crate) elastic: super::health::Password,
    }

    pub(crate) async fn read_credentials(
        _client: &kube::Client,
        _stack: &Stack,
    ) -> Result<ElasticsearchCredentials, SecretsError> {
        Err(SecretsError)
    }

    pub(crate) async fn configure_elasticsearch_users(
        _url: &str,
        _credentials: &ElasticsearchCredentials,
        _stack: &Stack,
    ) -> Result<Vec<String>, SecretsError> {
        Err(SecretsError)
    }
}

pub(crate) mod growth {
    use k8s_openapi::api::apps::v1::StatefulSet;

    /// Which claim templates grew, and what kelp refuses.
    pub(crate) struct GrowthPlan {
        pub(crate) grow: Vec<String>,
        pub(crate) refused: Vec<String>,
    }

    impl GrowthPlan {
        pub(crate) fn is_needed(&self) -> bool {
            !self.grow.is_empty() && self.refused.is_empty()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("growing volumes failed: not in this build yet")]
    pub(crate) struct GrowthError;

    pub(crate) fn plan(_live: &StatefulSet, _desired: &StatefulSet) -> GrowthPlan {
        GrowthPlan {
            grow: Vec::new(),
            refused: Vec::new(),
        }
    }

    pub(crate) async fn execute(
        _client: &kube::Client,
        _namespace: &str,
        _plan: &GrowthPlan,
    ) -> Result<String, GrowthError> {
        Err(GrowthError)
    }
}
