//! The `modelpilot` binary: one executable for the operator (`controller`), the
//! inference server injected into every model pod (`serve`) and the CRD generator (`crd`).
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller(args) => modelpilot::controller::main(args),
        Command::Serve(args) => modelpilot::serve::main(args),
        Command::Signature(args) => modelpilot::serve::signature::main(args),
        Command::Crd => modelpilot::api::crd_yaml().map(|yaml| print!("{yaml}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
