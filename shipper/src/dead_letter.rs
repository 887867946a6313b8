//! What travels with a record to the dead-letter topic.
//!
//! The payload is the record itself, so the dead-letter topic can be read
//! back into the shipper once the cause is fixed: the original Kafka bytes
//! for a record that could not be decoded, and the document as it was sent
//! (the record plus `event.ingested`) for one the search engine rejected.
//! Everything else is in headers, so consumers of the topic need not unwrap
//! an envelope: why (stage, status, error type, reason) and where from
//! (source topic, partition, offset, and the target index when known).
//!
//! The key is the source position, `<topic>/<partition>/<offset>`: a record
//! dead-lettered twice (a crash between the produce and the offset commit)
//! has the same key twice, which tells the copies apart from distinct records.

/// Header names, all prefixed `kelp.dead_letter.`.
pub mod header {
    /// `decode` or `index`: see [`super::Stage`].
    pub const STAGE: &str = "kelp.dead_letter.stage";
    /// The HTTP status of the rejection; absent for decode failures.
    pub const STATUS: &str = "kelp.dead_letter.status";
    /// A bounded error type: the search engine's `type`
    /// (`mapper_parsing_exception`, ...) or the decode reason (`invalid_json`, ...).
    pub const ERROR_TYPE: &str = "kelp.dead_letter.error_type";
    /// The full reason, cut at [`super::MAX_REASON_BYTES`].
    pub const REASON: &str = "kelp.dead_letter.reason";
    /// The topic the record was consumed from.
    pub const SOURCE_TOPIC: &str = "kelp.dead_letter.source_topic";
    /// Its partition.
    pub const SOURCE_PARTITION: &str = "kelp.dead_letter.source_partition";
    /// Its offset.
    pub const SOURCE_OFFSET: &str = "kelp.dead_letter.source_offset";
    /// The index the document was written to; absent for decode failures.
    pub const INDEX: &str = "kelp.dead_letter.index";
}

/// Longest reason kept in the header, in bytes: mapping errors quote the
/// offending value, which may be a whole log line.
pub const MAX_REASON_BYTES: usize = 4096;

/// Where the record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The shipper could not read it as an event (bad JSON, newer schema,
    /// bad timestamp for the index name).
    Decode,
    /// The search engine rejected the document (e.g. a mapping conflict).
    Index,
}

impl Stage {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Index => "index",
        }
    }
}

/// A rejected record's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// Where it was refused.
    pub stage: Stage,
    /// The HTTP status, for [`Stage::Index`].
    pub status: Option<u16>,
    /// The bounded error type.
    pub error_type: &'a str,
    /// The full reason.
    pub reason: &'a str,
    /// The source topic.
    pub topic: &'a str,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// The target index, for [`Stage::Index`].
    pub index: Option<&'a str>,
}

impl DeadLetter<'_> {
    /// The record key: the source position.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }

    /// The headers, in a fixed order.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![(header::STAGE, self.stage.as_str().to_owned())];
        if let Some(status) = self.status {
            out.push((header::STATUS, status.to_string()));
        }
        out.push((header::ERROR_TYPE, self.error_type.to_owned()));
        out.push((header::REASON, truncate(self.reason, MAX_REASON_BYTES)));
        out.push((header::SOURCE_TOPIC, self.topic.to_owned()));
        out.push((header::SOURCE_PARTITION, self.partition.to_string()));
        out.push((header::SOURCE_OFFSET, self.offset.to_string()));
        if let Some(index) = self.index {
            out.push((header::INDEX, index.to_owned()));
        }
        out
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_rejection_headers() {
        let dl = DeadLetter {
            stage: Stage::Index,
            status: Some(400),
            error_type: "mapper_parsing_exception",
            reason: "failed to parse field [log.offset] of type [long]",
            topic: "kelp-events",
            partition: 2,
            offset: 41,
            index: Some("kelp-logs-shop-2026.11.27"),
        };
        assert_eq!(dl.key(), "kelp-events/2/41");
        assert_eq!(
            dl.headers(),
            vec![
                (header::STAGE, "index".to_owned()),
                (header::STATUS, "400".to_owned()),
                (header::ERROR_TYPE, "mapper_parsing_exception".to_owned()),
                (
                    header::REASON,
                    "failed to parse field [log.offset] of type [long]".to_owned()
                ),
                (header::SOURCE_TOPIC, "kelp-events".to_owned()),
                (header::SOURCE_PARTITION, "2".to_owned()),
                (header::SOURCE_OFFSET, "41".to_owned()),
                (header::INDEX, "kelp-logs-shop-2026.11.27".to_owned()),
            ]
        );
    }

    #[test]
    fn decode_failures_have_no_status_or_index() {
        let dl = DeadLetter {
            stage: Stage::Decode,
            status: None,
            error_type: "invalid_json",
            reason: "decoding record failed: expected value at line 1 column 1",
            topic: "t",
            partition: 0,
            offset: 0,
            index: None,
        };
        let names: Vec<&str> = dl.headers().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            vec![
                header::STAGE,
                header::ERROR_TYPE,
                header::REASON,
                header::SOURCE_TOPIC,
                header::SOURCE_PARTITION,
                header::SOURCE_OFFSET,
            ]
        );
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);
        let dl = DeadLetter {
            stage: Stage::Index,
            status: Some(400),
            error_type: "x",
            reason: &reason,
            topic: "t",
            partition: 0,
            offset: 0,
            index: None,
        };
        let headers = dl.headers();
        let cut = &headers
            .iter()
            .find(|(k, _)| *k == header::REASON)
            .unwrap()
            .1;
        assert_eq!(cut.len(), MAX_REASON_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("short", 10), "short");
    }
}
