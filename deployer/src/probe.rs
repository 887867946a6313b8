//! `kelp probe`: a live canary. A short-lived pod writes one line with a
//! unique token; the probe searches for it until it is indexed and reports
//! the write-to-searchable time, or, at the deadline, where the token got
//! stuck (see [`verdict`]).
//!
//! The pure parts are in [`pod`] (token, manifest, status), [`search`]
//! (query and answer), [`kafka`] (record matching) and [`verdict`]; this
//! module is the rim that talks to the API server, the search engine and
//! Kafka, in that order.

pub mod kafka;
pub mod pod;
pub mod search;
pub mod verdict;

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use self::kafka::KafkaTarget;
use self::pod::{PodSettings, Token};
use self::search::{Answer, Hit, SearchClient};
use self::verdict::{Facts, Lookup, SearchFacts, Verdict};

/// Pause between two searches: the shipper's default index refresh is 1 s,
/// so asking more often finds nothing sooner.
const SEARCH_INTERVAL: Duration = Duration::from_secs(1);
/// Bound of one search request.
pub const SEARCH_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How far before the pod's creation the Kafka scans start: node and API
/// server clocks may disagree by this much.
const SCAN_MARGIN_MS: i64 = 60_000;
/// How often the pod's status is read while waiting, to stop early when
/// it failed for good.
const POD_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Why the probe could not run (a token that is not found is not an
/// error: it is a [`Outcome::NotFound`]).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connecting to the API server failed.
    #[error("connecting to kubernetes failed: {0}")]
    Kube(#[source] kube::Error),
    /// The pod could not be created.
    #[error("creating the probe pod {namespace}/{name} failed: {source}")]
    CreatePod {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
        /// The cause.
        source: kube::Error,
    },
    /// Searching failed in a way that retrying cannot fix.
    #[error("searching for the token failed: {0}")]
    Search(String),
    /// Ctrl-C before the token was found (the pod is still deleted).
    #[error("waiting for the token failed: interrupted")]
    Interrupted,
}

/// Everything a probe run needs besides the cluster client.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Namespace of the pod.
    pub namespace: String,
    /// The pod's image.
    pub image: String,
    /// Pin the pod to this node.
    pub node: Option<String>,
    /// Labels added to the pod.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Image pull secrets of the pod.
    pub pull_secrets: Vec<String>,
    /// How long to wait for the token to be searchable.
    pub timeout: Duration,
    /// Bound of each Kafka topic scan when diagnosing.
    pub scan_timeout: Duration,
    /// The log topic.
    pub log_topic: String,
    /// The dead-letter topic.
    pub dead_letter_topic: String,
    /// The shipper's consumer group.
    pub shipper_group: String,
    /// Kafka, for diagnosing; without it the verdict cannot look there.
    pub kafka: Option<KafkaTarget>,
    /// Leave the pod in place at the end.
    pub keep_pod: bool,
}

/// What a probe run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The token, also the pod's name.
    pub token: Token,
    /// The pod's namespace.
    pub namespace: String,
    /// Found or not.
    pub outcome: Outcome,
    /// Whether the pod was deleted at the end (false with `keep_pod` or
    /// when the deletion failed; see the log).
    pub pod_deleted: bool,
}

/// Found, with timings, or not, with a verdict.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The token is searchable.
    Found {
        /// The document.
        hit: Hit,
        /// From the container's start (or the pod's creation) to the first
        /// search hit; `None` when the API server gave neither time.
        latency: Option<Duration>,
        /// From the line's `@timestamp` (the node's clock, to the
        /// nanosecond) to the first search hit; `None` without one.
        since_written: Option<Duration>,
        /// Searches made.
        searches: u32,
    },
    /// The deadline passed.
    NotFound {
        /// What was found out.
        facts: Box<Facts>,
        /// The judgement.
        verdict: Verdict,
    },
}

/// A fresh token: 64 bits from the standard library's randomly keyed
/// hasher, mixed with the clock and the process id.
pub fn new_token() -> Token {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    Token::from_entropy(hasher.finish())
}

