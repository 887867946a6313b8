//! Kibana saved objects for container logs, shipped as data.
//!
//! The objects live in `objects/kelp-container-logs.ndjson`, in the format of
//! Kibana's export API, authored at Kibana 7.17 (the oldest supported) so that
//! Kibana 8 migrates them on import. They are a data view `kelp-logs-*`, two
//! saved searches, namespace/pod/container input controls, five Lens
//! visualisations and the dashboard "Kubernetes container logs". See
//! docs/DASHBOARDS.md for what each panel shows.
//!
//! Architecture Invariant: this crate is data plus pure accessors. The
//! importer that talks to Kibana lives in the deployer.

#[cfg(test)]
mod tests;

use serde_json::Value;

/// The saved objects, one JSON object per line, as Kibana's import API takes them.
pub const NDJSON: &str = include_str!("../objects/kelp-container-logs.ndjson");

/// The file name to send [`NDJSON`] under: Kibana's import API refuses files
/// whose name does not end in `.ndjson`.
pub const FILE_NAME: &str = "kelp-container-logs.ndjson";

/// Id of the data view (saved-object type `index-pattern`) on `kelp-logs-*`.
pub const DATA_VIEW_ID: &str = "kelp-logs";

/// The index pattern of the data view: the shipper's default index names.
pub const DATA_VIEW_TITLE: &str = "kelp-logs-*";

/// Id of the dashboard "Kubernetes container logs".
pub const DASHBOARD_ID: &str = "kelp-kubernetes-container-logs";

/// The saved objects, parsed.
///
/// The NDJSON is compiled in and the crate's tests parse every line, so an
/// error here means the file was edited without running them.
pub fn objects() -> Result<Vec<Value>, serde_json::Error> {
    lines().map(serde_json::from_str).collect()
}

/// How many saved objects [`NDJSON`] holds: Kibana's `successCount` after a
/// complete import.
pub fn object_count() -> usize {
    lines().count()
}

fn lines() -> impl Iterator<Item = &'static str> {
    NDJSON.lines().filter(|line| !line.trim().is_empty())
}
