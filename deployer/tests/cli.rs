//! `kelp init` and `kelp render` as a user runs them: the binary, its
//! output streams and its exit status.

use std::io::Read as _;
use std::process::{Command, Stdio};

fn kelp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kelp"))
        .args(args)
        .env_remove("KELP_STACK")
        .output()
        .unwrap_or_else(|error| panic!("running kelp {args:?} failed: {error}"))
}

#[test]
fn init_then_render_gives_the_defaults() {
    let init = kelp(&["init"]);
    assert!(init.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.yaml");
    std::fs::write(&path, &init.stdout).unwrap();

    let from_file = kelp(&["render", "--stack", path.to_str().unwrap()]);
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let defaults = kelp(&["render"]);
    assert!(defaults.status.success());
    let strip_header = |out: &[u8]| {
        let text = String::from_utf8(out.to_vec()).unwrap();
        text.lines()
            .skip_while(|line| line.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip_header(&from_file.stdout),
        strip_header(&defaults.stdout)
    );
    let text = String::from_utf8(from_file.stdout).unwrap();
    assert!(text.starts_with("# Rendered by kelp"));
    assert!(text.contains("\n---\napiVersion: v1\nkind: Namespace\n"));
    assert!(text.contains("kind: DaemonSet"));
    // Progress goes to stderr, never into the manifests.
    assert!(String::from_utf8_lossy(&defaults.stderr).contains("rendering the defaults"));
}

#[test]
fn a_bad_stack_file_fails_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.yaml");
    std::fs::write(&path, "kafka: {min_insync_replicas: 5}\n").unwrap();
    let out = kelp(&["render", "--stack", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no partial manifests");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kafka.min_insync_replicas"), "{stderr}");

    let missing = kelp(&["render", "--stack", "/nonexistent/stack.yaml"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/stack.yaml"));
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kelp"))
        .arg("render")
        .env_remove("KELP_STACK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing our end before kelp writes is what `| head -0` does: the
    // write fails with EPIPE (the output would fit in the pipe's buffer).
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
