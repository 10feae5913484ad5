use std::time::Duration;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_server_page_reduces_to_the_load_counters() {
    let page = r#"
# TYPE modelpilot_inference_inflight_seconds counter
modelpilot_inference_inflight_seconds_total{model="m",model_version="1"} 7.25
modelpilot_inference_inflight_requests{model="m",model_version="1"} 2
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="infer",code="200"} 90
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="infer",code="503"} 10
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="feedback",code="200"} 55
modelpilot_inference_queue_duration_seconds_sum{model="m",model_version="1",endpoint="infer"} 1.5
modelpilot_inference_queue_duration_seconds_count{model="m",model_version="1",endpoint="infer"} 100
modelpilot_inference_queue_duration_seconds_sum{model="m",model_version="1",endpoint="other"} 99
modelpilot_inference_requests_total{endpoint="infer",code="200"} NaN
"#;
    let r = PodReading::parse(page).unwrap();
    assert_eq!(
        r,
        PodReading {
            inflight_seconds: 7.25,
            inflight: 2.0,
            requests: 100.0,
            queue_seconds: 1.5,
            queued: 100.0,
        }
    );
    assert!(PodReading::parse("not a metrics page {").is_err());
}

#[test]
fn rates_table() {
    let reading = |inflight_seconds, requests, queue_seconds, queued| PodReading {
        inflight_seconds,
        inflight: 0.0,
        requests,
        queue_seconds,
        queued,
    };
    let a = reading(10.0, 100.0, 1.0, 50.0);
    // (after, dt, expected (concurrency, rps, queue seconds, queued))
    let cases = [
        (
            reading(10.0, 100.0, 1.0, 50.0),
            2,
            Some((0.0, 0.0, 0.0, 0.0)),
        ),
        (
            reading(26.0, 180.0, 3.0, 130.0),
            2,
            Some((8.0, 40.0, 2.0, 80.0)),
        ),
        (
            reading(11.0, 101.0, 1.0, 51.0),
            4,
            Some((0.25, 0.25, 0.0, 1.0)),
        ),
        // A restarted server: counters went down, the new reading is a baseline.
        (reading(1.0, 5.0, 0.0, 5.0), 2, None),
        (reading(26.0, 90.0, 3.0, 130.0), 2, None),
        // No time passed.
        (reading(26.0, 180.0, 3.0, 130.0), 0, None),
    ];
    for (after, dt, want) in cases {
        let got =
            rates(&a, &after, secs(dt)).map(|r| (r.concurrency, r.rps, r.queue_seconds, r.queued));
        assert_eq!(got, want, "after {after:?} dt {dt}");
    }
}

#[test]
fn totals_stand_measured_pods_in_for_the_unmeasured() {
    let pod = |c| PodRates {
        concurrency: c,
        rps: c * 10.0,
        queue_seconds: c,
        queued: 1.0,
    };
    let at = secs(4);
    // (measured, ready, expected concurrency)
    let cases: [(&[PodRates], usize, Option<f64>); 5] = [
        (&[], 3, None),
        (&[pod(2.0)], 1, Some(2.0)),
        (&[pod(2.0), pod(4.0)], 2, Some(6.0)),
        (&[pod(2.0), pod(4.0)], 4, Some(12.0)),
        // More measured than counted ready (a pod became unready since): no scaling down.
        (&[pod(2.0), pod(4.0)], 1, Some(6.0)),
    ];
    for (measured, ready, want) in cases {
        let got = total(measured, ready, at);
        assert_eq!(
            got.map(|s| s.concurrency),
            want,
            "{measured:?} ready {ready}"
        );
        if let Some(s) = got {
            assert_eq!(s.at, at);
            assert!((s.rps - s.concurrency * 10.0).abs() < 1e-9);
        }
    }
}

#[test]
fn windows_average_what_falls_inside_and_coverage_restarts_after_a_gap() {
    let keep = secs(60);
    let gap = secs(10);
    let tick = secs(2);
    let mut samples = Samples::default();
    let sample = |at, c| Sample {
        at: secs(at),
        concurrency: c,
        rps: 2.0 * c,
        queue_seconds: c,
        queued: 10.0,
    };
    for t in (2..=60).step_by(2) {
        samples.push(sample(t, if t > 54 { 30.0 } else { 6.0 }), keep, gap);
    }
    let now = secs(60);
    let stable = samples.average(now, secs(60)).unwrap();
    assert_eq!(stable.samples, 30);
    assert!((stable.concurrency - (27.0 * 6.0 + 3.0 * 30.0) / 30.0).abs() < 1e-9);
    let panic = samples.average(now, secs(6)).unwrap();
    assert_eq!(
        (panic.samples, panic.concurrency, panic.rps),
        (3, 30.0, 60.0)
    );
    assert!((panic.queue_time - 3.0).abs() < 1e-9, "{panic:?}"); // 90 s over 30 requests
    assert!(samples.covers(now, secs(60), tick));
    assert!(!samples.covers(now, secs(90), tick));

    // Kept only as long as asked.
    samples.push(sample(100, 1.0), keep, secs(60));
    assert!(samples.len() <= 31);
    // A gap longer than allowed: the old samples go and coverage starts again.
    samples.push(sample(200, 1.0), keep, gap);
    assert_eq!(samples.len(), 1);
    assert!(!samples.covers(secs(200), secs(60), tick));
    assert!(samples.covers(secs(200), secs(2), tick));
    assert_eq!(samples.average(secs(300), secs(60)), None);
    assert_eq!(Samples::default().average(now, secs(60)), None);
}

#[test]
fn need_and_per_pod_for_each_metric() {
    let load = Average {
        concurrency: 12.0,
        rps: 50.0,
        queue_time: 0.1,
        samples: 1,
        ..Default::default()
    };
    let cases = [
        (ScaleMetric::Concurrency, 4.0, 3, 3.0, 4.0),
        (ScaleMetric::Rps, 10.0, 5, 5.0, 10.0),
        (ScaleMetric::QueueTime, 0.05, 3, 6.0, 0.1),
        // No ready pod yet: measured as one.
        (ScaleMetric::QueueTime, 0.1, 0, 1.0, 0.1),
        (ScaleMetric::Concurrency, 0.0, 3, 0.0, 4.0),
    ];
    for (metric, target, ready, need, per_pod) in cases {
        assert!(
            (load.need(metric, target, ready) - need).abs() < 1e-9,
            "{metric:?}"
        );
        assert!(
            (load.per_pod(metric, ready) - per_pod).abs() < 1e-9,
            "{metric:?}"
        );
    }
}
