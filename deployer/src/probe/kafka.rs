//! Looking for the token in Kafka: the log topic and the dead-letter topic
//! from the pod's start to their current end, and the shipper group's
//! committed offset. librdkafka's consumer is blocking, so each lookup runs
//! on a blocking thread; the matching of records is pure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kelp_shipper::dead_letter::header;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use super::verdict::{DeadLetterRecord, GroupOffsets, Position, TopicScan};

/// Bound of one metadata, offset or watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `payload` contains `needle`.
pub fn contains(payload: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && payload.windows(needle.len()).any(|window| window == needle)
}

/// A dead-letter record of the token: its payload (the original record or
/// the document as sent) holds the token, or its key is the token's
/// source position (`<topic>/<partition>/<offset>`).
pub fn is_dead_letter_of(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    token: &str,
    source: &Position,
) -> bool {
    let source_key = format!("{}/{}/{}", source.topic, source.partition, source.offset);
    key == Some(source_key.as_bytes())
        || payload.is_some_and(|payload| contains(payload, token.as_bytes()))
}

/// The dead-letter record as the shipper wrote it (see
/// `kelp_shipper::dead_letter`).
pub fn dead_letter_record(
    position: Position,
    headers: &BTreeMap<String, String>,
) -> DeadLetterRecord {
    let get = |name: &str| headers.get(name).cloned();
    DeadLetterRecord {
        position,
        stage: get(header::STAGE),
        status: get(header::STATUS),
        error_type: get(header::ERROR_TYPE),
        reason: get(header::REASON),
        index: get(header::INDEX),
    }
}

/// Where to read Kafka (plaintext, as the stack's brokers listen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTarget {
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
}

impl KafkaTarget {
    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }
}

/// One message as the scan hands it to its matcher.
#[derive(Debug)]
struct Seen<'a> {
    partition: i32,
    offset: i64,
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    headers: BTreeMap<String, String>,
}

