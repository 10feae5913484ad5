//! The command line: flags, their defaults and the checks that make every run bounded and
//! every combination meaningful, before anything is dialed.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use crate::target::{Cidr, DEFAULT_ALLOWED_CIDRS};

/// Most requests one run may send.
pub const MAX_REQUESTS: u64 = 10_000_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Longest wait for one answer.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Bounded Open Inference Protocol v2 load against a modelpilot server or Service, reported
/// overall, per answering pod and per revision.
///
/// A run stops after --requests requests or --duration, whichever comes first. Only
/// loopback and the --allow-cidr networks are ever dialed.
#[derive(Debug, Parser)]
#[command(name = "modelpilot-loadgen", version)]
pub struct Args {
    /// Base URL of a server or Service: http://ADDRESS:PORT (an IP address or localhost).
    #[arg(long, required_unless_present = "service", conflicts_with = "service")]
    pub url: Option<String>,
    /// Service NAMESPACE/NAME, resolved to its ClusterIP through the kubeconfig.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub service: Option<String>,
    /// Service port, by name or number (default: its only port, or the one named http).
    #[arg(long, value_name = "PORT")]
    pub service_port: Option<String>,
    /// Kubeconfig for --service (the first file of $KUBECONFIG by default).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<String>,
    /// Network that may be dialed besides loopback; repeat for several. Giving any replaces
    /// the defaults (the local cluster's pod and service networks).
    #[arg(long = "allow-cidr", value_name = "CIDR", default_values = DEFAULT_ALLOWED_CIDRS)]
    pub allow_cidr: Vec<Cidr>,
    /// Model name, as in /v2/models/NAME.
    #[arg(long)]
    pub model: String,
    /// Most requests to send (1 to 10,000,000).
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Longest time to send requests for, e.g. 30s, 500ms, 2m (at most 1h).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Requests in flight at once (closed loop: each worker waits for its answer).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Open a new connection for every request instead of keeping connections alive. A Service's
    /// ClusterIP (kube-proxy) balances connections, not requests: with a few long-lived
    /// connections one pod may get all the load; fresh connections spread it over the endpoints.
    #[arg(long)]
    pub fresh_connections: bool,
    /// Pace requests to at most this many per second over all workers (open loop).
    #[arg(long, value_name = "REQ_PER_S")]
    pub rate: Option<f64>,
    /// Longest wait for one answer, e.g. 10s (at most 5m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// CSV with a header row and numeric columns; each request sends the next --batch rows
    /// as the model's first input (cycling). Without it, inputs are random.
    #[arg(long, value_name = "FILE")]
    pub input_csv: Option<PathBuf>,
    /// Rows per request (default 1, or the model's fixed first dimension).
    #[arg(long, value_name = "K")]
    pub batch: Option<usize>,
    /// CSV column holding the true label; it is not sent as a feature.
    #[arg(long, requires = "input_csv", value_name = "NAME")]
    pub label_column: Option<String>,
    /// After each answered request, post its true labels to /v2/models/NAME/feedback.
    #[arg(long, requires = "label_column")]
    pub feedback: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit 3 when the share of failed requests exceeds this (0 to 1).
    #[arg(long, value_name = "RATE")]
    pub max_error_rate: Option<f64>,
}

impl Args {
    /// Checks the bounds and combinations clap cannot express.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            return Err(format!(
                "--requests must be 1 to {MAX_REQUESTS}: every run is bounded"
            ));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err(
                "--duration must be more than 0 and at most 1h: every run is bounded".into(),
            );
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err("--timeout must be more than 0 and at most 5m".into());
        }
        if !(1..=1024).contains(&self.concurrency) {
            return Err("--concurrency must be 1 to 1024".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0 && rate <= 100_000.0)
        {
            return Err("--rate must be more than 0 and at most 100000".into());
        }
        if let Some(batch) = self.batch
            && !(1..=10_000).contains(&batch)
        {
            return Err("--batch must be 1 to 10000".into());
        }
        if let Some(max) = self.max_error_rate
            && !(0.0..=1.0).contains(&max)
        {
            return Err("--max-error-rate must be between 0 and 1".into());
        }
        if let Some(service) = &self.service {
            split_service(service)?;
        } else if self.service_port.is_some() {
            return Err("--service-port needs --service".into());
        }
        Ok(())
    }

    /// The kubeconfig file: --kubeconfig, or the first entry of $KUBECONFIG.
    pub fn kubeconfig_file(&self) -> Option<PathBuf> {
        self.kubeconfig
            .as_deref()
            .and_then(|k| k.split(':').find(|p| !p.is_empty()))
            .map(PathBuf::from)
    }
}

