//! Tables for judge, judge_failure, tally and due: one decision per row.

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::MeasurementVerdict::{Error, Failed, Inconclusive, Successful};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

fn b(
    max: Option<f64>,
    min: Option<f64>,
    ratio: Option<f64>,
    inc: Option<f64>,
    dec: Option<f64>,
) -> Bound {
    Bound {
        max,
        min,
        max_ratio_to_stable: ratio,
        max_increase_over_stable: inc,
        max_decrease_from_stable: dec,
    }
}

#[test]
fn judge_table() {
    let max = b(Some(0.01), None, None, None, None);
    let min = b(None, Some(0.9), None, None, None);
    let both = b(Some(1.0), Some(0.5), None, None, None);
    let ratio = b(None, None, Some(1.2), None, None);
    let inc = b(None, None, None, Some(0.005), None);
    let dec = b(None, None, None, None, Some(0.02));
    let all = b(Some(0.5), Some(0.1), Some(2.0), Some(0.1), Some(0.1));
    type Row<'a> = (
        &'a str,
        &'a Bound,
        Option<(f64, i64)>,
        Option<(f64, i64)>,
        MeasurementVerdict,
        &'a str,
    );
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("max holds", &max, Some((0.01, 100)), None, Successful, "within bounds"),
        ("max broken", &max, Some((0.0101, 100)), None, Failed, "above max 0.01"),
        ("max: stable not needed", &max, Some((0.0, 100)), Some((9.0, 0)), Successful, ""),
        ("min holds", &min, Some((0.9, 100)), None, Successful, ""),
        ("min broken", &min, Some((0.89, 100)), None, Failed, "below min 0.9"),
        ("both broken above", &both, Some((1.5, 100)), None, Failed, "above max 1"),
        ("both broken below", &both, Some((0.2, 100)), None, Failed, "below min 0.5"),
        ("no canary value", &max, None, None, Inconclusive, "no canary value"),
        ("too few canary samples, bad value", &max, Some((0.9, 19)), None, Inconclusive, "19 samples"),
        ("exactly minSample", &max, Some((0.0, 20)), None, Successful, ""),
        ("NaN canary", &max, Some((NAN, 100)), None, Inconclusive, "NaN"),
        ("+inf canary breaks max", &max, Some((INF, 100)), None, Failed, "above max"),
        ("-inf canary breaks min", &min, Some((-INF, 100)), None, Failed, "below min"),
        ("+inf canary holds min", &min, Some((INF, 100)), None, Successful, ""),
        ("ratio holds", &ratio, Some((0.12, 100)), Some((0.1, 100)), Successful, "stable 0.1"),
        ("ratio broken", &ratio, Some((0.1201, 100)), Some((0.1, 100)), Failed, "above 1.2 × stable = 0.12"),
        ("ratio, stable 0: canary must be 0", &ratio, Some((0.001, 100)), Some((0.0, 100)), Failed, "above 1.2"),
        ("ratio, both 0", &ratio, Some((0.0, 100)), Some((0.0, 100)), Successful, ""),
        ("ratio, no stable value", &ratio, Some((0.1, 100)), None, Inconclusive, "no stable value"),
        ("ratio, too few stable samples", &ratio, Some((9.0, 100)), Some((0.1, 5)), Inconclusive, "stable has 5 samples"),
        ("ratio, stable +inf", &ratio, Some((9.0, 100)), Some((INF, 100)), Inconclusive, "nothing to compare"),
        ("ratio, stable NaN", &ratio, Some((9.0, 100)), Some((NAN, 100)), Inconclusive, "NaN"),
        ("ratio, canary +inf", &ratio, Some((INF, 100)), Some((1.0, 100)), Failed, "above"),
        ("increase holds", &inc, Some((0.015, 100)), Some((0.01, 100)), Successful, ""),
        ("increase broken", &inc, Some((0.016, 100)), Some((0.01, 100)), Failed, "above stable + 0.005 = 0.015"),
        ("decrease holds", &dec, Some((0.93, 100)), Some((0.95, 100)), Successful, ""),
        ("decrease broken", &dec, Some((0.92, 100)), Some((0.95, 100)), Failed, "below stable − 0.02 = 0.93"),
        ("canary samples checked before stable", &dec, Some((0.0, 3)), None, Inconclusive, "canary has 3"),
        ("all hold", &all, Some((0.3, 100)), Some((0.3, 100)), Successful, ""),
        ("all: only ratio broken", &all, Some((0.3, 100)), Some((0.14, 100)), Failed, "above 2 × stable"),
        ("all: several broken, all named", &all, Some((0.6, 100)), Some((0.25, 100)), Failed,
            "above max 0.5; above 2 × stable = 0.5; above stable + 0.1 = 0.35"),
    ];
    for (what, bound, canary, stable, verdict, words) in rows {
        let (got, message) = judge(bound, canary, stable, 20);
        assert_eq!(got, verdict, "{what}: {message}");
        assert!(
            message.contains(words),
            "{what}: {message:?} lacks {words:?}"
        );
    }
}

