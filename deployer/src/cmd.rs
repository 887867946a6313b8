//! `kelp`'s subcommands, one module each.

pub(crate) mod dashboards;
