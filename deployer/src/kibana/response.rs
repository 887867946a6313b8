//! Reading the answer of `POST /api/saved_objects/_import`.
//!
//! HTTP 200 is not success: the body says `success: false` when any object
//! failed, and lists each failure in `errors[]` with an `error.type` of
//! `conflict`, `ambiguous_conflict`, `missing_references`,
//! `unsupported_type` or `unknown`. `successResults[]` names the imported
//! objects; `destinationId` is set when Kibana gave one a new id (e.g. an
//! object of the same id lives in another space).

use std::fmt;

use serde::Deserialize;

/// The import answer's body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ImportResponse {
    /// Every object was imported.
    pub(super) success: bool,
    /// How many objects were imported.
    pub(super) success_count: u64,
    /// The objects that failed, one entry per error.
    #[serde(default)]
    pub(super) errors: Vec<ImportErrorEntry>,
    /// The objects that were imported.
    #[serde(default)]
    pub(super) success_results: Vec<SuccessResult>,
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct ImportErrorEntry {
    /// Saved-object id.
    pub(super) id: String,
    /// Saved-object type.
    #[serde(rename = "type")]
    pub(super) kind: String,
    /// The object's title, when Kibana knows it.
    #[serde(default)]
    pub(super) title: Option<String>,
    /// Icon and title.
    #[serde(default)]
    pub(super) meta: Option<Meta>,
    /// What went wrong.
    pub(super) error: ErrorDetail,
}

/// `meta` of an import result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct Meta {
    /// The object's title.
    #[serde(default)]
    pub(super) title: Option<String>,
}

/// `error` of an `errors[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorDetail {
    /// `conflict`, `ambiguous_conflict`, `missing_references`,
    /// `unsupported_type` or `unknown`.
    #[serde(rename = "type")]
    pub(super) kind: String,
    /// For `missing_references`: the objects that do not exist.
    #[serde(default)]
    pub(super) references: Vec<ObjectRef>,
    /// For `conflict`: the existing object it conflicts with.
    #[serde(default)]
    pub(super) destination_id: Option<String>,
    /// For `ambiguous_conflict`: the candidates.
    #[serde(default)]
    pub(super) destinations: Vec<Destination>,
    /// For `unknown`: Kibana's message.
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// A `{type, id}` pair.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct ObjectRef {
    /// Saved-object type.
    #[serde(rename = "type")]
    pub(super) kind: String,
    /// Saved-object id.
    pub(super) id: String,
}

/// A candidate of an `ambiguous_conflict`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct Destination {
    /// Id of the existing object.
    pub(super) id: String,
}

/// One entry of `successResults[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SuccessResult {
    /// Saved-object id in the file.
    pub(super) id: String,
    /// Saved-object type.
    #[serde(rename = "type")]
    pub(super) kind: String,
    /// The id Kibana stored it under, when different.
    #[serde(default)]
    pub(super) destination_id: Option<String>,
    /// Icon and title.
    #[serde(default)]
    pub(super) meta: Option<Meta>,
}

/// One object Kibana refused, for the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    /// Saved-object type.
    pub kind: String,
    /// Saved-object id.
    pub id: String,
    /// The object's title, when known.
    pub title: Option<String>,
    /// Kibana's error type, e.g. `missing_references`.
    pub error: String,
    /// The details that name what to fix, e.g. the missing references.
    pub detail: String,
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)?;
        if let Some(title) = &self.title {
            write!(f, " ({title:?})")?;
        }
        write!(f, ": {}", self.error)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl ImportErrorEntry {
    /// The entry as a failure to report.
    pub(super) fn failure(&self) -> ObjectFailure {
        let e = &self.error;
        let detail = match e.kind.as_str() {
            "missing_references" => {
                let refs: Vec<String> = e
                    .references
                    .iter()
                    .map(|r| format!("{}/{}", r.kind, r.id))
                    .collect();
                format!("missing {}", refs.join(", "))
            }
            "conflict" => match &e.destination_id {
                Some(id) => format!("conflicts with {id}"),
                None => String::new(),
            },
            "ambiguous_conflict" => {
                let ids: Vec<&str> = e.destinations.iter().map(|d| d.id.as_str()).collect();
                format!("conflicts with {}", ids.join(", "))
            }
            _ => e.message.clone().unwrap_or_default(),
        };
        let title = self
            .title
            .clone()
            .or_else(|| self.meta.as_ref().and_then(|m| m.title.clone()));
        ObjectFailure {
            kind: self.kind.clone(),
            id: self.id.clone(),
            title,
            error: e.kind.clone(),
            detail,
        }
    }
}
