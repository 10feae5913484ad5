//! `kubectl modelpilot status`: the rollout state a person needs at a glance, rendered from the
//! object alone (status plus `spec.rollout.steps`), as a pure function of the object and the
//! current time so fixtures test it exactly.
//!
//! With `spec.monitoring` and `spec.retraining` it adds a few lines below the rollout: the last
//! evaluation of the stable revision (drift, prediction shift, accuracy on feedback) and the
//! retraining in flight, or the last one; `kubectl modelpilot history` has the full story.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::history::{approve_hint, candidate_text, retrain_phase_str, trigger_text};
use crate::api::{
    AccuracyStatus, DistributionStatus, MeasurementVerdict, MetricStatus, ModelDeployment,
    ModelDeploymentStatus, MonitoringStatus, Phase, RequestAck, RetrainPhase, RetrainingStatus,
    RolloutPhase, RolloutRevision, RolloutStatus, RolloutStep,
};

/// Width of the label column.
const LABEL: usize = 14;

/// The status summary of `mdep` as of `now`.
pub fn render_status(mdep: &ModelDeployment, now: Timestamp) -> String {
    let name = mdep.metadata.name.as_deref().unwrap_or_default();
    let namespace = mdep.metadata.namespace.as_deref().unwrap_or("default");
    let default = ModelDeploymentStatus::default();
    let status = mdep.status.as_ref().unwrap_or(&default);
    let steps = mdep
        .spec
        .rollout
        .as_ref()
        .map(|r| r.steps.as_slice())
        .unwrap_or_default();

    let mut lines = vec![line("Name", format!("{namespace}/{name}"))];
    let rollout_phase = status.rollout.as_ref().map(|r| r.phase).unwrap_or_default();
    lines.push(line(
        "Phase",
        format!(
            "{} (ModelDeployment {}, {}/{} ready)",
            rollout_phase_str(rollout_phase),
            phase_str(status.phase),
            status.ready_replicas,
            mdep.spec.replicas
        ),
    ));
    lines.push(line("Stable", stable_revision(status)));
    match &status.rollout {
        Some(rollout) => rollout_lines(&mut lines, rollout, steps, now),
        None => lines.push(line("Canary", "none".into())),
    }
    if let Some(monitoring) = &status.monitoring {
        monitoring_lines(&mut lines, monitoring, now);
    }
    if let Some(text) = status
        .retraining
        .as_ref()
        .and_then(|r| retraining(name, r, now))
    {
        lines.push(line("Retraining", text));
    }
    lines.push(String::new());
    lines.join("\n")
}

/// The lines describing `status.rollout`.
fn rollout_lines(
    lines: &mut Vec<String>,
    rollout: &RolloutStatus,
    steps: &[RolloutStep],
    now: Timestamp,
) {
    let canary = rollout.canary.as_ref().map_or("none".into(), revision);
    lines.push(line("Canary", canary));
    lines.push(line("Step", step(rollout.current_step, steps)));
    if let Some(started) = &rollout.step_started_at {
        lines.push(line("Step started", when(started, now)));
    }
    lines.push(line(
        "Weight",
        format!(
            "desired {}%, applied {}%",
            rollout.desired_weight, rollout.applied_weight
        ),
    ));
    if let Some(pause) = &rollout.pause {
        lines.push(line(
            "Paused",
            format!(
                "{}: {}; since {}",
                pause.reason,
                pause.message,
                when(&pause.since, now)
            ),
        ));
    }
    if let Some(abort) = &rollout.abort {
        lines.push(line(
            "Aborted",
            format!(
                "{}: {}; at {}",
                abort.reason,
                abort.message,
                when(&abort.at, now)
            ),
        ));
    }
    if !rollout.metrics.is_empty() {
        lines.push("Analysis:".into());
        for metric in &rollout.metrics {
            metric_lines(lines, metric, now);
        }
    }
    if let Some(ack) = &rollout.last_request {
        lines.push(line("Last request", last_request(ack, now)));
    }
}

