//! `kelp dashboards import`: the Kibana import on its own, for a Kibana that
//! `kelp apply` did not install or to re-import after editing the objects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kelp_deployer::kibana::{ImportOptions, KibanaAuth, KibanaTarget, import_dashboards};
use reqwest::Url;

/// `kelp dashboards ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DashboardsCommand {
    /// Import the "Kubernetes container logs" dashboard into Kibana.
    ///
    /// Waits until Kibana is available, imports the dashboard with its data
    /// view (`kelp-logs-*`), saved searches and visualisations, and makes that
    /// data view the space's default. Safe to run again: objects are
    /// overwritten by id. Works with Kibana 7.17, 8.x and 9.x. Progress goes
    /// to stderr, the result to stdout.
    Import(ImportArgs),
}

/// Arguments of `kelp dashboards import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Kibana's URL, with its base path if it has one, e.g.
    /// https://kibana.logging.svc:5601 or https://example.org/kibana.
    #[arg(long, value_name = "URL")]
    url: Url,
    /// Kibana space to import into; the default space when absent.
    #[arg(long, value_name = "SPACE")]
    space: Option<String>,
    /// User for basic authentication; needs --password-file.
    #[arg(
        long,
        value_name = "USER",
        requires = "password_file",
        conflicts_with = "api_key_file"
    )]
    username: Option<String>,
    /// File holding the password of --username (a trailing newline is ignored).
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// File holding an API key's `encoded` value (base64 of `id:api_key`),
    /// sent as `Authorization: ApiKey <encoded>`.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for Kibana's TLS certificate.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Seconds to wait in total for Kibana to be available and to take the
    /// import (a fresh Kibana migrates its saved objects first).
    #[arg(long, value_name = "N", default_value_t = 300)]
    timeout_secs: u64,
    /// Leave the space's default data view as it is.
    #[arg(long)]
    no_default_data_view: bool,
}

/// Runs a `kelp dashboards` subcommand.
pub(crate) async fn run(command: DashboardsCommand) -> anyhow::Result<()> {
    match command {
        DashboardsCommand::Import(args) => import(&args).await,
    }
}

async fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let target = target(args)?;
    let options = ImportOptions {
        timeout: Duration::from_secs(args.timeout_secs),
        set_default_data_view: !args.no_default_data_view,
        ..ImportOptions::default()
    };
    let report = import_dashboards(&target, &options).await?;
    let version = report
        .kibana_version
        .as_deref()
        .unwrap_or("(version not reported)");
    println!(
        "imported {} saved objects into Kibana {version}",
        report.imported.len()
    );
    if let Some(id) = &report.default_data_view {
        println!(
            "default data view: {id} ({})",
            kelp_dashboards::DATA_VIEW_TITLE
        );
    }
    let dashboard = report.stored_id("dashboard", kelp_dashboards::DASHBOARD_ID);
    println!("dashboard: {}", dashboard_url(&target, &dashboard));
    Ok(())
}

/// The target the arguments describe, with the secrets read from their files.
fn target(args: &ImportArgs) -> anyhow::Result<KibanaTarget> {
    let auth = match (&args.username, &args.password_file, &args.api_key_file) {
        (Some(username), Some(password_file), None) => KibanaAuth::Basic {
            username: username.clone(),
            password: read_secret(password_file, "password")?,
        },
        (None, None, Some(key_file)) => KibanaAuth::ApiKey {
            encoded: read_secret(key_file, "api key")?,
        },
        (None, None, None) => KibanaAuth::None,
        // clap's `requires` and `conflicts_with` rule the rest out.
        _ => anyhow::bail!(
            "reading the credentials failed: give --username with --password-file, or --api-key-file"
        ),
    };
    let ca_certificates_pem = match &args.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the ca file {} failed", path.display()))?,
        ),
        None => None,
    };
    Ok(KibanaTarget {
        url: args.url.clone(),
        space: args.space.clone(),
        auth,
        ca_certificates_pem,
    })
}

/// A secret from a file, without the trailing newline editors and
/// `kubectl get secret ... | base64 -d > file` leave.
fn read_secret(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {} failed", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        anyhow::bail!(
            "reading the {what} file {} failed: it is empty",
            path.display()
        );
    }
    Ok(secret.to_owned())
}

