//! `kelp-shipper`: a Kafka consumer group that bulk-indexes events into Elasticsearch or OpenSearch.

use clap::Parser;

/// Consumes kelp event records from Kafka and bulk-indexes them into
/// Elasticsearch (7, 8, 9) or OpenSearch (2, 3). A Kafka offset moves only
/// after the search engine has the documents before it; the document `_id`
/// is the record's event id, so a retry overwrites instead of duplicating.
#[derive(Debug, Parser)]
#[command(name = "kelp-shipper", version, about, long_about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