#[test]
fn failure_bound_table() {
    let at_least_100 = b(None, Some(100.0), None, None, None);
    let band = b(Some(10.0), Some(5.0), None, None, None);
    let relative_only = b(None, None, Some(2.0), None, None);
    type Row<'a> = (&'a Bound, Option<(f64, i64)>, i64, MeasurementVerdict);
    let rows: Vec<Row> = vec![
        (&at_least_100, Some((120.0, 0)), 0, Failed),
        (&at_least_100, Some((100.0, 0)), 0, Failed),
        (&at_least_100, Some((99.0, 0)), 0, Successful),
        (&band, Some((7.0, 0)), 0, Failed),
        (&band, Some((11.0, 0)), 0, Successful),
        (&band, Some((4.0, 0)), 0, Successful),
        (&band, None, 0, Inconclusive),
        (&band, Some((NAN, 0)), 0, Inconclusive),
        (&band, Some((7.0, 3)), 10, Inconclusive),
        (&relative_only, Some((7.0, 0)), 0, Error),
    ];
    for (bound, canary, min_sample, want) in rows {
        let (got, message) = judge_failure(bound, canary, min_sample);
        assert_eq!(got, want, "{bound:?} {canary:?}: {message}");
    }
}

fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn m(verdict: MeasurementVerdict, at: i64) -> Measurement {
    Measurement {
        at: t(at),
        canary: Some(0.1),
        stable: None,
        samples: 10,
        verdict,
        message: format!("{verdict:?} at {at}"),
    }
}

fn metric(count: i32, failure_limit: i32, inconclusive_limit: i32) -> AnalysisMetric {
    AnalysisMetric {
        name: "errors".into(),
        count,
        failure_limit,
        inconclusive_limit,
        interval_seconds: 10,
        ..AnalysisMetric::default()
    }
}

/// Runs verdicts through tally; returns the progress of each and the final status.
fn run(
    metric: &AnalysisMetric,
    verdicts: &[MeasurementVerdict],
    limit: i32,
) -> (Vec<Progress>, MetricStatus) {
    let mut status = MetricStatus::default();
    let mut seen = Vec::new();
    for (i, v) in verdicts.iter().enumerate() {
        let (next, progress) = tally(metric, &status, m(*v, i as i64), limit);
        status = next;
        seen.push(progress);
    }
    (seen, status)
}

fn kind(p: &Progress) -> &'static str {
    match p {
        Progress::Continue => "continue",
        Progress::Complete => "complete",
        Progress::Abort { .. } => "abort",
        Progress::Pause { reason, .. } => reason,
    }
}

#[test]
fn tally_table() {
    type Row<'a> = (
        &'a str,
        AnalysisMetric,
        Vec<MeasurementVerdict>,
        i32,
        Vec<&'a str>,
        [i32; 5],
    );
    let c = "continue";
    // (what, metric(count, failureLimit, inconclusiveLimit), verdicts, error limit,
    //  progress after each, [taken, successful, failed, inconclusive, consecutive errors])
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("count reached", metric(3, 0, 2), vec![Successful; 3], 4, vec![c, c, "complete"], [3, 3, 0, 0, 0]),
        ("count 0 never completes", metric(0, 0, 9), vec![Successful; 6], 4, vec![c; 6], [6, 6, 0, 0, 0]),
        ("first failure over limit 0 aborts", metric(3, 0, 2), vec![Successful, Failed], 4, vec![c, "abort"], [2, 1, 1, 0, 0]),
        ("failures up to the limit go on", metric(5, 2, 2), vec![Failed, Failed, Successful, Failed], 4, vec![c, c, c, "abort"], [4, 1, 3, 0, 0]),
        ("abort wins over complete", metric(2, 0, 2), vec![Successful, Failed], 4, vec![c, "abort"], [2, 1, 1, 0, 0]),
        ("abort is sticky", metric(9, 0, 2), vec![Failed, Successful], 4, vec!["abort", "abort"], [2, 1, 1, 0, 0]),
        ("inconclusive over limit pauses", metric(9, 0, 1), vec![Inconclusive, Successful, Inconclusive], 4, vec![c, c, "Inconclusive"], [3, 1, 0, 2, 0]),
        ("inconclusive never fails", metric(9, 0, 100), vec![Inconclusive; 4], 4, vec![c; 4], [4, 0, 0, 4, 0]),
        ("pause wins over complete", metric(2, 0, 0), vec![Successful, Inconclusive], 4, vec![c, "Inconclusive"], [2, 1, 0, 1, 0]),
        ("after the limit, a success goes on", metric(9, 0, 0), vec![Inconclusive, Successful], 4, vec!["Inconclusive", c], [2, 1, 0, 1, 0]),
        ("errors in a row pause at the limit", metric(3, 0, 2), vec![Error, Error, Error], 3, vec![c, c, "MetricSourceErrors"], [0, 0, 0, 0, 3]),
        ("a success resets the error run", metric(9, 0, 2), vec![Error, Error, Successful, Error, Error], 3, vec![c; 5], [1, 1, 0, 0, 2]),
        ("an inconclusive resets it too", metric(9, 0, 5), vec![Error, Inconclusive, Error], 2, vec![c, c, c], [1, 0, 0, 1, 1]),
        ("error limit 1", metric(9, 0, 2), vec![Error], 1, vec!["MetricSourceErrors"], [0, 0, 0, 0, 1]),
        ("errors are not taken, count waits", metric(1, 0, 2), vec![Error, Successful], 4, vec![c, "complete"], [1, 1, 0, 0, 0]),
    ];
    for (what, metric, verdicts, limit, want, [taken, ok, failed, inconclusive, errors]) in rows {
        let (seen, status) = run(&metric, &verdicts, limit);
        let got: Vec<&str> = seen.iter().map(kind).collect();
        assert_eq!(got, want, "{what}: {seen:?}");
        assert_eq!(
            [
                status.taken,
                status.successful,
                status.failed,
                status.inconclusive,
                status.consecutive_errors
            ],
            [taken, ok, failed, inconclusive, errors],
            "{what}"
        );
        assert_eq!(status.name, "errors");
    }
}

