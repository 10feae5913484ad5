//! Content negotiation for `/metrics`: OpenMetrics for scrapers that ask for it (Prometheus
//! does), the classic Prometheus text format (0.0.4) for everyone else (curl, promtool,
//! older agents), which names counter families with their `_total` suffix and has no
//! `# UNIT` or `# EOF` lines.

/// `Content-Type` of an OpenMetrics page.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of a Prometheus text page.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Exposition format of the metrics page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    PrometheusText,
}

impl Format {
    /// Picks the format from an `Accept` header: OpenMetrics when it is listed with a
    /// non-zero quality, Prometheus text otherwise (including no header at all).
    ///
    /// `application/openmetrics-text;version=1.0.0,text/plain;q=0.5` → OpenMetrics;
    /// `*/*` → Prometheus text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.into_iter().flat_map(|a| a.split(',')).any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let zero_q = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !zero_q
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }

    /// The `Content-Type` of a page in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::PrometheusText => PROMETHEUS_CONTENT_TYPE,
        }
    }
}

/// Rewrites an OpenMetrics page (as produced by the registry: no exemplars, no `_created`)
/// into Prometheus text: counter families renamed `name_total` in `# HELP`/`# TYPE`,
/// `# UNIT` and `# EOF` dropped; samples are unchanged.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, pending_help.take(), false);
            pending_help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let is_counter = rest.ends_with(" counter");
            flush_help(&mut out, pending_help.take(), is_counter);
            let rest = match rest.split_once(' ') {
                Some((name, kind)) if is_counter => format!("{name}_total {kind}"),
                _ => rest.to_string(),
            };
            out.push_str("# TYPE ");
            out.push_str(&rest);
            out.push('\n');
            continue;
        }
        flush_help(&mut out, pending_help.take(), false);
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, pending_help, false);
    out
}

fn flush_help(out: &mut String, help: Option<&str>, counter: bool) {
    let Some(help) = help else { return };
    out.push_str("# HELP ");
    match help.split_once(' ') {
        Some((name, text)) if counter => {
            out.push_str(name);
            out.push_str("_total ");
            out.push_str(text);
        }
        _ => out.push_str(help),
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let cases = [
            (None, Format::PrometheusText),
            (Some("*/*"), Format::PrometheusText),
            (Some("text/plain;version=0.0.4"), Format::PrometheusText),
            (
                Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
                Format::OpenMetrics,
            ),
            (
                Some("text/plain, application/openmetrics-text; q=0"),
                Format::PrometheusText,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn counters_get_their_total_name() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
                  a_requests_total{x=\"1\"} 2\n# HELP a_t Time.\n# TYPE a_t_seconds gauge\n\
                  # UNIT a_t_seconds seconds\na_t_seconds 1.5\n# EOF\n";
        let want = "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
                    a_requests_total{x=\"1\"} 2\n# HELP a_t Time.\n# TYPE a_t_seconds gauge\n\
                    a_t_seconds 1.5\n";
        assert_eq!(to_prometheus_text(om), want);
    }
}
