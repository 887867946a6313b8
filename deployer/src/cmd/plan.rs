//! `kelp plan`: what `kelp apply` would change, from a server-side dry run.

use clap::Args;
use kelp_deployer::apply;

use super::apply::StackArgs;

/// Arguments of `kelp plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    stack: StackArgs,
}

/// Prints the plan.
pub(crate) async fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let stack = args.stack.load()?;
    let entries = apply::plan(super::apply::client().await?, &stack).await?;
    super::write_stdout(&apply::format_plan(&entries))
}