/// Where the dashboard opens in Kibana's UI.
fn dashboard_url(target: &KibanaTarget, id: &str) -> String {
    let base = target.url.as_str().trim_end_matches('/');
    let space = match target.space.as_deref() {
        None | Some("default") => String::new(),
        Some(space) => format!("/s/{space}"),
    };
    format!("{base}{space}/app/dashboards#/view/{id}")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: DashboardsCommand,
    }

    fn parse(args: &[&str]) -> Result<ImportArgs, clap::Error> {
        let argv = ["dashboards", "import"].iter().chain(args);
        Wrapper::try_parse_from(argv).map(|w| match w.command {
            DashboardsCommand::Import(args) => args,
        })
    }

    fn file(content: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), content).unwrap();
        file
    }

    #[test]
    fn credentials_come_in_pairs_or_as_a_key() {
        let url = ["--url", "http://kibana:5601"];
        let ok: &[&[&str]] = &[
            &[],
            &["--username", "elastic", "--password-file", "/p"],
            &["--api-key-file", "/k"],
            &[
                "--space",
                "team-a",
                "--timeout-secs",
                "60",
                "--no-default-data-view",
            ],
        ];
        for extra in ok {
            let args: Vec<&str> = url.iter().chain(extra.iter()).copied().collect();
            assert!(parse(&args).is_ok(), "{args:?}");
        }
        let bad: &[&[&str]] = &[
            &["--username", "elastic"],
            &["--password-file", "/p"],
            &[
                "--username",
                "elastic",
                "--password-file",
                "/p",
                "--api-key-file",
                "/k",
            ],
            &["--timeout-secs", "soon"],
        ];
        for extra in bad {
            let args: Vec<&str> = url.iter().chain(extra.iter()).copied().collect();
            assert!(parse(&args).is_err(), "{args:?}");
        }
        assert!(parse(&[]).is_err(), "--url is required");
        assert!(parse(&["--url", "not a url"]).is_err());
    }

    #[test]
    fn secrets_are_read_from_files_without_the_trailing_newline() {
        let password = file("s3cret\n");
        let password_path = password.path().to_str().unwrap();
        let args = parse(&[
            "--url",
            "https://kibana:5601",
            "--username",
            "elastic",
            "--password-file",
            password_path,
        ])
        .unwrap();
        assert_eq!(
            target(&args).unwrap().auth,
            KibanaAuth::Basic {
                username: "elastic".to_owned(),
                password: "s3cret".to_owned()
            }
        );
        let key = file("a2VscC1pZDprZWxwLWtleQ==\r\n");
        let key_path = key.path().to_str().unwrap();
        let args = parse(&["--url", "https://kibana:5601", "--api-key-file", key_path]).unwrap();
        assert_eq!(
            target(&args).unwrap().auth,
            KibanaAuth::ApiKey {
                encoded: "a2VscC1pZDprZWxwLWtleQ==".to_owned()
            }
        );
    }

    #[test]
    fn an_empty_or_missing_secret_file_is_an_error_naming_it() {
        let empty = file("\n");
        let empty_path = empty.path().to_str().unwrap();
        let args = parse(&["--url", "https://kibana:5601", "--api-key-file", empty_path]).unwrap();
        let message = format!("{:#}", target(&args).unwrap_err());
        assert!(message.contains("api key file"), "{message}");
        assert!(message.contains("empty"), "{message}");

        let args = parse(&[
            "--url",
            "https://kibana:5601",
            "--api-key-file",
            "/nonexistent/kelp-key",
        ])
        .unwrap();
        let message = format!("{:#}", target(&args).unwrap_err());
        assert!(message.contains("/nonexistent/kelp-key"), "{message}");
    }

    #[test]
    fn the_dashboard_url_keeps_the_base_path_and_space() {
        let target = |url: &str, space: Option<&str>| KibanaTarget {
            url: Url::parse(url).unwrap(),
            space: space.map(str::to_owned),
            auth: KibanaAuth::None,
            ca_certificates_pem: None,
        };
        assert_eq!(
            dashboard_url(&target("https://k:5601", None), "d"),
            "https://k:5601/app/dashboards#/view/d"
        );
        assert_eq!(
            dashboard_url(&target("https://example.org/kibana/", Some("team-a")), "d"),
            "https://example.org/kibana/s/team-a/app/dashboards#/view/d"
        );
    }
}
