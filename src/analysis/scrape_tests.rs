//! The scraper against fake pods on local ports whose page the test sets: windows between
//! scrapes, a restarted server, reuse of a fresh snapshot, and pods that answer badly.

use std::sync::{Arc, Mutex};

use axum::{Router, http::StatusCode, routing::get};

use super::*;

/// A fake pod: serves `page` (with `status`) on `/metrics` until dropped with the runtime.
struct FakePod {
    page: Arc<Mutex<(StatusCode, String)>>,
    addr: PodAddr,
}

impl FakePod {
    async fn start(uid: &str) -> FakePod {
        let page = Arc::new(Mutex::new((StatusCode::OK, String::new())));
        let shared = page.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let page = shared.clone();
                async move { page.lock().unwrap_or_else(PoisonError::into_inner).clone() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakePod {
            page,
            addr: PodAddr {
                uid: uid.into(),
                name: format!("pod-{uid}"),
                ip: "127.0.0.1".into(),
                port,
            },
        }
    }

    /// Serves a page with `requests` inference requests of which `errors` were 503s.
    fn serve(&self, requests: u64, errors: u64) {
        let page = format!(
            "modelpilot_inference_requests_total{{endpoint=\"infer\",code=\"200\"}} {}\n\
             modelpilot_inference_requests_total{{endpoint=\"infer\",code=\"503\"}} {errors}\n",
            requests - errors
        );
        *self.page.lock().unwrap() = (StatusCode::OK, page);
    }

    fn answer(&self, status: StatusCode, body: &str) {
        *self.page.lock().unwrap() = (status, body.to_string());
    }
}

fn totals(w: &RevisionWindow) -> (f64, f64) {
    (w.stats.counts.requests, w.stats.counts.errors)
}

#[tokio::test]
async fn windows_between_scrapes_survive_restarts_and_new_pods() {
    let (a, b) = (FakePod::start("a").await, FakePod::start("b").await);
    let scraper = Scraper::new().reuse_within(Duration::ZERO);
    a.serve(100, 1);
    assert_eq!(scraper.prime(std::slice::from_ref(&a.addr)).await, 1);
    a.serve(130, 4);
    b.serve(50, 0);
    let pods = [a.addr.clone(), b.addr.clone()];
    let w = scraper.window(&[&pods], Duration::ZERO).await;
    assert_eq!(totals(&w[0]), (30.0, 3.0), "b is new: a baseline only");
    assert_eq!(
        (w[0].answered, w[0].stats.pods, w[0].stats.new_pods),
        (2, 1, 1)
    );
    a.serve(5, 5); // restarted: its 5 requests since are the increase
    b.serve(60, 2);
    let w = scraper.window(&[&pods], Duration::ZERO).await;
    assert_eq!(totals(&w[0]), (5.0 + 10.0, 5.0 + 2.0));
    assert_eq!((w[0].stats.pods, w[0].stats.restarted), (2, 1));
    // Per revision, in the order asked.
    a.serve(6, 5);
    b.serve(70, 2);
    let w = scraper
        .window(&[&pods[..1], &pods[1..]], Duration::ZERO)
        .await;
    assert_eq!((totals(&w[0]), totals(&w[1])), ((1.0, 0.0), (10.0, 0.0)));
    assert_eq!(scraper.known_pods(), 2);
}

#[tokio::test]
async fn a_fresh_snapshot_is_reused_instead_of_scraping_again() {
    let a = FakePod::start("a").await;
    let scraper = Scraper::new().reuse_within(Duration::from_secs(3600));
    a.serve(10, 0);
    scraper.prime(std::slice::from_ref(&a.addr)).await;
    a.serve(20, 0);
    let w = scraper
        .window(&[std::slice::from_ref(&a.addr)], Duration::ZERO)
        .await;
    assert_eq!(w[0].answered, 1);
    assert_eq!(
        w[0].stats.pods, 0,
        "the reused snapshot is the only one: no window"
    );
}

#[tokio::test]
async fn pods_that_answer_badly_are_failures() {
    let pod = FakePod::start("x").await;
    let scraper = Scraper::new().reuse_within(Duration::ZERO);
    let one = [pod.addr.clone()];
    let rows = [
        (StatusCode::INTERNAL_SERVER_ERROR, "", "HTTP 500"),
        (StatusCode::OK, "x_total{ 1\n", "metrics line 1"),
    ];
    for (status, body, reason) in rows {
        pod.answer(status, body);
        let w = scraper.window(&[&one], Duration::ZERO).await;
        assert_eq!(w[0].answered, 0);
        assert_eq!(w[0].failures.len(), 1);
        let failure = &w[0].failures[0];
        assert!(failure.starts_with("pod-x (http://127.0.0.1:"), "{failure}");
        assert!(failure.contains(reason), "{failure}");
    }
    assert_eq!(scraper.prime(&one).await, 0);
    assert_eq!(scraper.known_pods(), 0);
}

#[test]
fn urls_bracket_ipv6() {
    let pod = |ip: &str| PodAddr {
        uid: "u".into(),
        name: "n".into(),
        ip: ip.into(),
        port: 8080,
    };
    assert_eq!(pod("10.0.0.7").url(), "http://10.0.0.7:8080/metrics");
    assert_eq!(pod("fd00::7").url(), "http://[fd00::7]:8080/metrics");
}
