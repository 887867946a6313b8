//! `kelp probe`: a canary pod's line, searched for until it is indexed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kelp_deployer::probe::kafka::KafkaTarget;
use kelp_deployer::probe::search::{self, SearchAuth, SearchClient, SearchTarget};
use kelp_deployer::probe::verdict::{Facts, Lookup};
use kelp_deployer::probe::{self as probe, Outcome, ProbeOptions, Report};
use kelp_deployer::stack::Stack;
use reqwest::Url;

/// The shipper's consumer group as `kelp render` configures it.
pub(crate) const SHIPPER_GROUP: &str = "kelp-shipper";

/// Arguments of `kelp probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// The stack file: namespace, topics, index template, probe image;
    /// without it, the defaults.
    #[arg(long, value_name = "FILE", env = "KELP_STACK")]
    stack: Option<PathBuf>,
    /// Namespace of the probe pod. Default: the stack's namespace.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// The search engine's URL, e.g.
    /// https://elasticsearch-http.kelp.svc.cluster.local:9200 (through a
    /// port-forward from outside the cluster; docs/PROBE.md shows how).
    #[arg(long, value_name = "URL")]
    search_url: Url,
    /// User for basic authentication; the password comes from
    /// --search-password-file or $KELP_SEARCH_PASSWORD.
    #[arg(long, value_name = "USER", conflicts_with = "search_api_key_file")]
    search_username: Option<String>,
    /// File holding the password of --search-username.
    #[arg(long, value_name = "FILE", requires = "search_username")]
    search_password_file: Option<PathBuf>,
    /// File holding an API key's `encoded` value, sent as `Authorization:
    /// ApiKey <encoded>`; $KELP_SEARCH_API_KEY works too.
    #[arg(long, value_name = "FILE")]
    search_api_key_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the search engine.
    #[arg(long, value_name = "FILE")]
    search_ca_file: Option<PathBuf>,
    /// Index pattern to search. Default: from the stack's
    /// shipper.index_template, e.g. kelp-logs-*.
    #[arg(long, value_name = "PATTERN")]
    index_pattern: Option<String>,
    /// Kafka's bootstrap address, reachable from here; used only to find
    /// where a token that was not indexed stopped. Without it the verdict
    /// cannot look into Kafka.
    #[arg(long, value_name = "ADDR")]
    kafka_bootstrap: Option<String>,
    /// The shipper's consumer group, for its lag on the token's partition.
    #[arg(long, value_name = "GROUP", default_value = SHIPPER_GROUP)]
    shipper_group: String,
    /// Seconds to wait for the token to be searchable.
    #[arg(long, value_name = "N", default_value_t = 120)]
    timeout_secs: u64,
    /// Seconds each Kafka topic scan may take when diagnosing.
    #[arg(long, value_name = "N", default_value_t = 60)]
    scan_timeout_secs: u64,
    /// Run the probe pod on this node (bypassing the scheduler and
    /// tolerating its taints), to check that node's collector.
    #[arg(long, value_name = "NODE")]
    node: Option<String>,
    /// Leave the probe pod in place at the end, to inspect it.
    #[arg(long)]
    keep_pod: bool,
}

/// Runs the probe and prints the report; an error unless the token was found.
pub(crate) async fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let stack = match &args.stack {
        Some(path) => Stack::load(path)?,
        None => {
            tracing::info!("no --stack given: using the defaults");
            Stack::default()
        }
    };
    let index_pattern = match &args.index_pattern {
        Some(pattern) => pattern.clone(),
        None => search::index_pattern(&stack.shipper.index_template).with_context(|| {
            format!(
                "choosing the index pattern failed: shipper.index_template {:?} starts with a \
                 placeholder; give --index-pattern",
                stack.shipper.index_template
            )
        })?,
    };
    let target = SearchTarget {
        url: args.search_url.clone(),
        index_pattern,
        auth: auth(args, |name| std::env::var(name).ok())?,
        ca_certificates_pem: match &args.search_ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading the ca file {} failed", path.display()))?,
            ),
            None => None,
        },
    };
    let search = SearchClient::new(target, probe::SEARCH_REQUEST_TIMEOUT)?;
    let options = options(args, &stack);
    let client = kube::Client::try_default()
        .await
        .map_err(probe::ProbeError::Kube)?;
    let report = probe::run(client, &search, &options).await?;
    super::write_stdout(&render(&report))?;
    match report.outcome {
        Outcome::Found { .. } => Ok(()),
        Outcome::NotFound { verdict, .. } => {
            anyhow::bail!(
                "probing failed: the token was not searchable ({})",
                verdict.code()
            )
        }
    }
}

