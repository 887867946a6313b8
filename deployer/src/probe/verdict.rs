//! Where a token that never became searchable got stuck: a pure function
//! from what the probe found out (the pod, the Kafka topics, the shipper's
//! consumer group, the search engine) to one verdict.
//!
//! The hops are judged in the order the token travels: the pod, the log
//! topic, the dead-letter topic, the shipper's progress. A token found in
//! Kafka settles that the pod wrote it, whatever the pod looks like now.

use std::fmt;

/// The outcome of one lookup that may not have been made or may have failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Not attempted; the text says why (e.g. no `--kafka-bootstrap`).
    Skipped(String),
    /// Attempted and failed; the text is the error.
    Failed(String),
    /// Done.
    Done(T),
}

/// The probe pod as the API server reported it at the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// `status.phase`, e.g. `Pending`; `None` before the first status.
    pub phase: Option<String>,
    /// `spec.nodeName`: where the pod was scheduled, if it was.
    pub node: Option<String>,
    /// The container's state.
    pub container: ContainerState,
    /// The pod's events, oldest first, as `Type Reason: message`.
    pub events: Vec<String>,
}

/// The probe container's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// No container status yet (not scheduled, or the kubelet did not report).
    NotReported,
    /// Waiting, e.g. `ContainerCreating` or `ImagePullBackOff`.
    Waiting {
        /// The kubelet's reason.
        reason: String,
        /// The kubelet's message, if any.
        message: Option<String>,
    },
    /// Running (the probe's `echo` exits at once; a kubelet that runs
    /// nothing, like kwok's, leaves it here).
    Running,
    /// Terminated.
    Terminated {
        /// The exit code.
        exit_code: i32,
        /// The kubelet's reason, e.g. `Completed` or `Error`.
        reason: Option<String>,
    },
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerState::NotReported => f.write_str("not reported"),
            ContainerState::Waiting {
                reason,
                message: Some(message),
            } => write!(f, "waiting: {reason}: {message}"),
            ContainerState::Waiting { reason, .. } => write!(f, "waiting: {reason}"),
            ContainerState::Running => f.write_str("running"),
            ContainerState::Terminated { exit_code, reason } => write!(
                f,
                "terminated with code {exit_code} ({})",
                reason.as_deref().unwrap_or("no reason given")
            ),
        }
    }
}

/// A record's position in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} partition {} offset {}",
            self.topic, self.partition, self.offset
        )
    }
}

/// A scan of one topic for the token, from the pod's start to the end the
/// topic had when the scan began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicScan<T> {
    /// The topic.
    pub topic: String,
    /// Records read.
    pub records_scanned: u64,
    /// Whether every partition was read to its end (false: the scan's time
    /// limit passed first).
    pub complete: bool,
    /// The token's record, if found.
    pub found: Option<T>,
}

/// The dead-letter record of the token, with what the shipper recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRecord {
    /// Where the dead-letter record is.
    pub position: Position,
    /// `kelp.dead_letter.stage`: `decode` or `index`.
    pub stage: Option<String>,
    /// `kelp.dead_letter.status`: the search engine's HTTP status.
    pub status: Option<String>,
    /// `kelp.dead_letter.error_type`, e.g. `mapper_parsing_exception`.
    pub error_type: Option<String>,
    /// `kelp.dead_letter.reason`: the search engine's or decoder's words.
    pub reason: Option<String>,
    /// `kelp.dead_letter.index`: the index the document was meant for.
    pub index: Option<String>,
}

/// The shipper group's progress on the token's partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsets {
    /// The consumer group.
    pub group: String,
    /// Its committed offset (the next record it will read); `None` when
    /// it never committed on this partition.
    pub committed: Option<i64>,
    /// The partition's end.
    pub high_watermark: i64,
}

/// How the search engine answered the probe's queries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFacts {
    /// Queries that got an answer (with or without the token).
    pub answered: u32,
    /// The last error, if any query failed.
    pub last_error: Option<String>,
}

/// Everything the probe knows when the deadline passed without a hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The pod; `Done(None)` when it is gone.
    pub pod: Lookup<Option<PodFacts>>,
    /// The log topic scan.
    pub log_topic: Lookup<TopicScan<Position>>,
    /// The dead-letter topic scan.
    pub dead_letter: Lookup<TopicScan<DeadLetterRecord>>,
    /// The shipper group's committed offset on the token's partition.
    pub group: Lookup<GroupOffsets>,
    /// The search engine's answers.
    pub search: SearchFacts,
}

