//! `kelp render`: every object of the stack as multi-document YAML, in
//! rollout order, for `kubectl apply` or a GitOps repository. Talks to no
//! cluster.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use kelp_deployer::manifests::{self, Object};
use kelp_deployer::stack::Stack;

/// Arguments of `kelp render`.
#[derive(Debug, Args)]
pub(crate) struct RenderArgs {
    /// The stack file (`kelp init` writes one); without it, the defaults.
    #[arg(long, value_name = "FILE", env = "KELP_STACK")]
    stack: Option<PathBuf>,
}

/// Renders the stack to stdout.
pub(crate) fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let (stack, source) = match &args.stack {
        Some(path) => (Stack::load(path)?, path.display().to_string()),
        None => {
            tracing::info!("no --stack given: rendering the defaults");
            (Stack::default(), "the defaults".to_owned())
        }
    };
    let objects = manifests::build(&stack);
    let yaml = manifests::to_yaml(&objects).context("rendering the manifests failed")?;
    super::write_stdout(&(header(&objects, &source) + &yaml))
}

/// A comment block: where the objects come from, the images they run and
/// the Secrets they expect (kelp does not generate them yet).
fn header(objects: &[Object], source: &str) -> String {
    let mut out = format!(
        "# Rendered by kelp {} from {source}: {} objects in rollout order.\n\
         # Apply with: kubectl apply --server-side -f <this file>\n",
        env!("CARGO_PKG_VERSION"),
        objects.len()
    );
    out.push_str("# Images:\n");
    for (workload, image) in manifests::images(objects) {
        let _ = writeln!(out, "#   {workload}: {image}");
    }
    let secrets = manifests::referenced_secrets(objects);
    if !secrets.is_empty() {
        out.push_str(
            "# Secrets the pods need, to create before applying (see docs/DEPLOYER.md):\n",
        );
        for (secret, keys) in secrets {
            let _ = writeln!(out, "#   {secret}: {}", keys.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_lists_images_and_secrets() {
        let objects = manifests::build(&Stack::default());
        let header = header(&objects, "stack.yaml");
        assert!(header.contains("from stack.yaml"), "{header}");
        assert!(
            header.contains(&format!(
                "kelp-collector: ghcr.io/kelp-project/kelp-collector:{}",
                env!("CARGO_PKG_VERSION")
            )),
            "{header}"
        );
        assert!(
            header.contains("elasticsearch-certs: ca.crt, tls.crt, tls.key"),
            "{header}"
        );
        assert!(header.lines().all(|line| line.starts_with('#')));
    }
}