/// A metric's tally, then its stored measurements, oldest first.
fn metric_lines(lines: &mut Vec<String>, metric: &MetricStatus, now: Timestamp) {
    let mut tally = format!(
        "  {} ({}): {} taken, {} successful, {} failed, {} inconclusive",
        metric.name,
        metric.scope,
        metric.taken,
        metric.successful,
        metric.failed,
        metric.inconclusive
    );
    if metric.consecutive_errors > 0 {
        tally.push_str(&format!(
            ", {} source error(s) in a row",
            metric.consecutive_errors
        ));
    }
    lines.push(tally);
    for m in &metric.measurements {
        let mut text = format!(
            "    {}  canary {}  stable {}  samples {}  {}",
            when(&m.at, now),
            value(m.canary),
            value(m.stable),
            m.samples,
            verdict_str(m.verdict)
        );
        if !m.message.is_empty() {
            text.push_str(&format!(": {}", m.message));
        }
        lines.push(text);
    }
}

/// Features the status names in a drift line before `+N more`.
const STATUS_FEATURES: usize = 5;

/// `Monitoring:` and one line per check that ran: drift, prediction shift, accuracy on feedback.
fn monitoring_lines(lines: &mut Vec<String>, m: &MonitoringStatus, now: Timestamp) {
    let last = m.last_evaluation.as_ref().map_or_else(
        || "no evaluation yet".to_string(),
        |at| format!("last {}", when(at, now)),
    );
    lines.push(line(
        "Monitoring",
        format!(
            "revision {}, {} evaluation(s), {last}",
            m.revision, m.evaluations
        ),
    ));
    if !m.message.is_empty() {
        lines.push(line("  not run", m.message.clone()));
    }
    if let Some(drift) = &m.drift {
        lines.push(line("  drift", distribution(drift, Finding::Drift)));
    }
    if let Some(prediction) = &m.prediction {
        lines.push(line(
            "  prediction",
            distribution(prediction, Finding::Shift),
        ));
    }
    if let Some(accuracy) = &m.accuracy {
        lines.push(line("  feedback", feedback(accuracy)));
    }
}

/// Which distribution check a line describes.
#[derive(Clone, Copy)]
enum Finding {
    /// Input drift (names its features; its condition is `Drifted`).
    Drift,
    /// Prediction shift.
    Shift,
}

/// `drifted: petal_length (1200 samples); 2 of the last 3 windows drifted, persistent (Drifted)`.
fn distribution(d: &DistributionStatus, finding: Finding) -> String {
    let (word, past, condition) = match finding {
        Finding::Drift => ("drift", "drifted", " (Drifted)"),
        Finding::Shift => ("shift", "shifted", ""),
    };
    let mut text = match d.drift {
        Some(true) if matches!(finding, Finding::Drift) && !d.drifted_features.is_empty() => {
            format!(
                "{past}: {}",
                feature_list(&d.drifted_features, STATUS_FEATURES)
            )
        }
        Some(true) => past.into(),
        Some(false) => format!("no {word}"),
        None => "no verdict (too few samples)".into(),
    };
    if let Some(samples) = d.features.iter().map(|f| f.samples).max() {
        text.push_str(&format!(" ({samples} samples)"));
    }
    text.push_str(&recent(&d.recent, past, d.persistent, condition));
    text
}

/// `accuracy 0.81 vs 0.95 at promotion (200 labels); 2 of the last 3 windows degraded, …`.
fn feedback(a: &AccuracyStatus) -> String {
    let mut text = match a.value {
        Some(v) => format!("{} {}", a.metric, value(Some(v))),
        None => format!("{} no verdict", a.metric),
    };
    if let Some(at_promotion) = a.at_promotion {
        text.push_str(&format!(" vs {} at promotion", value(Some(at_promotion))));
    }
    text.push_str(&format!(" ({} labels)", a.labels));
    text.push_str(&recent(
        &a.recent,
        "degraded",
        a.persistent,
        " (AccuracyDegraded)",
    ));
    text
}

/// `; 2 of the last 3 windows drifted, persistent (Drifted)`; empty before any verdict.
fn recent(verdicts: &[bool], past: &str, persistent: bool, condition: &str) -> String {
    if verdicts.is_empty() {
        return String::new();
    }
    let found = verdicts.iter().filter(|v| **v).count();
    let mut text = match verdicts.len() {
        1 => format!("; {found} of the last window {past}"),
        n => format!("; {found} of the last {n} windows {past}"),
    };
    if persistent {
        text.push_str(&format!(", persistent{condition}"));
    }
    text
}

