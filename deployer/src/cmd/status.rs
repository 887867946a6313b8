//! `kelp status`: the state of every component; fails when one is not healthy.

use clap::Args;
use kelp_deployer::apply;

use super::apply::{EndpointArgs, StackArgs};

/// Arguments of `kelp status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    endpoints: EndpointArgs,
}

/// Prints the status; an error (exit code 1) when the stack is not healthy.
pub(crate) async fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let stack = args.stack.load()?;
    let endpoints = args.endpoints.parse(&stack)?;
    let report = apply::status(super::apply::client().await?, &stack, &endpoints).await?;
    super::write_stdout(&report.to_string())?;
    anyhow::ensure!(
        report.healthy(),
        "checking the stack in namespace {} failed: not healthy (see above)",
        stack.namespace
    );
    Ok(())
}