/// Where the token got stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The pod never ran, or ran and failed, so it never wrote the token.
    PodDidNotWrite {
        /// What the pod's status says.
        reason: String,
    },
    /// The pod ran but the token is not in the log topic: the collector on
    /// its node did not ship it.
    NotInKafka {
        /// The node the pod ran on, if known.
        node: Option<String>,
        /// The topic scanned.
        topic: String,
        /// Records read.
        records_scanned: u64,
    },
    /// The shipper dead-lettered the token's record.
    DeadLettered {
        /// The log topic record.
        source: Position,
        /// The dead-letter record and its reason.
        record: DeadLetterRecord,
    },
    /// The token is in Kafka but not searchable.
    NotIndexed {
        /// The log topic record.
        source: Position,
        /// What the shipper group's offsets say.
        shipper: ShipperProgress,
        /// A caveat about the dead-letter check, when it was not complete.
        dead_letter_note: Option<String>,
    },
    /// The token is in Kafka and the shipper moved past it, but the search
    /// engine never answered a query.
    SearchUnavailable {
        /// The log topic record.
        source: Position,
        /// The last search error.
        last_error: Option<String>,
    },
    /// The facts do not say; the text says what is missing.
    Unknown {
        /// Why no verdict.
        reason: String,
    },
}

/// What the shipper group's offsets say about a token in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipperProgress {
    /// The group never committed on the partition: no shipper consumed it.
    NoCommit {
        /// The group.
        group: String,
    },
    /// The group has not reached the token.
    Behind {
        /// The group.
        group: String,
        /// Its committed offset.
        committed: i64,
        /// Records between the committed offset and the partition's end.
        lag: i64,
    },
    /// The group committed past the token, so the shipper indexed or
    /// dead-lettered it; yet the search did not find it.
    Past {
        /// The group.
        group: String,
        /// Its committed offset.
        committed: i64,
    },
    /// The offsets could not be read.
    Unknown(String),
}

impl Verdict {
    /// A stable short code for scripts and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::PodDidNotWrite { .. } => "pod-did-not-write",
            Verdict::NotInKafka { .. } => "not-in-kafka",
            Verdict::DeadLettered { .. } => "dead-lettered",
            Verdict::NotIndexed { .. } => "not-indexed",
            Verdict::SearchUnavailable { .. } => "search-unavailable",
            Verdict::Unknown { .. } => "unknown",
        }
    }
}

/// Judges where the token got stuck.
pub fn verdict(facts: &Facts) -> Verdict {
    let pod_problem = match &facts.pod {
        Lookup::Done(Some(pod)) => pod_did_not_write(pod),
        _ => None,
    };
    let found = match &facts.log_topic {
        Lookup::Done(TopicScan {
            found: Some(position),
            ..
        }) => Some(position.clone()),
        _ => None,
    };
    let Some(source) = found else {
        return not_in_kafka(facts, pod_problem);
    };
    let dead_letter_note = match &facts.dead_letter {
        Lookup::Done(TopicScan {
            found: Some(record),
            ..
        }) => {
            return Verdict::DeadLettered {
                source,
                record: record.clone(),
            };
        }
        Lookup::Done(scan) if scan.complete => None,
        Lookup::Done(scan) => Some(format!(
            "the dead-letter topic {} was read only in part ({} records) before the scan's time limit",
            scan.topic, scan.records_scanned
        )),
        Lookup::Failed(error) => Some(format!("reading the dead-letter topic failed: {error}")),
        Lookup::Skipped(why) => Some(format!("the dead-letter topic was not checked: {why}")),
    };
    let shipper = match &facts.group {
        Lookup::Done(offsets) => progress(offsets, source.offset),
        Lookup::Failed(error) => ShipperProgress::Unknown(error.clone()),
        Lookup::Skipped(why) => ShipperProgress::Unknown(why.clone()),
    };
    if facts.search.answered == 0 && matches!(shipper, ShipperProgress::Past { .. }) {
        return Verdict::SearchUnavailable {
            source,
            last_error: facts.search.last_error.clone(),
        };
    }
    Verdict::NotIndexed {
        source,
        shipper,
        dead_letter_note,
    }
}