/// The retraining in flight (there is at most one), else the last one that finished; `None`
/// before the first trigger.
fn retraining(name: &str, r: &RetrainingStatus, now: Timestamp) -> Option<String> {
    let record = r
        .history
        .iter()
        .rev()
        .find(|r| !r.phase.finished())
        .or(r.history.last())?;
    let id = record.id;
    let phase = retrain_phase_str(record.phase);
    let trigger = trigger_text(&record.trigger, STATUS_FEATURES);
    let job = record
        .job
        .as_deref()
        .map_or_else(|| "no Job yet".to_string(), |job| format!("Job {job}"));
    Some(match record.phase {
        RetrainPhase::AwaitingApproval => format!(
            "#{id} {phase}: {trigger} at {}; {}",
            when(&record.trigger.at, now),
            approve_hint(name)
        ),
        RetrainPhase::Running => match &record.started_at {
            Some(started) => format!(
                "#{id} {phase}: {job} since {}; {trigger}",
                when(started, now)
            ),
            None => format!("#{id} {phase}: {job}; {trigger}"),
        },
        RetrainPhase::Candidate => format!(
            "#{id} {phase}: {} from {job}, in the rollout; {trigger}",
            candidate_text(record).unwrap_or_else(|| "the result".into())
        ),
        _ => {
            let at = record
                .finished_at
                .as_ref()
                .map_or_else(String::new, |at| format!(" {}", when(at, now)));
            let said = if record.message.is_empty() {
                String::new()
            } else {
                format!(": {}", record.message)
            };
            format!("last #{id} {phase}{at}{said}")
        }
    })
}

/// Names joined by `, `, at most `max` of them, then `+N more`.
///
/// ```
/// use modelpilot::plugin::render::feature_list;
///
/// let names = ["a", "b", "c", "d"].map(String::from);
/// assert_eq!(feature_list(&names, 4), "a, b, c, d");
/// assert_eq!(feature_list(&names, 2), "a, b, +2 more");
/// ```
pub fn feature_list(names: &[String], max: usize) -> String {
    let mut shown: Vec<String> = names.iter().take(max).cloned().collect();
    if names.len() > max {
        shown.push(format!("+{} more", names.len() - max));
    }
    shown.join(", ")
}

/// `status.stable`, or the spec's revision while no rollout has recorded a stable one.
fn stable_revision(status: &ModelDeploymentStatus) -> String {
    match (&status.stable, &status.revision) {
        (Some(stable), _) => revision(stable),
        (None, Some(current)) => revision(&RolloutRevision {
            name: current.name.clone(),
            uri: current.uri.clone(),
            sha256: current.sha256.clone(),
            version: current.version.clone(),
            ..Default::default()
        }),
        (None, None) => "none yet".into(),
    }
}

/// `v2 (revision 7f9a0c1d2e) s3://models/iris/2/model.onnx sha256:1a2b3c4d5e6f`.
///
/// ```
/// use modelpilot::api::RolloutRevision;
/// use modelpilot::plugin::render::revision;
///
/// let r = RolloutRevision {
///     name: "7f9a0c1d2e".into(),
///     uri: "s3://models/iris/2/model.onnx".into(),
///     sha256: Some("1a2b3c4d5e6f7a8b9c0d".into()),
///     version: Some("v2".into()),
///     ..Default::default()
/// };
/// assert_eq!(revision(&r), "v2 (revision 7f9a0c1d2e) s3://models/iris/2/model.onnx sha256:1a2b3c4d5e6f");
/// ```
pub fn revision(r: &RolloutRevision) -> String {
    let mut text = format!(
        "{} (revision {}) {}",
        r.version.as_deref().unwrap_or("unversioned"),
        r.name,
        r.uri
    );
    if let Some(sha) = &r.sha256 {
        let short: String = sha.chars().take(12).collect();
        text.push_str(&format!(" sha256:{short}"));
    }
    text
}

