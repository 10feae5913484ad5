//! The `modelpilot` binary: one executable for the operator (`controller`), the
//! inference server injected into every model pod (`serve`), the CRD generator (`crd`) and the
//! kubectl plugin (`plugin`, or started as `kubectl-modelpilot`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// modelpilot: from an ONNX file in a bucket to a production service that watches itself.
#[derive(Parser)]
#[command(name = "modelpilot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: reconcile ModelDeployments into inference pods.
    Controller(modelpilot::controller::ControllerArgs),
    /// Run the ONNX Runtime inference server (Open Inference Protocol v2).
    Serve(modelpilot::serve::ServeArgs),
    /// Print a model's inputs and outputs (JSON), also into the termination message file.
    Signature(modelpilot::serve::signature::SignatureArgs),
    /// Print the CustomResourceDefinition YAML generated from the Rust types.
    Crd,
    /// The kubectl plugin (`kubectl modelpilot …`) without its symlink: rollout verbs and views.
    Plugin(modelpilot::plugin::PluginArgs),
    /// Write the baseline profile (bins, categories) of a training data file (CSV or .npy).
    Profile(modelpilot::drift::cli::ProfileArgs),
    /// Compare a data file with a baseline profile; print the drift report (JSON).
    Drift(modelpilot::drift::cli::DriftArgs),
}

fn main() -> ExitCode {
    // Started as `kubectl-modelpilot` (kubectl runs it for `kubectl modelpilot …`).
    if modelpilot::plugin::invoked_as_plugin() {
        return modelpilot::plugin::main(modelpilot::plugin::parse_plugin_command_line());
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller(args) => modelpilot::controller::main(args),
        Command::Serve(args) => modelpilot::serve::main(args),
        Command::Signature(args) => modelpilot::serve::signature::main(args),
        Command::Crd => modelpilot::api::crd_yaml().map(|yaml| print!("{yaml}")),
        Command::Plugin(args) => return modelpilot::plugin::main(args),
        Command::Profile(args) => modelpilot::drift::cli::profile(args),
        Command::Drift(args) => modelpilot::drift::cli::drift(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
