//! Differencing tables: plain increases, restarts detected on any series, series appearing and
//! vanishing, histograms, and pods appearing and disappearing between snapshot sets.

use super::*;

const INF: f64 = f64::INFINITY;

/// A snapshot built from a compact description.
#[derive(Default)]
struct C {
    req: f64,
    err: f64,
    lat: Vec<(f64, f64)>,
    classes: Vec<(&'static str, f64)>,
    labels: Vec<((&'static str, &'static str), f64)>,
    feature: Vec<(f64, f64)>,
}

impl C {
    fn counts(&self) -> Counts {
        let mut c = Counts {
            requests: self.req,
            errors: self.err,
            latency: Buckets(self.lat.clone()),
            ..Counts::default()
        };
        for (k, v) in &self.classes {
            c.predictions.insert(k.to_string(), *v);
        }
        for ((a, p), v) in &self.labels {
            c.labels.insert((a.to_string(), p.to_string()), *v);
        }
        if !self.feature.is_empty() {
            c.features.insert("f".into(), Buckets(self.feature.clone()));
            c.baseline.insert("f".into(), vec![(1.0, 0.5), (INF, 0.5)]);
        }
        c
    }
}

#[test]
fn increase_table() {
    let rows: Vec<(&str, C, C, C, bool)> = vec![
        (
            "plain increase of every family",
            C {
                req: 10.0,
                err: 1.0,
                lat: vec![(0.1, 5.0), (INF, 10.0)],
                classes: vec![("a", 4.0), ("b", 6.0)],
                labels: vec![(("a", "a"), 2.0)],
                feature: vec![(1.0, 3.0), (INF, 10.0)],
            },
            C {
                req: 25.0,
                err: 4.0,
                lat: vec![(0.1, 9.0), (INF, 25.0)],
                classes: vec![("a", 10.0), ("b", 6.0)],
                labels: vec![(("a", "a"), 5.0), (("a", "b"), 1.0)],
                feature: vec![(1.0, 4.0), (INF, 25.0)],
            },
            C {
                req: 15.0,
                err: 3.0,
                lat: vec![(0.1, 4.0), (INF, 15.0)],
                classes: vec![("a", 6.0), ("b", 0.0)],
                labels: vec![(("a", "a"), 3.0), (("a", "b"), 1.0)],
                feature: vec![(1.0, 1.0), (INF, 15.0)],
            },
            false,
        ),
        (
            "requests went down: restart, the new values are the increase",
            C {
                req: 100.0,
                err: 5.0,
                ..C::default()
            },
            C {
                req: 7.0,
                err: 1.0,
                ..C::default()
            },
            C {
                req: 7.0,
                err: 1.0,
                ..C::default()
            },
            true,
        ),
        (
            "one class went down: the whole pod restarted, requests too",
            C {
                req: 10.0,
                classes: vec![("a", 9.0)],
                ..C::default()
            },
            C {
                req: 12.0,
                classes: vec![("a", 2.0), ("b", 10.0)],
                ..C::default()
            },
            C {
                req: 12.0,
                classes: vec![("a", 2.0), ("b", 10.0)],
                ..C::default()
            },
            true,
        ),
        (
            "a series that vanished means a restart",
            C {
                req: 10.0,
                labels: vec![(("x", "y"), 3.0)],
                ..C::default()
            },
            C {
                req: 11.0,
                ..C::default()
            },
            C {
                req: 11.0,
                ..C::default()
            },
            true,
        ),
        (
            "a latency bucket went down: restart",
            C {
                lat: vec![(0.1, 5.0), (INF, 6.0)],
                ..C::default()
            },
            C {
                lat: vec![(0.1, 1.0), (INF, 8.0)],
                ..C::default()
            },
            C {
                lat: vec![(0.1, 1.0), (INF, 8.0)],
                ..C::default()
            },
            true,
        ),
        (
            "new series count from zero",
            C {
                req: 10.0,
                ..C::default()
            },
            C {
                req: 12.0,
                err: 2.0,
                classes: vec![("new", 2.0)],
                lat: vec![(0.1, 2.0), (INF, 2.0)],
                ..C::default()
            },
            C {
                req: 2.0,
                err: 2.0,
                classes: vec![("new", 2.0)],
                lat: vec![(0.1, 2.0), (INF, 2.0)],
                ..C::default()
            },
            false,
        ),
        (
            "a histogram whose layout changed (without going down) counts as fresh",
            C {
                feature: vec![(1.0, 2.0), (INF, 2.0)],
                ..C::default()
            },
            C {
                feature: vec![(0.5, 1.0), (1.0, 3.0), (INF, 4.0)],
                ..C::default()
            },
            C {
                feature: vec![(0.5, 1.0), (1.0, 3.0), (INF, 4.0)],
                ..C::default()
            },
            false,
        ),
        (
            "nothing happened",
            C {
                req: 3.0,
                ..C::default()
            },
            C {
                req: 3.0,
                ..C::default()
            },
            C::default(),
            false,
        ),
    ];
    for (what, before, after, want, want_restart) in rows {
        let (got, restarted) = increase(&before.counts(), &after.counts());
        assert_eq!(got, want.counts(), "{what}");
        assert_eq!(restarted, want_restart, "{what}");
    }
}

#[test]
fn pods_are_matched_by_uid_and_summed() {
    let pod = |req: f64, lat: Vec<(f64, f64)>| {
        C {
            req,
            lat,
            feature: vec![(1.0, req), (INF, req)],
            ..C::default()
        }
        .counts()
    };
    let set = |pods: Vec<(&str, Counts)>| -> BTreeMap<String, Counts> {
        pods.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    };
    let before = set(vec![
        ("a", pod(10.0, vec![(0.1, 5.0), (INF, 10.0)])),
        ("b", pod(50.0, vec![(0.1, 50.0), (INF, 50.0)])),
        ("gone", pod(99.0, vec![])),
    ]);
    let after = set(vec![
        ("a", pod(20.0, vec![(0.1, 10.0), (INF, 20.0)])),
        ("b", pod(4.0, vec![(0.1, 1.0), (INF, 4.0)])),
        ("new", pod(30.0, vec![(0.1, 30.0), (INF, 30.0)])),
    ]);
    let w = across_pods(&before, &after);
    assert_eq!((w.pods, w.restarted, w.new_pods, w.gone_pods), (2, 1, 1, 1));
    assert_eq!(w.counts.requests, 10.0 + 4.0);
    assert_eq!(w.counts.latency.0, vec![(0.1, 6.0), (INF, 14.0)]);
    assert_eq!(w.counts.features["f"].0, vec![(1.0, 14.0), (INF, 14.0)]);
    assert_eq!(w.counts.baseline["f"], vec![(1.0, 0.5), (INF, 0.5)]);

    let nothing = across_pods(&BTreeMap::new(), &after);
    assert_eq!((nothing.pods, nothing.new_pods), (0, 3));
    assert_eq!(nothing.counts, Counts::default());
}
