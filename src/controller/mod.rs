//! The operator process.

pub mod validate;

/// Flags of `modelpilot controller`.
#[derive(clap::Args, Debug)]
pub struct ControllerArgs {}

/// Entry point of `modelpilot controller`.
pub fn main(_args: ControllerArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