/// The run's options from the stack and the arguments.
fn options(args: &ProbeArgs, stack: &Stack) -> ProbeOptions {
    ProbeOptions {
        namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| stack.namespace.clone()),
        image: stack.images.probe().to_owned(),
        node: args.node.clone(),
        labels: stack.common.labels.clone(),
        pull_secrets: stack.images.pull_secrets.clone(),
        timeout: Duration::from_secs(args.timeout_secs),
        scan_timeout: Duration::from_secs(args.scan_timeout_secs),
        log_topic: stack.kafka.topics.logs.name.clone(),
        dead_letter_topic: stack.kafka.topics.dead_letter.name.clone(),
        shipper_group: args.shipper_group.clone(),
        kafka: args.kafka_bootstrap.as_ref().map(|bootstrap| KafkaTarget {
            bootstrap: bootstrap.clone(),
        }),
        keep_pod: args.keep_pod,
    }
}

/// The credentials: files first, then the environment (`env` reads it).
fn auth(args: &ProbeArgs, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<SearchAuth> {
    let from_env = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(username) = &args.search_username {
        let password = match &args.search_password_file {
            Some(path) => read_secret(path, "password")?,
            None => from_env("KELP_SEARCH_PASSWORD").context(
                "reading the search password failed: give --search-password-file or set KELP_SEARCH_PASSWORD",
            )?,
        };
        return Ok(SearchAuth::Basic {
            username: username.clone(),
            password,
        });
    }
    if let Some(path) = &args.search_api_key_file {
        return Ok(SearchAuth::ApiKey {
            encoded: read_secret(path, "api key")?,
        });
    }
    Ok(match from_env("KELP_SEARCH_API_KEY") {
        Some(encoded) => SearchAuth::ApiKey { encoded },
        None => SearchAuth::None,
    })
}

/// A secret from a file, without the trailing newline.
fn read_secret(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {} failed", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !secret.is_empty(),
        "reading the {what} file {} failed: it is empty",
        path.display()
    );
    Ok(secret.to_owned())
}

/// The report for stdout. The first line is `verdict: <code>` for scripts.
fn render(report: &Report) -> String {
    let mut out = String::new();
    let pod = format!("{}/{}", report.namespace, report.token);
    match &report.outcome {
        Outcome::Found {
            hit,
            latency,
            since_written,
            searches,
        } => {
            let _ = writeln!(out, "verdict: found");
            let _ = match latency {
                Some(latency) => writeln!(
                    out,
                    "searchable {:.1} s after the probe container started ({searches} searches)",
                    latency.as_secs_f64()
                ),
                None => writeln!(out, "searchable ({searches} searches)"),
            };
            if let Some(since) = since_written {
                let _ = writeln!(
                    out,
                    "searchable {:.1} s after the line's @timestamp (the node's clock)",
                    since.as_secs_f64()
                );
            }
            let _ = writeln!(out, "token: {}", report.token);
            let _ = writeln!(out, "pod: {pod}");
            let _ = writeln!(out, "index: {}", hit.index);
            let _ = writeln!(out, "_id: {}", hit.id);
            let missing = "(absent)";
            let _ = writeln!(
                out,
                "kubernetes.pod.name: {}",
                hit.pod_name.as_deref().unwrap_or(missing)
            );
            let _ = writeln!(
                out,
                "@timestamp: {}",
                hit.timestamp.as_deref().unwrap_or(missing)
            );
            let _ = writeln!(
                out,
                "event.ingested: {}",
                hit.ingested.as_deref().unwrap_or(missing)
            );
        }
        Outcome::NotFound { facts, verdict } => {
            let _ = writeln!(out, "verdict: {}", verdict.code());
            let _ = writeln!(out, "{verdict}");
            let _ = writeln!(out, "token: {}", report.token);
            let _ = writeln!(out, "pod: {pod}");
            facts_lines(&mut out, facts);
        }
    }
    if !report.pod_deleted {
        let _ = writeln!(out, "the probe pod {pod} was left in place");
    }
    out
}

