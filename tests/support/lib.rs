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

/// The path of a workspace binary built by `cargo build --workspace --bins`
/// (which `scripts/test` runs before the integration tests).
///
/// # Errors
/// When the binary is missing: the message says how to build it.
pub fn binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .ok_or_else(|| anyhow::anyhow!("locating target dir from {}", exe.display()))?;
    let path = profile_dir.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    Ok(path)
}

/// Runs `testbed/testbed VERB SERVICE` (e.g. `stop kafka`) for fault injection.
///
/// # Errors
/// When the testbed command fails.
pub fn testbed(verb: &str, service: &str) -> anyhow::Result<()> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testbed")
        .join("testbed");
    let status = std::process::Command::new(script)
        .args([verb, service])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "testbed {verb} {service} failed: {status}"
    );
    Ok(())
}

/// [`binary`], refusing a binary older than a source file under one of the
/// workspace folders `sources`: a stale binary would test old code. Cargo
/// builds other packages' binaries only for their own tests, so e.g.
/// `cargo build -p kelp-shipper` must run before `cargo test -p kelp-tests`
/// (`scripts/test` and `cargo test --workspace` build them).
///
/// # Errors
/// When the binary is missing or older than its sources.
pub fn fresh_binary(name: &str, sources: &[&str]) -> anyhow::Result<std::path::PathBuf> {
    let path = binary(name)?;
    let built = std::fs::metadata(&path).and_then(|m| m.modified())?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("locating the workspace root failed"))?;
    for source in sources {
        if let Some(newer) = newer_file(&root.join(source), built) {
            anyhow::bail!(
                "{} is older than {}: run `cargo build --workspace --bins` first",
                path.display(),
                newer.display()
            );
        }
    }
    Ok(path)
}

/// A `.rs` file under `dir` modified after `than`.
fn newer_file(dir: &std::path::Path, than: SystemTime) -> Option<std::path::PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = newer_file(&path, than) {
                return Some(found);
            }
            continue;
        }
        // Only sources: a manifest change (e.g. a dev-dependency) need not
        // relink the binary.
        let relevant = path.extension().is_some_and(|e| e == "rs");
        let modified = entry.metadata().and_then(|m| m.modified()).ok();
        if relevant && modified.is_some_and(|m| m > than) {
            return Some(path);
        }
    }
    None
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `kubectl` of the testbed (`KELP_KUBECTL`), else the one on `PATH`.
pub fn kubectl() -> std::process::Command {
    std::process::Command::new(
        std::env::var("KELP_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()),
    )
}

/// A namespace a test owns: deleted (without waiting) when the guard drops,
/// whether the test passed or failed.
#[derive(Debug)]
pub struct TestNamespace(pub String);

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl()
            .args([
                "delete",
                "namespace",
                &self.0,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