/// The time between `started_ms` and `found_ms`, if both are known; zero
/// when the clocks disagree (the API server's times are whole seconds).
pub fn latency(started_ms: Option<i64>, found_ms: i64) -> Option<Duration> {
    let started = started_ms?;
    Some(Duration::from_millis(
        u64::try_from(found_ms.saturating_sub(started)).unwrap_or(0),
    ))
}

/// An RFC 3339 timestamp (`@timestamp`) in milliseconds since the epoch.
pub fn timestamp_ms(text: &str) -> Option<i64> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Runs the probe: creates the pod, searches until the deadline,
/// diagnoses a miss, deletes the pod (unless asked not to).
///
/// # Errors
/// When the pod cannot be created or the search engine refuses the
/// credentials. A token that is not found is a [`Outcome::NotFound`].
pub async fn run(
    client: kube::Client,
    search: &SearchClient,
    options: &ProbeOptions,
) -> Result<Report, ProbeError> {
    let token = new_token();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &options.namespace);
    let manifest = pod::build(
        &token,
        &PodSettings {
            namespace: &options.namespace,
            image: &options.image,
            node: options.node.as_deref(),
            labels: &options.labels,
            pull_secrets: &options.pull_secrets,
        },
    );
    let created = pods
        .create(&PostParams::default(), &manifest)
        .await
        .map_err(|source| ProbeError::CreatePod {
            namespace: options.namespace.clone(),
            name: token.to_string(),
            source,
        })?;
    tracing::info!(
        pod = %token,
        namespace = %options.namespace,
        "created the probe pod; searching {} for its line",
        search.target().index_pattern
    );
    let created_ms = pod::created_ms(&created).unwrap_or_else(now_ms);
    let outcome = tokio::select! {
        outcome = watch(&pods, client, search, options, &token, created_ms) => outcome,
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!("interrupted: deleting the probe pod");
            Err(ProbeError::Interrupted)
        }
    };
    let pod_deleted = if options.keep_pod {
        tracing::info!(pod = %token, "keeping the probe pod (--keep-pod)");
        false
    } else {
        match pods.delete(token.as_str(), &DeleteParams::default()).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(pod = %token, "deleting the probe pod failed: {error}");
                false
            }
        }
    };
    Ok(Report {
        token,
        namespace: options.namespace.clone(),
        outcome: outcome?,
        pod_deleted,
    })
}

/// Searches until the token is found or the deadline, then diagnoses.
async fn watch(
    pods: &Api<Pod>,
    client: kube::Client,
    search: &SearchClient,
    options: &ProbeOptions,
    token: &Token,
    created_ms: i64,
) -> Result<Outcome, ProbeError> {
    let deadline = Instant::now() + options.timeout;
    let mut facts = SearchFacts::default();
    let mut searches = 0;
    let mut last_pod_check = Instant::now();
    loop {
        searches += 1;
        match search.search(token.as_str()).await? {
            Answer::Found(hit) => {
                let found_ms = now_ms();
                let pod = pods.get_opt(token.as_str()).await.ok().flatten();
                let started = pod.as_ref().and_then(pod::started_ms).or(Some(created_ms));
                let written = hit.timestamp.as_deref().and_then(timestamp_ms);
                return Ok(Outcome::Found {
                    latency: latency(started, found_ms),
                    since_written: written.and_then(|written| latency(Some(written), found_ms)),
                    hit,
                    searches,
                });
            }
            Answer::NotFound => facts.answered += 1,
            Answer::Failed(error) => {
                tracing::debug!("search failed: {error}");
                facts.last_error = Some(error);
            }
        }
        if Instant::now() + SEARCH_INTERVAL >= deadline {
            break;
        }
        if last_pod_check.elapsed() >= POD_CHECK_INTERVAL {
            last_pod_check = Instant::now();
            if let Ok(Some(current)) = pods.get_opt(token.as_str()).await
                && current
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .is_some_and(|phase| phase == "Failed")
            {
                tracing::warn!("the probe pod failed; diagnosing now");
                break;
            }
        }
        tokio::time::sleep(SEARCH_INTERVAL).await;
    }
    tracing::info!(
        "not searchable after {} s; looking for where it stopped",
        options.timeout.as_secs()
    );
    let facts = diagnose(pods, client, options, token, created_ms, facts).await;
    let verdict = verdict::verdict(&facts);
    Ok(Outcome::NotFound {
        facts: Box::new(facts),
        verdict,
    })
}

