//! Shared helpers for kelp's integration tests: where the testbed's services are.
//!
//! A test that needs a service asks for it here. When the service's address is
//! not in the environment the test fails with a message saying how to start
//! it: under the README's test command a missing service is an error, not a skip.

use std::time::{SystemTime, UNIX_EPOCH};

/// The address of a testbed service from its environment variable.
///
/// # Errors
/// When the variable is unset: the message names the testbed command that sets it.
pub fn service(var: &str, testbed_service: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => anyhow::bail!(
            "{var} is not set: start the service with `testbed/testbed up {testbed_service}` \
             and `eval \"$(testbed/testbed env)\"`, or run `scripts/test`"
        ),
    }
}

/// A name unique to this process and moment, for topics, groups and indices.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