#[test]
fn tally_keeps_the_last_five_and_explains() {
    let (seen, status) = run(&metric(0, 100, 100), &[Successful; 7], 4);
    assert_eq!(seen.len(), 7);
    let ats: Vec<i64> = status
        .measurements
        .iter()
        .map(|m| m.at.0.as_second() - t(0).0.as_second())
        .collect();
    assert_eq!(ats, vec![2, 3, 4, 5, 6]);

    let (seen, _) = run(&metric(3, 0, 0), &[Failed], 4);
    let Progress::Abort { message } = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(
        message,
        "1 failed measurements, more than failureLimit 0: Failed at 0"
    );
    let (seen, _) = run(&metric(3, 0, 0), &[Inconclusive], 4);
    assert_eq!(
        seen[0],
        Progress::Pause {
            reason: REASON_INCONCLUSIVE,
            message:
                "1 inconclusive measurements, more than inconclusiveLimit 0: Inconclusive at 0"
                    .into()
        }
    );
}

#[test]
fn due_table() {
    let with = |taken: i32, last: Option<i64>| MetricStatus {
        taken,
        successful: taken,
        measurements: last.map(|at| vec![m(Successful, at)]).unwrap_or_default(),
        ..MetricStatus::default()
    };
    let delayed = AnalysisMetric {
        initial_delay_seconds: 30,
        ..metric(3, 0, 0)
    };
    let secs = |s: u64| Some(Duration::from_secs(s));
    type Row<'a> = (
        &'a str,
        AnalysisMetric,
        Option<MetricStatus>,
        i64,
        Option<Duration>,
    );
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("first: one interval after the start", metric(3, 0, 0), None, 0, secs(10)),
        ("first, delay 30 s, 10 s in", delayed.clone(), None, 10, secs(30)),
        ("first, delay and interval over", delayed.clone(), None, 40, secs(0)),
        ("first, long overdue", delayed.clone(), None, 500, secs(0)),
        ("status without measurements counts as first", delayed.clone(), Some(with(0, None)), 10, secs(30)),
        ("next: interval after the last", delayed.clone(), Some(with(1, Some(40))), 45, secs(5)),
        ("next: exactly due", delayed.clone(), Some(with(1, Some(40))), 50, secs(0)),
        ("count reached: never", delayed.clone(), Some(with(3, Some(40))), 100, None),
        ("count 0: always another", metric(0, 0, 0), Some(with(50, Some(40))), 41, secs(9)),
        ("an error (not taken) is retried after an interval", metric(1, 0, 0), Some(with(0, Some(40))), 41, secs(9)),
    ];
    for (what, metric, status, now, want) in rows {
        assert_eq!(
            due(&metric, status.as_ref(), &t(0), &t(now)),
            want,
            "{what}"
        );
    }
    let half = Time(
        Timestamp::from_millisecond(t(5).0.as_millisecond() + 500).unwrap_or(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        due(&metric(3, 0, 0), Some(&with(1, Some(0))), &t(0), &half),
        Some(Duration::from_millis(4500))
    );
}

#[test]
fn numbers_in_messages() {
    let rows = [
        (0.01, "0.01"),
        (0.123456, "0.1235"),
        (2.0, "2"),
        (0.0, "0"),
        (1e-5, "1.000e-5"),
        (INF, "inf"),
        (12345678.0, "1.235e7"),
    ];
    for (v, want) in rows {
        assert_eq!(num(v), want);
    }
}