/// The facts behind a verdict, one per line.
fn facts_lines(out: &mut String, facts: &Facts) {
    match &facts.pod {
        Lookup::Done(Some(pod)) => {
            let _ = writeln!(
                out,
                "pod status: phase {}, node {}, container {}",
                pod.phase.as_deref().unwrap_or("unknown"),
                pod.node.as_deref().unwrap_or("none"),
                pod.container
            );
            for event in &pod.events {
                let _ = writeln!(out, "pod event: {event}");
            }
        }
        Lookup::Done(None) => {
            let _ = writeln!(out, "pod status: gone (deleted by someone else?)");
        }
        Lookup::Failed(error) | Lookup::Skipped(error) => {
            let _ = writeln!(out, "pod status: {error}");
        }
    }
    let _ = writeln!(
        out,
        "search: {} answers without the token{}",
        facts.search.answered,
        facts
            .search
            .last_error
            .as_ref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use kelp_deployer::probe::pod::Token;
    use kelp_deployer::probe::search::Hit;
    use kelp_deployer::probe::verdict::{
        ContainerState, PodFacts, Position, SearchFacts, TopicScan, Verdict,
    };

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ProbeArgs,
    }

    fn parse(args: &[&str]) -> Result<ProbeArgs, clap::Error> {
        Wrapper::try_parse_from(["probe"].iter().chain(args)).map(|w| w.args)
    }

    #[test]
    fn arguments_and_stack_become_options() {
        let stack = Stack::from_yaml_str(
            "namespace: logging\n\
             images: {probe: registry.example/busybox:1}\n\
             kafka: {topics: {logs: {name: l, partitions: 3, retention_hours: 1}, \
             dead_letter: {name: d, partitions: 1, retention_hours: 1}}}\n",
        )
        .unwrap();
        let args = parse(&[
            "--search-url",
            "http://localhost:9200",
            "--kafka-bootstrap",
            "localhost:9092",
            "--node",
            "node-2",
            "--timeout-secs",
            "30",
        ])
        .unwrap();
        let options = options(&args, &stack);
        assert_eq!(options.namespace, "logging");
        assert_eq!(options.image, "registry.example/busybox:1");
        assert_eq!(options.log_topic, "l");
        assert_eq!(options.dead_letter_topic, "d");
        assert_eq!(options.shipper_group, SHIPPER_GROUP);
        assert_eq!(options.node.as_deref(), Some("node-2"));
        assert_eq!(options.timeout, Duration::from_secs(30));
        assert_eq!(options.kafka.unwrap().bootstrap, "localhost:9092");
        assert!(!options.keep_pod);

        let args = parse(&[
            "--search-url",
            "http://localhost:9200",
            "--namespace",
            "other",
            "--keep-pod",
        ])
        .unwrap();
        let options = super::options(&args, &Stack::default());
        assert_eq!(options.namespace, "other");
        assert_eq!(options.image, kelp_deployer::stack::DEFAULT_PROBE_IMAGE);
        assert_eq!(options.kafka, None);
        assert!(options.keep_pod);

        for bad in [
            &[][..],
            &["--search-url", "not a url"],
            &["--search-url", "http://x", "--search-password-file", "/p"],
            &[
                "--search-url",
                "http://x",
                "--search-username",
                "u",
                "--search-api-key-file",
                "/k",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_group_is_the_one_the_rendered_shipper_uses() {
        let objects = kelp_deployer::manifests::build(&Stack::default());
        let yaml = kelp_deployer::manifests::to_yaml(&objects).unwrap();
        assert!(
            yaml.contains(&format!("group_id: {SHIPPER_GROUP}")),
            "the rendered shipper config has another group id"
        );
    }

    #[test]
    fn credentials_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "s3cret\n").unwrap();
        let password = password.to_str().unwrap();
        let url = ["--search-url", "https://es:9200"];
        let env = |name: &str| match name {
            "KELP_SEARCH_PASSWORD" => Some("from-env".to_owned()),
            "KELP_SEARCH_API_KEY" => Some("a2V5".to_owned()),
            _ => None,
        };
        let no_env = |_: &str| None;
        let with = |extra: &[&str]| {
            let argv: Vec<&str> = url.iter().chain(extra).copied().collect();
            parse(&argv).unwrap()
        };
        let basic = |password: &str| SearchAuth::Basic {
            username: "probe".to_owned(),
            password: password.to_owned(),
        };
        let cases = [
            (
                with(&[
                    "--search-username",
                    "probe",
                    "--search-password-file",
                    password,
                ]),
                env as fn(&str) -> Option<String>,
                basic("s3cret"),
            ),
            (
                with(&["--search-username", "probe"]),
                env,
                basic("from-env"),
            ),
            (
                with(&[]),
                env,
                SearchAuth::ApiKey {
                    encoded: "a2V5".to_owned(),
                },
            ),
            (with(&[]), no_env, SearchAuth::None),
        ];
        for (args, env, want) in cases {
            assert_eq!(auth(&args, env).unwrap(), want);
        }
        let error = auth(&with(&["--search-username", "probe"]), no_env).unwrap_err();
        assert!(
            format!("{error:#}").contains("KELP_SEARCH_PASSWORD"),
            "{error:#}"
        );
    }

    #[test]
    fn reports_start_with_the_verdict() {
        let found = Report {
            token: Token::from_entropy(0xff),
            namespace: "kelp".to_owned(),
            outcome: Outcome::Found {
                hit: Hit {
                    index: "kelp-logs-kelp-2026.11.27".to_owned(),
                    id: "ab-00".to_owned(),
                    pod_name: Some("kelp-probe-00000000000000ff".to_owned()),
                    timestamp: Some("2026-11-27T10:00:03Z".to_owned()),
                    ingested: None,
                },
                latency: Some(Duration::from_millis(2_345)),
                since_written: Some(Duration::from_millis(1_250)),
                searches: 3,
            },
            pod_deleted: true,
        };
        let text = render(&found);
        assert!(text.starts_with("verdict: found\n"), "{text}");
        for needle in [
            "searchable 2.3 s after the probe container started",
            "searchable 1.2 s after the line's @timestamp",
            "index: kelp-logs-kelp-2026.11.27",
            "_id: ab-00",
            "kubernetes.pod.name: kelp-probe-00000000000000ff",
            "event.ingested: (absent)",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert!(!text.contains("left in place"));

        let facts = Facts {
            pod: Lookup::Done(Some(PodFacts {
                phase: Some("Running".to_owned()),
                node: Some("node-1".to_owned()),
                container: ContainerState::Running,
                events: vec!["Normal Scheduled: assigned".to_owned()],
            })),
            log_topic: Lookup::Done(TopicScan {
                topic: "kelp-logs".to_owned(),
                records_scanned: 5,
                complete: true,
                found: None::<Position>,
            }),
            dead_letter: Lookup::Skipped("-".to_owned()),
            group: Lookup::Skipped("-".to_owned()),
            search: SearchFacts {
                answered: 9,
                last_error: None,
            },
        };
        let verdict = kelp_deployer::probe::verdict::verdict(&facts);
        assert!(matches!(verdict, Verdict::NotInKafka { .. }));
        let missed = Report {
            outcome: Outcome::NotFound {
                facts: Box::new(facts),
                verdict,
            },
            pod_deleted: false,
            ..found
        };
        let text = render(&missed);
        assert!(text.starts_with("verdict: not-in-kafka\n"), "{text}");
        for needle in [
            "pod event: Normal Scheduled: assigned",
            "search: 9 answers",
            "left in place",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
    }
}