/// The verdict for a token not found in the log topic: the pod is the
/// first suspect, then the collector, unless the scan could not tell.
fn not_in_kafka(facts: &Facts, pod_problem: Option<String>) -> Verdict {
    if let Some(reason) = pod_problem {
        return Verdict::PodDidNotWrite { reason };
    }
    match &facts.log_topic {
        Lookup::Done(scan) if scan.complete => Verdict::NotInKafka {
            node: match &facts.pod {
                Lookup::Done(Some(pod)) => pod.node.clone(),
                _ => None,
            },
            topic: scan.topic.clone(),
            records_scanned: scan.records_scanned,
        },
        Lookup::Done(scan) => Verdict::Unknown {
            reason: format!(
                "the token is not among the {} records of {} read before the scan's time limit",
                scan.records_scanned, scan.topic
            ),
        },
        Lookup::Failed(error) => Verdict::Unknown {
            reason: format!("reading the log topic failed: {error}"),
        },
        Lookup::Skipped(why) => Verdict::Unknown {
            reason: format!("the log topic was not checked: {why}"),
        },
    }
}

/// Why the pod cannot have written the token, if its status says so.
fn pod_did_not_write(pod: &PodFacts) -> Option<String> {
    let phase = pod.phase.as_deref().unwrap_or("unknown");
    match &pod.container {
        ContainerState::Waiting { reason, message } => Some(match message {
            Some(message) => format!("phase {phase}, container waiting: {reason}: {message}"),
            None => format!("phase {phase}, container waiting: {reason}"),
        }),
        ContainerState::Terminated { exit_code, reason } if *exit_code != 0 => Some(format!(
            "phase {phase}, container exited with code {exit_code} ({})",
            reason.as_deref().unwrap_or("no reason given")
        )),
        ContainerState::NotReported if phase == "Pending" || phase == "unknown" => {
            Some(match &pod.node {
                None => format!("phase {phase}, never scheduled"),
                Some(node) => format!("phase {phase} on {node}, no container status"),
            })
        }
        ContainerState::NotReported if phase == "Failed" => {
            Some("phase Failed, no container status".to_owned())
        }
        _ => None,
    }
}

/// What the group's committed offset says about a record at `offset`.
fn progress(offsets: &GroupOffsets, offset: i64) -> ShipperProgress {
    let group = offsets.group.clone();
    match offsets.committed {
        None => ShipperProgress::NoCommit { group },
        Some(committed) if committed <= offset => ShipperProgress::Behind {
            group,
            committed,
            lag: offsets.high_watermark.saturating_sub(committed),
        },
        Some(committed) => ShipperProgress::Past { group, committed },
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::PodDidNotWrite { reason } => {
                write!(f, "the probe pod never wrote the token: {reason}")
            }
            Verdict::NotInKafka {
                node,
                topic,
                records_scanned,
            } => {
                let node = node.as_deref().unwrap_or("the pod's node");
                write!(
                    f,
                    "not in Kafka: the token is not among the {records_scanned} records of {topic} \
                     since the pod started; is kelp-collector running on {node}, and does its \
                     include glob match the pod's log file?"
                )
            }
            Verdict::DeadLettered { source, record } => {
                write!(
                    f,
                    "in Kafka ({source}) but dead-lettered ({}): stage {}, status {}, {}: {}",
                    record.position,
                    record.stage.as_deref().unwrap_or("?"),
                    record.status.as_deref().unwrap_or("none"),
                    record.error_type.as_deref().unwrap_or("no error type"),
                    record.reason.as_deref().unwrap_or("no reason recorded"),
                )?;
                if let Some(index) = &record.index {
                    write!(f, " (index {index})")?;
                }
                Ok(())
            }
            Verdict::NotIndexed {
                source,
                shipper,
                dead_letter_note,
            } => {
                write!(f, "in Kafka ({source}), not indexed: ")?;
                match shipper {
                    ShipperProgress::NoCommit { group } => write!(
                        f,
                        "consumer group {group} has no committed offset on partition {}; is kelp-shipper running?",
                        source.partition
                    )?,
                    ShipperProgress::Behind {
                        group,
                        committed,
                        lag,
                    } => write!(
                        f,
                        "consumer group {group} is at offset {committed}, not past the token's {}; \
                         the shipper lags {lag} records behind the partition's end",
                        source.offset
                    )?,
                    ShipperProgress::Past { group, committed } => write!(
                        f,
                        "consumer group {group} committed offset {committed}, past the token's {}, \
                         so the shipper indexed or dead-lettered it; check the search URL and the \
                         index pattern",
                        source.offset
                    )?,
                    ShipperProgress::Unknown(why) => {
                        write!(f, "the shipper's progress is unknown: {why}")?;
                    }
                }
                if let Some(note) = dead_letter_note {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Verdict::SearchUnavailable { source, last_error } => write!(
                f,
                "in Kafka ({source}) and consumed by the shipper, but the search engine never answered: {}",
                last_error.as_deref().unwrap_or("no error recorded")
            ),
            Verdict::Unknown { reason } => write!(f, "unknown: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests;
