//! What a pod's and its namespace's annotations decide for one container's
//! log file: whether it is shipped, and which multiline rule joins it.
//!
//! Each annotation key is looked up on the pod first and on the namespace
//! second: the pod wins, key by key, so a pod can opt back in with
//! `kelp.io/exclude: "false"` in an excluded namespace.

use std::collections::BTreeMap;

use crate::parse::multiline::RuleName;

/// Excludes the whole pod when `"true"`.
pub const EXCLUDE: &str = "kelp.io/exclude";
/// Excludes the listed containers: `"a,b"`.
pub const EXCLUDE_CONTAINERS: &str = "kelp.io/exclude-containers";
/// The multiline rule of the pod's containers: `none`, `java`, `go`, `python`.
pub const MULTILINE: &str = "kelp.io/multiline";
/// Fluent Bit's: excludes the whole pod when `"true"`.
pub const FLUENTBIT_EXCLUDE: &str = "fluentbit.io/exclude";
/// Filebeat's: excludes the whole pod when `"false"`.
pub const ELASTIC_ENABLED: &str = "co.elastic.logs/enabled";

/// Whether the collector keeps an annotation to decide with.
pub fn is_decision_annotation(key: &str) -> bool {
    key.starts_with("kelp.io/")
        || key == FLUENTBIT_EXCLUDE
        || (key.starts_with("co.elastic.logs") && key.ends_with("/enabled"))
}

/// Why a file is not shipped; bounded, fit for a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// `kelp.io/exclude: "true"`.
    Pod,
    /// The container is listed in `kelp.io/exclude-containers`.
    Container,
    /// `fluentbit.io/exclude: "true"`.
    FluentBit,
    /// `co.elastic.logs/enabled: "false"` or `co.elastic.logs.<container>/enabled: "false"`.
    Elastic,
}

impl Exclusion {
    /// The annotation that excluded the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Pod => EXCLUDE,
            Exclusion::Container => EXCLUDE_CONTAINERS,
            Exclusion::FluentBit => FLUENTBIT_EXCLUDE,
            Exclusion::Elastic => ELASTIC_ENABLED,
        }
    }
}

/// What the annotations decide for one container's file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Set when the file is not shipped.
    pub excluded: Option<Exclusion>,
    /// The multiline rule chosen by annotation; `None` keeps the configured one.
    pub multiline: Option<RuleName>,
    /// Annotations whose value is not understood (ignored), as `key=value`.
    pub invalid: Vec<String>,
}

/// Decides for `container` from the pod's and the namespace's annotations.
///
/// Exclusion, any of: `kelp.io/exclude: "true"`, `container` listed in
/// `kelp.io/exclude-containers`, `fluentbit.io/exclude: "true"`,
/// `co.elastic.logs/enabled: "false"` or
/// `co.elastic.logs.<container>/enabled: "false"`. Multiline:
/// `kelp.io/multiline.<container>`, else `kelp.io/multiline`. Booleans are
/// `true`/`false` in any case; any other value is ignored and reported in
/// [`Decision::invalid`].
pub fn decide(
    pod: &BTreeMap<String, String>,
    namespace: &BTreeMap<String, String>,
    container: &str,
) -> Decision {
    let get = |key: &str| pod.get(key).or_else(|| namespace.get(key));
    let mut invalid = Vec::new();
    let mut flag = |key: &str| -> Option<bool> {
        let value = get(key)?;
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                invalid.push(format!("{key}={value}"));
                None
            }
        }
    };
    let elastic_container = format!("co.elastic.logs.{container}/enabled");
    let excluded = if flag(EXCLUDE) == Some(true) {
        Some(Exclusion::Pod)
    } else if get(EXCLUDE_CONTAINERS).is_some_and(|list| {
        list.split(',')
            .any(|name| name.trim() == container && !container.is_empty())
    }) {
        Some(Exclusion::Container)
    } else if flag(FLUENTBIT_EXCLUDE) == Some(true) {
        Some(Exclusion::FluentBit)
    } else if flag(&elastic_container).or_else(|| flag(ELASTIC_ENABLED)) == Some(false) {
        Some(Exclusion::Elastic)
    } else {
        None
    };
    let per_container = format!("{MULTILINE}.{container}");
    // Pod first, per key; the container's key before the pod-wide one.
    let rule_value = pod
        .get(&per_container)
        .or_else(|| pod.get(MULTILINE))
        .or_else(|| namespace.get(&per_container))
        .or_else(|| namespace.get(MULTILINE));
    let multiline = rule_value.and_then(|value| match value.parse::<RuleName>() {
        Ok(rule) => Some(rule),
        Err(_) => {
            invalid.push(format!("{MULTILINE}={value}"));
            None
        }
    });
    Decision {
        excluded,
        multiline,
        invalid,
    }
}