/// `NAMESPACE/NAME` → (namespace, name).
pub fn split_service(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns, name))
        }
        _ => Err(format!("--service {s:?}: want NAMESPACE/NAME")),
    }
}

/// `500ms`, `30s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 30s, 2m, 1h)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args, String> {
        let base = ["modelpilot-loadgen", "--model", "iris"];
        let args = Args::try_parse_from(base.iter().chain(extra)).map_err(|e| e.to_string())?;
        args.check()?;
        Ok(args)
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("500ms", Some(Duration::from_millis(500))),
            ("30s", Some(Duration::from_secs(30))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("2m", Some(Duration::from_secs(120))),
            ("1h", Some(Duration::from_secs(3600))),
            ("7", Some(Duration::from_secs(7))),
            ("0s", Some(Duration::ZERO)),
            ("", None),
            ("s", None),
            ("3d", None),
            ("-1s", None),
            ("1e3s", None),
        ] {
            assert_eq!(parse_duration(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn defaults_are_bounded() {
        let a = args(&["--url", "http://127.0.0.1:8080"]).unwrap();
        assert_eq!(a.requests, 1000);
        assert_eq!(a.duration, Duration::from_secs(30));
        assert_eq!(a.concurrency, 1);
        let cidrs: Vec<String> = a.allow_cidr.iter().map(ToString::to_string).collect();
        assert_eq!(cidrs, DEFAULT_ALLOWED_CIDRS);
    }

    #[test]
    fn usage_errors() {
        let url = ["--url", "http://127.0.0.1:8080"];
        for (extra, want) in [
            (&[][..], "--url"),
            (
                &["--url", "http://x", "--service", "a/b"][..],
                "cannot be used with",
            ),
            (
                &[url[0], url[1], "--requests", "0"][..],
                "--requests must be",
            ),
            (
                &[url[0], url[1], "--requests", "20000000"][..],
                "--requests must be",
            ),
            (
                &[url[0], url[1], "--duration", "0s"][..],
                "--duration must be",
            ),
            (
                &[url[0], url[1], "--duration", "2h"][..],
                "--duration must be",
            ),
            (
                &[url[0], url[1], "--timeout", "0s"][..],
                "--timeout must be",
            ),
            (
                &[url[0], url[1], "--concurrency", "0"][..],
                "--concurrency must be",
            ),
            (&[url[0], url[1], "--rate", "0"][..], "--rate must be"),
            (&[url[0], url[1], "--rate", "NaN"][..], "--rate must be"),
            (&[url[0], url[1], "--batch", "0"][..], "--batch must be"),
            (
                &[url[0], url[1], "--max-error-rate", "1.5"][..],
                "--max-error-rate",
            ),
            (&[url[0], url[1], "--feedback"][..], "--label-column"),
            (&[url[0], url[1], "--label-column", "y"][..], "--input-csv"),
            (&[url[0], url[1], "--service-port", "http"][..], "--service"),
            (&["--service", "default"][..], "want NAMESPACE/NAME"),
            (&["--service", "a/b/c"][..], "want NAMESPACE/NAME"),
            (
                &[url[0], url[1], "--allow-cidr", "10.0.0.0"][..],
                "invalid CIDR",
            ),
        ] {
            let err = args(extra).err().unwrap_or_default();
            assert!(err.contains(want), "{extra:?}: {err:?}");
        }
    }

    #[test]
    fn accepted_combinations() {
        let a = args(&[
            "--service",
            "demo/iris",
            "--service-port",
            "http",
            "--kubeconfig",
            "/k:/other",
            "--input-csv",
            "iris.csv",
            "--label-column",
            "species",
            "--feedback",
            "--batch",
            "4",
            "--rate",
            "50",
            "--allow-cidr",
            "10.244.128.0/24",
        ])
        .unwrap();
        assert_eq!(a.kubeconfig_file(), Some(PathBuf::from("/k")));
        assert_eq!(
            a.allow_cidr.len(),
            1,
            "a given --allow-cidr replaces the defaults"
        );
        assert_eq!(split_service("demo/iris"), Ok(("demo", "iris")));
    }
}