/// Reads `topic` from the first record at or after `since_ms` to the end
/// each partition had when the scan started, until `found` returns
/// something or `time_limit` passes.
fn scan<T>(
    target: &KafkaTarget,
    topic: &str,
    since_ms: i64,
    time_limit: Duration,
    mut found: impl FnMut(&Seen<'_>) -> Option<T>,
) -> Result<TopicScan<T>, String> {
    let deadline = Instant::now() + time_limit;
    let consumer: BaseConsumer = target
        .config()
        // Assigned, never subscribed: the scan joins no group and commits nothing.
        .set("group.id", "kelp-probe-scan")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("creating a consumer: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| format!("reading the metadata of {topic}: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| {
            if let Some(error) = t.error() {
                return Err(format!(
                    "reading the metadata of {topic}: {:?}",
                    RDKafkaErrorCode::from(error)
                ));
            }
            Ok(t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic {topic} has no partitions (does it exist?)"));
    }
    let mut times = TopicPartitionList::new();
    for partition in &partitions {
        times
            .add_partition_offset(topic, *partition, Offset::Offset(since_ms))
            .map_err(|e| format!("listing partitions: {e}"))?;
    }
    let starts = consumer
        .offsets_for_times(times, REQUEST_TIMEOUT)
        .map_err(|e| format!("looking up offsets by time in {topic}: {e}"))?;
    // Per partition: the next offset to read and the end to read to.
    let mut pending: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        let entry = starts.find_partition(topic, *partition);
        if let Some(Err(error)) = entry.as_ref().map(|e| e.error()) {
            return Err(format!(
                "looking up offsets by time in {topic} partition {partition}: {error}"
            ));
        }
        let start = match entry.map(|e| e.offset()) {
            Some(Offset::Offset(offset)) => offset,
            // Nothing at or after the time: nothing to read there.
            Some(Offset::End) => continue,
            other => {
                return Err(format!(
                    "looking up offsets by time in {topic} partition {partition}: got {other:?}"
                ));
            }
        };
        let (_, high) = consumer
            .fetch_watermarks(topic, *partition, REQUEST_TIMEOUT)
            .map_err(|e| format!("reading the end of {topic} partition {partition}: {e}"))?;
        if start < high {
            pending.insert(*partition, (start, high));
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(start))
                .map_err(|e| format!("assigning partitions: {e}"))?;
        }
    }
    let mut scanned = 0;
    if pending.is_empty() {
        return Ok(TopicScan {
            topic: topic.to_owned(),
            records_scanned: 0,
            complete: true,
            found: None,
        });
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assigning {topic}: {e}"))?;
    while !pending.is_empty() && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = match message {
            Ok(message) => message,
            // Transient (a broker restarting): keep polling until the limit.
            Err(KafkaError::MessageConsumption(code)) => {
                tracing::debug!(?code, "consuming {topic} failed, retrying");
                continue;
            }
            Err(error) => return Err(format!("consuming {topic}: {error}")),
        };
        scanned += 1;
        let mut headers = BTreeMap::new();
        if let Some(all) = message.headers() {
            for h in all.iter() {
                let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                headers.insert(h.key.to_owned(), value.unwrap_or_default());
            }
        }
        let seen = Seen {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload(),
            headers,
        };
        if let Some(hit) = found(&seen) {
            return Ok(TopicScan {
                topic: topic.to_owned(),
                records_scanned: scanned,
                complete: true,
                found: Some(hit),
            });
        }
        if let Some((_, high)) = pending.get(&seen.partition)
            && seen.offset + 1 >= *high
        {
            pending.remove(&seen.partition);
        }
    }
    Ok(TopicScan {
        topic: topic.to_owned(),
        records_scanned: scanned,
        complete: pending.is_empty(),
        found: None,
    })
}

/// Looks for the token in the log topic.
pub async fn find_in_log_topic(
    target: &KafkaTarget,
    topic: &str,
    token: &str,
    since_ms: i64,
    time_limit: Duration,
) -> Result<TopicScan<Position>, String> {
    let (target, topic, token) = (target.clone(), topic.to_owned(), token.to_owned());
    run_blocking(move || {
        scan(&target, &topic, since_ms, time_limit, |seen| {
            seen.payload
                .is_some_and(|payload| contains(payload, token.as_bytes()))
                .then(|| Position {
                    topic: topic.clone(),
                    partition: seen.partition,
                    offset: seen.offset,
                })
        })
    })
    .await
}

/// Looks for the dead-letter record of the token's record at `source`.
pub async fn find_in_dead_letter_topic(
    target: &KafkaTarget,
    topic: &str,
    token: &str,
    source: &Position,
    since_ms: i64,
    time_limit: Duration,
) -> Result<TopicScan<DeadLetterRecord>, String> {
    let (target, topic, token, source) = (
        target.clone(),
        topic.to_owned(),
        token.to_owned(),
        source.clone(),
    );
    run_blocking(move || {
        scan(&target, &topic, since_ms, time_limit, |seen| {
            is_dead_letter_of(seen.key, seen.payload, &token, &source).then(|| {
                dead_letter_record(
                    Position {
                        topic: topic.clone(),
                        partition: seen.partition,
                        offset: seen.offset,
                    },
                    &seen.headers,
                )
            })
        })
    })
    .await
}

/// The committed offset of `group` on the token's partition, and its end.
pub async fn group_offsets(
    target: &KafkaTarget,
    group: &str,
    at: &Position,
) -> Result<GroupOffsets, String> {
    let (target, group, at) = (target.clone(), group.to_owned(), at.clone());
    run_blocking(move || {
        // A consumer that never subscribes reads the group's offsets
        // without joining it, so the shipper is not rebalanced.
        let consumer: BaseConsumer = target
            .config()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("creating a consumer: {e}"))?;
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(&at.topic, at.partition);
        let committed = consumer
            .committed_offsets(partitions, REQUEST_TIMEOUT)
            .map_err(|e| format!("reading the committed offsets of group {group}: {e}"))?;
        let committed = match committed
            .find_partition(&at.topic, at.partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(offset)) => Some(offset),
            _ => None,
        };
        let (_, high_watermark) = consumer
            .fetch_watermarks(&at.topic, at.partition, REQUEST_TIMEOUT)
            .map_err(|e| format!("reading the end of {}: {e}", at.topic))?;
        Ok(GroupOffsets {
            group,
            committed,
            high_watermark,
        })
    })
    .await
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the kafka lookup task failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_searched_for_the_token_bytes() {
        let cases: [(&[u8], &str, bool); 5] = [
            (
                br#"{"message":"kelp probe canary kelp-probe-00ff"}"#,
                "kelp-probe-00ff",
                true,
            ),
            (br#"{"message":"kelp-probe-00f"}"#, "kelp-probe-00ff", false),
            (b"kelp-probe-00ff", "kelp-probe-00ff", true),
            (b"", "kelp-probe-00ff", false),
            (b"anything", "", false),
        ];
        for (payload, token, want) in cases {
            assert_eq!(
                contains(payload, token.as_bytes()),
                want,
                "{token} in {payload:?}"
            );
        }
    }

    #[test]
    fn dead_letters_match_by_source_key_or_payload() {
        let source = Position {
            topic: "kelp-logs".to_owned(),
            partition: 2,
            offset: 41,
        };
        let token = "kelp-probe-00ff";
        type Bytes<'a> = Option<&'a [u8]>;
        let cases: [(Bytes<'_>, Bytes<'_>, bool); 5] = [
            (Some(b"kelp-logs/2/41"), Some(b"not json"), true),
            (
                Some(b"kelp-logs/2/42"),
                Some(b"{\"message\":\"kelp-probe-00ff\"}"),
                true,
            ),
            (
                Some(b"kelp-logs/2/42"),
                Some(b"{\"message\":\"other\"}"),
                false,
            ),
            (None, None, false),
            (Some(b"kelp-logs/12/41"), None, false),
        ];
        for (key, payload, want) in cases {
            assert_eq!(
                is_dead_letter_of(key, payload, token, &source),
                want,
                "{key:?} {payload:?}"
            );
        }
    }

    #[test]
    fn dead_letter_headers_become_the_record() {
        let written = kelp_shipper::dead_letter::DeadLetter {
            stage: kelp_shipper::dead_letter::Stage::Index,
            status: Some(400),
            error_type: "mapper_parsing_exception",
            reason: "failed to parse field [message]",
            topic: "kelp-logs",
            partition: 2,
            offset: 41,
            index: Some("kelp-logs-kelp-2026.11.27"),
        };
        let headers: BTreeMap<String, String> = written
            .headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let position = Position {
            topic: "kelp-dead-letter".to_owned(),
            partition: 0,
            offset: 3,
        };
        let record = dead_letter_record(position.clone(), &headers);
        assert_eq!(
            record,
            DeadLetterRecord {
                position,
                stage: Some("index".to_owned()),
                status: Some("400".to_owned()),
                error_type: Some("mapper_parsing_exception".to_owned()),
                reason: Some("failed to parse field [message]".to_owned()),
                index: Some("kelp-logs-kelp-2026.11.27".to_owned()),
            }
        );
        assert_eq!(
            dead_letter_record(record.position.clone(), &BTreeMap::new()).reason,
            None
        );
    }
}
