//! `modelpilot-loadgen`: bounded Open Inference Protocol v2 load against a modelpilot server
//! or Service, for tests, benchmarks and the local-cluster demo. This file wires the steps:
//! check the flags, find and guard the target, read the model's metadata, build the inputs,
//! run, report.
//!
//! Exit status: 0 when the run completed, 1 when it could not start (unreachable target,
//! unknown model, Kubernetes errors), 2 on a usage error (flags, refused address, a CSV that
//! does not fit the model), 3 when `--max-error-rate` was exceeded.
#![forbid(unsafe_code)]

mod cli;
mod cluster;
mod inputs;
mod report;
mod run;
mod target;

use std::{
    io::Write,
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Parser;

use crate::{
    cli::Args,
    inputs::{ModelMetadata, Payloads, Table},
    report::{Bounds, Report, RunInfo},
    run::{Context, Plan},
    target::{AddressGuard, BaseUrl},
};

/// A mistake in how the tool was called (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn usage(message: impl ToString) -> anyhow::Error {
    Usage(message.to_string()).into()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modelpilot-loadgen: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("modelpilot-loadgen: {err:#}");
            if err.is::<Usage>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Where requests go, and the pod directory for feedback when it is a Service.
struct Target {
    base: BaseUrl,
    service: Option<String>,
    pods: Option<cluster::PodDirectory>,
}

async fn find_target(args: &Args, guard: &AddressGuard) -> anyhow::Result<Target> {
    if let Some(url) = &args.url {
        let base = BaseUrl::parse(url).map_err(usage)?;
        guard.check(base.addr.ip()).map_err(usage)?;
        return Ok(Target {
            base,
            service: None,
            pods: None,
        });
    }
    let Some(service) = &args.service else {
        return Err(usage("give --url or --service"));
    };
    let (namespace, name) = cli::split_service(service).map_err(usage)?;
    let kubeconfig = args
        .kubeconfig_file()
        .ok_or_else(|| usage("--service needs --kubeconfig or $KUBECONFIG"))?;
    let client = cluster::connect(&kubeconfig, guard)
        .await
        .map_err(refusal_is_usage)?;
    let resolved = cluster::resolve_service(
        &client,
        namespace,
        name,
        args.service_port.as_deref(),
        guard,
    )
    .await
    .map_err(refusal_is_usage)?;
    let pods = args.feedback.then(|| {
        let port = resolved.port_name.clone();
        cluster::PodDirectory::new(&client, namespace, name, port, guard.clone())
    });
    Ok(Target {
        base: resolved.base,
        service: Some(service.clone()),
        pods,
    })
}

/// A refused address is a usage error (exit 2), whatever step found it.
fn refusal_is_usage(err: anyhow::Error) -> anyhow::Error {
    if err.is::<target::TargetError>() {
        usage(format!("{err:#}"))
    } else {
        err
    }
}

async fn metadata(
    http: &reqwest::Client,
    base: &BaseUrl,
    model: &str,
) -> anyhow::Result<ModelMetadata> {
    let url = base.join(&format!("/v2/models/{model}"));
    let response = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("cannot read {url}"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not model metadata"))
}

async fn start(args: Args) -> anyhow::Result<ExitCode> {
    args.check().map_err(usage)?;
    let guard = AddressGuard::new(args.allow_cidr.clone());
    let target = find_target(&args, &guard).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(args.timeout)
        .connect_timeout(args.timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(if args.fresh_connections {
            0
        } else {
            args.concurrency
        })
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;
    let meta = metadata(&http, &target.base, &args.model).await?;
    let table = args
        .input_csv
        .as_deref()
        .map(|path| Table::read(path, args.label_column.as_deref()))
        .transpose()
        .map_err(usage)?;
    let payloads = Payloads::new(&meta, table, args.batch).map_err(usage)?;
    let info = RunInfo {
        target: target.base.to_string(),
        service: target.service.clone(),
        model: args.model.clone(),
        inputs: payloads.describe(),
        input_source: args
            .input_csv
            .as_ref()
            .map_or("random values".into(), |p| p.display().to_string()),
        bounds: Bounds {
            requests: args.requests,
            duration_seconds: args.duration.as_secs_f64(),
            concurrency: args.concurrency,
            rate: args.rate,
            timeout_seconds: args.timeout.as_secs_f64(),
            feedback: args.feedback,
        },
        max_error_rate: args.max_error_rate,
    };
    let ctx = Arc::new(Context {
        http,
        base: target.base,
        model: args.model.clone(),
        payloads,
        pods: target.pods,
        run_id: format!("lg-{:08x}", rand::random::<u32>()),
    });
    let plan = Plan {
        requests: args.requests,
        duration: args.duration,
        concurrency: args.concurrency,
        rate: args.rate,
        feedback: args.feedback,
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let finished = run::run(ctx, plan, interrupt).await;
    let report = Report::new(info, &finished.tally, finished.stopped_by, finished.elapsed);
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.table()
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        bail!("cannot write the report: {e}");
    }
    Ok(if report.error_rate_exceeded {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