/// `2/4: pause 60s`, counting steps from 1; `4/4: all steps done` once past the last one.
///
/// ```
/// use modelpilot::api::RolloutStep;
/// use modelpilot::plugin::render::step;
///
/// let steps = [
///     RolloutStep { set_weight: Some(20), ..Default::default() },
///     RolloutStep { set_weight: Some(50), ..Default::default() },
/// ];
/// assert_eq!(step(1, &steps), "2/2: setWeight 50%");
/// assert_eq!(step(2, &steps), "2/2: all steps done");
/// assert_eq!(step(0, &[]), "no steps: promoted once ready");
/// ```
pub fn step(current: i32, steps: &[RolloutStep]) -> String {
    let total = steps.len();
    if total == 0 {
        return "no steps: promoted once ready".into();
    }
    let index = usize::try_from(current).unwrap_or_default();
    match steps.get(index) {
        Some(s) => format!("{}/{total}: {}", index + 1, describe_step(s)),
        None => format!("{total}/{total}: all steps done"),
    }
}

/// What one step does.
fn describe_step(step: &RolloutStep) -> String {
    if let Some(weight) = step.set_weight {
        return format!("setWeight {weight}%");
    }
    if let Some(pause) = &step.pause {
        return match pause.duration_seconds {
            Some(secs) => format!("pause {secs}s"),
            None => "pause until promoted".into(),
        };
    }
    if let Some(analysis) = &step.analysis {
        let names: Vec<&str> = analysis.metrics.iter().map(|m| m.name.as_str()).collect();
        return format!("analysis ({})", names.join(", "));
    }
    "empty step".into()
}

/// `promote Done: moved on; at 2025-01-01T00:00:00Z (5s ago), id …`.
fn last_request(ack: &RequestAck, now: Timestamp) -> String {
    let mut text = format!("{} {}", ack.action, ack.result);
    if !ack.message.is_empty() {
        text.push_str(&format!(": {}", ack.message));
    }
    text.push_str(&format!("; at {}, id {}", when(&ack.at, now), ack.id));
    text
}

/// A labelled line of the summary.
fn line(label: &str, value: String) -> String {
    format!("{:<LABEL$}{value}", format!("{label}:"))
}

/// A measured value, `-` when absent, at most 4 decimals without trailing zeros (scientific
/// notation below 0.001, so small error rates do not read 0).
fn value(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    if v != 0.0 && v.abs() < 0.001 {
        return format!("{v:.2e}");
    }
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// `2025-01-01T00:00:00Z (3m12s ago)`.
pub fn when(at: &Time, now: Timestamp) -> String {
    format!("{} ({} ago)", at.0, age(at.0, now))
}

/// Time from `since` to `now` in the two largest units: `45s`, `3m12s`, `2h5m`, `3d4h`; a
/// future `since` (clock skew) reads `0s`.
///
/// ```
/// use k8s_openapi::jiff::Timestamp;
/// use modelpilot::plugin::render::age;
///
/// let t = |s| Timestamp::from_second(s).unwrap();
/// assert_eq!(age(t(0), t(45)), "45s");
/// assert_eq!(age(t(0), t(192)), "3m12s");
/// assert_eq!(age(t(0), t(7500)), "2h5m");
/// assert_eq!(age(t(0), t(273600)), "3d4h");
/// assert_eq!(age(t(10), t(0)), "0s");
/// ```
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_second() - since.as_second()).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut all: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    all.extend(rows);
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            all.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or_default()
        })
        .collect();
    let mut out = String::new();
    for row in &all {
        let mut cells = Vec::with_capacity(columns);
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                cells.push(cell.clone());
            } else {
                cells.push(format!("{cell:<width$}", width = widths[c]));
            }
        }
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn rollout_phase_str(phase: RolloutPhase) -> &'static str {
    match phase {
        RolloutPhase::Stable => "Stable",
        RolloutPhase::Checking => "Checking",
        RolloutPhase::Progressing => "Progressing",
        RolloutPhase::Paused => "Paused",
        RolloutPhase::Promoting => "Promoting",
        RolloutPhase::Aborted => "Aborted",
    }
}

fn phase_str(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::Progressing => "Progressing",
        Phase::Ready => "Ready",
        Phase::Degraded => "Degraded",
    }
}

fn verdict_str(verdict: MeasurementVerdict) -> &'static str {
    match verdict {
        MeasurementVerdict::Successful => "Successful",
        MeasurementVerdict::Failed => "Failed",
        MeasurementVerdict::Inconclusive => "Inconclusive",
        MeasurementVerdict::Error => "Error",
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