/// Gathers the facts hop by hop, skipping what an earlier hop settles.
async fn diagnose(
    pods: &Api<Pod>,
    client: kube::Client,
    options: &ProbeOptions,
    token: &Token,
    created_ms: i64,
    search: SearchFacts,
) -> Facts {
    let pod = match pods.get_opt(token.as_str()).await {
        Ok(Some(current)) => {
            let events: Api<Event> = Api::namespaced(client, &options.namespace);
            let selector = format!("involvedObject.name={token},involvedObject.kind=Pod");
            let listed = events.list(&ListParams::default().fields(&selector)).await;
            let items = listed.map(|list| list.items).unwrap_or_else(|error| {
                tracing::warn!("listing the probe pod's events failed: {error}");
                Vec::new()
            });
            Lookup::Done(Some(pod::facts(&current, &items)))
        }
        Ok(None) => Lookup::Done(None),
        Err(error) => Lookup::Failed(format!("reading the probe pod failed: {error}")),
    };
    let mut facts = Facts {
        pod,
        log_topic: Lookup::Skipped("no --kafka-bootstrap given".to_owned()),
        dead_letter: Lookup::Skipped("no --kafka-bootstrap given".to_owned()),
        group: Lookup::Skipped("no --kafka-bootstrap given".to_owned()),
        search,
    };
    let Some(kafka) = &options.kafka else {
        return facts;
    };
    // A pod that never ran wrote nothing: no need to read Kafka.
    if matches!(verdict::verdict(&facts), Verdict::PodDidNotWrite { .. }) {
        facts.log_topic = Lookup::Skipped("the pod never wrote".to_owned());
        return facts;
    }
    let since_ms = created_ms.saturating_sub(SCAN_MARGIN_MS);
    tracing::info!("scanning {} for the token", options.log_topic);
    facts.log_topic = lookup(
        kafka::find_in_log_topic(
            kafka,
            &options.log_topic,
            token.as_str(),
            since_ms,
            options.scan_timeout,
        )
        .await,
    );
    let Lookup::Done(verdict::TopicScan {
        found: Some(source),
        ..
    }) = &facts.log_topic
    else {
        facts.dead_letter = Lookup::Skipped("the token is not in the log topic".to_owned());
        facts.group = Lookup::Skipped("the token is not in the log topic".to_owned());
        return facts;
    };
    let source = source.clone();
    tracing::info!(
        "found the token at {source}; scanning {}",
        options.dead_letter_topic
    );
    facts.dead_letter = lookup(
        kafka::find_in_dead_letter_topic(
            kafka,
            &options.dead_letter_topic,
            token.as_str(),
            &source,
            since_ms,
            options.scan_timeout,
        )
        .await,
    );
    facts.group = lookup(kafka::group_offsets(kafka, &options.shipper_group, &source).await);
    facts
}

fn lookup<T>(result: Result<T, String>) -> Lookup<T> {
    match result {
        Ok(value) => Lookup::Done(value),
        Err(error) => Lookup::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_counts_from_the_start_and_never_goes_negative() {
        let cases = [
            (Some(1_000), 4_500, Some(Duration::from_millis(3_500))),
            (Some(5_000), 4_500, Some(Duration::ZERO)),
            (None, 4_500, None),
        ];
        for (started, found, want) in cases {
            assert_eq!(latency(started, found), want, "{started:?} {found}");
        }
    }

    #[test]
    fn timestamps_are_read_to_the_millisecond() {
        let cases = [
            ("2026-11-27T10:00:00Z", Some(1_795_773_600_000)),
            ("2026-11-27T10:00:03.123456789Z", Some(1_795_773_603_123)),
            ("2026-11-27T12:00:03.5+02:00", Some(1_795_773_603_500)),
            ("yesterday", None),
        ];
        for (text, want) in cases {
            assert_eq!(timestamp_ms(text), want, "{text}");
        }
    }

    #[test]
    fn tokens_differ_between_calls() {
        let tokens: std::collections::BTreeSet<String> =
            (0..100).map(|_| new_token().to_string()).collect();
        assert_eq!(tokens.len(), 100);
    }
}
