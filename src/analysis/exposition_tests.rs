//! Table tests of the exposition reader: accepted lines with what they yield, refused lines with
//! the reason, and the real server page.

use super::*;

fn one(line: &str) -> Sample {
    let samples = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(samples.len(), 1, "{line:?}");
    samples.into_iter().next().unwrap_or_else(|| unreachable!())
}

#[test]
fn accepted_lines() {
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], f64, Option<f64>);
    let rows: [Row; 16] = [
        ("up 1", "up", &[], 1.0, None),
        ("up 1 1700000000000", "up", &[], 1.0, Some(1.7e12)),
        (
            "up 1.5 1700000000.25",
            "up",
            &[],
            1.5,
            Some(1.70000000025e9),
        ),
        ("a:b_c 2e-3", "a:b_c", &[], 0.002, None),
        ("x{} 7", "x", &[], 7.0, None),
        ("x{a=\"1\"} 7", "x", &[("a", "1")], 7.0, None),
        ("x{a=\"1\",} 7", "x", &[("a", "1")], 7.0, None),
        (
            "x { a = \"1\" , b=\"\" } 7",
            "x",
            &[("a", "1"), ("b", "")],
            7.0,
            None,
        ),
        (
            r#"x{v="q\"t\\n\nz"} 1"#,
            "x",
            &[("v", "q\"t\\n\nz")],
            1.0,
            None,
        ),
        (r#"x{v="\x"} 1"#, "x", &[("v", "\\x")], 1.0, None),
        ("x{v=\"é,}{\"} 1", "x", &[("v", "é,}{")], 1.0, None),
        (
            "h_bucket{le=\"+Inf\"} 3",
            "h_bucket",
            &[("le", "+Inf")],
            3.0,
            None,
        ),
        ("x +Inf", "x", &[], f64::INFINITY, None),
        ("x -Inf", "x", &[], f64::NEG_INFINITY, None),
        ("x\t-0.5\t12", "x", &[], -0.5, Some(12.0)),
        (
            "x_total{a=\"1\"} 4 # {trace_id=\"abc\"} 1.0 1.5",
            "x_total",
            &[("a", "1")],
            4.0,
            None,
        ),
    ];
    for (line, name, labels, value, timestamp) in rows {
        let s = one(line);
        assert_eq!(s.name, name, "{line}");
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s.labels, want, "{line}");
        assert_eq!(s.value, value, "{line}");
        assert_eq!(s.timestamp, timestamp, "{line}");
    }
    assert!(one("x NaN").value.is_nan());
    assert!(one("x nan").value.is_nan());
}

#[test]
fn comments_blank_lines_and_eof_are_skipped() {
    let page = "\n# HELP x_total Counts \\n things.\n# TYPE x_total counter\n\
                # some free comment\n   \nx_total 1\r\n# UNIT x seconds\n# EOF\n";
    let samples = parse(page).unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].value, 1.0);
}

#[test]
fn refused_lines_name_the_line_and_reason() {
    let rows: [(&str, &str); 17] = [
        ("up", "missing value"),
        ("up abc", "invalid value"),
        ("up 1 2 3", "unexpected"),
        ("up 1 notatime", "invalid timestamp"),
        ("up 1 +Inf", "invalid timestamp"),
        ("up infinite", "invalid value"),
        ("9up 1", "expected a metric name"),
        ("{a=\"1\"} 1", "expected a metric name"),
        ("x{a=\"1\" 1", "expected ',' or '}'"),
        ("x{a=1} 1", "expected a quoted value"),
        ("x{a} 1", "expected '='"),
        ("x{a=\"1} 1", "unterminated"),
        ("x{a=\"1\\", "unterminated"),
        ("x{a=\"1\",a=\"2\"} 1", "given twice"),
        ("x{1a=\"1\"} 1", "expected a label name"),
        ("# TYPE x countr", "unknown type"),
        ("# HELP", "without a metric name"),
    ];
    for (line, reason) in rows {
        let page = format!("ok 1\n{line}\n");
        let err = parse(&page).expect_err(line);
        assert_eq!(err.line, 2, "{line}: {err}");
        assert!(err.reason.contains(reason), "{line}: {err}");
    }
}

#[test]
fn every_prefix_and_mutation_of_a_page_is_an_answer_not_a_panic() {
    let page = "# HELP x_total X.\n# TYPE x_total counter\n\
                x_total{a=\"é\\\"\",b=\"2\"} 3 17\nh_bucket{le=\"+Inf\"} NaN\n";
    for end in 0..=page.len() {
        if page.is_char_boundary(end) {
            let _ = parse(&page[..end]);
        }
    }
    let mut state = 0x2545_f491_u32;
    for _ in 0..2000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let mut bytes = page.as_bytes().to_vec();
        let at = state as usize % bytes.len();
        bytes[at] = b"{}\",= \\#\n9aE+-."[(state >> 8) as usize % 15];
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn the_servers_own_page_parses_in_both_formats() {
    use std::time::Duration;

    use crate::serve::observe::{ServeMetrics, ServeMetricsConfig};

    let m = ServeMetrics::new(ServeMetricsConfig::new("iris", "1"));
    m.observe_request(
        "infer",
        200,
        Duration::from_millis(3),
        Duration::ZERO,
        Duration::ZERO,
    );
    m.observe_request(
        "infer",
        503,
        Duration::from_millis(1),
        Duration::ZERO,
        Duration::ZERO,
    );
    for accept in [None, Some("application/openmetrics-text; version=1.0.0")] {
        let (_, page) = m.render(accept).unwrap();
        let samples = parse(&page).unwrap();
        let mut codes: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "modelpilot_inference_requests_total")
            .map(|s| (s.label("code"), s.value))
            .collect();
        codes.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(codes, vec![(Some("200"), 1.0), (Some("503"), 1.0)]);
    }
}
