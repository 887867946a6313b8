//! The command line of the built binary: help, version and `check-config`.
//! (Cargo builds a package's binaries for its integration tests, so this
//! file is also what makes `cargo test --workspace` build `kelp-shipper`
//! for the service-backed tests in `tests/it`.)

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kelp-shipper");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KELP_SHIPPER_CONFIG")
        .env_remove("KELP_LOG")
        .env_remove("KELP_LOG_FORMAT")
        .output()
        .expect("running kelp-shipper")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("kelp-shipper {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["run", "check-config", "--log-format", "SIGTERM"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let out = run(&["run", "--help"]);
    assert!(text(&out.stdout).contains("--config"));
}

#[test]
fn check_config_prints_the_effective_config_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shipper.yaml");
    std::fs::write(
        &path,
        "kafka:\n  bootstrap_servers: [k:9092]\n  topics: [kelp-events]\n  properties:\n    sasl.password: hunter2\n    security.protocol: SASL_SSL\nelasticsearch:\n  urls: [http://e:9200]\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("hunter2"), "{stdout}");
    let config: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["kafka"]["properties"]["sasl.password"], "***");
    assert_eq!(
        config["kafka"]["properties"]["security.protocol"],
        "SASL_SSL"
    );
    // Defaults are filled in.
    assert_eq!(config["bulk"]["max_events"], 5000);
    assert_eq!(config["dead_letter"]["topic"], "kelp-dead-letter");
}

#[test]
fn check_config_reads_toml_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shipper.toml");
    std::fs::write(
        &path,
        "[kafka]\nbootstrap_servers = [\"k:9092\"]\ntopics = [\"t\"]\n\n[elasticsearch]\nurls = [\"http://e:9200\"]\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn check_config_names_the_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "kafka:\n  bootstrap_servers: [k:9092]\n  topics: [t]\nelasticsearch:\n  urls: [http://e:9200]\nbulk:\n  max_byte: 10\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("max_byte"), "{stderr}");

    // The example names secret files that do not exist here.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = run(&["check-config", "--config", example]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("loading secret failed"), "{stderr}");

    let out = run(&["check-config", "--config", "/nonexistent/shipper.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reading config file"));
}
