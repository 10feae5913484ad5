//! Table tests of the data readers: well-formed files, and a clear error for each bad one.

use super::*;

fn numeric(name: &str, values: &[f64]) -> Column {
    Column {
        name: name.into(),
        values: Values::Numeric(values.to_vec()),
    }
}

fn text(name: &str, values: &[&str]) -> Column {
    let values = values.iter().map(|v| v.to_string()).collect();
    Column {
        name: name.into(),
        values: Values::Categorical(values),
    }
}

#[test]
fn csv_columns_and_kinds() {
    let csv =
        "x, colour ,code,\"quoted, name\"\r\n1.5,red,1,\"a \"\"b\"\"\"\n\n-2,blue,2.0,c\n,red,,d\n";
    let table = parse_csv(csv, &["code".to_string()]).unwrap();
    assert_eq!(table.rows, 3);
    let nan_x = match &table.columns[0].values {
        Values::Numeric(v) => v[2].is_nan() && v[..2] == [1.5, -2.0],
        _ => false,
    };
    assert!(nan_x, "{:?}", table.columns[0]);
    assert_eq!(table.columns[1], text("colour", &["red", "blue", "red"]));
    assert_eq!(table.columns[2], text("code", &["1", "2", ""]));
    assert_eq!(
        table.columns[3],
        text("quoted, name", &["a \"b\"", "c", "d"])
    );
}

#[test]
fn bad_csv_is_an_error_with_a_place() {
    let cases = [
        ("", "empty file"),
        ("a,b\n1\n", "line 2: 1 fields, the header has 2"),
        ("a,a\n1,2\n", "duplicate column"),
        ("a,\n1,2\n", "column 2 has no name"),
        ("a\n\"1\n", "unterminated"),
    ];
    for (csv, expected) in cases {
        let err = parse_csv(csv, &[]).unwrap_err();
        assert!(err.contains(expected), "{csv:?}: {err}");
    }
    let err = parse_csv("a\n1\n", &["b".to_string()]).unwrap_err();
    assert!(err.contains("no column \"b\""), "{err}");
}

fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

#[test]
fn npy_matrices() {
    let body: Vec<u8> = [1.0f64, 2.0, 3.0, 4.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let table = parse_npy(&npy("<f8", "(2, 2)", &body), &["f1".to_string()]).unwrap();
    assert_eq!(table.rows, 2);
    assert_eq!(table.columns[0], numeric("f0", &[1.0, 3.0]));
    assert_eq!(table.columns[1], text("f1", &["2", "4.5"]));
    let body: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_be_bytes()).collect();
    let table = parse_npy(&npy(">i4", "(2,)", &body), &[]).unwrap();
    assert_eq!(table.columns[0], numeric("f0", &[7.0, -1.0]));
    let body: Vec<u8> = [0.5f32].iter().flat_map(|v| v.to_le_bytes()).collect();
    let table = parse_npy(&npy("<f4", "(1, 1)", &body), &[]).unwrap();
    assert_eq!(table.columns[0], numeric("f0", &[0.5]));
}

#[test]
fn bad_npy_is_an_error() {
    let cases = [
        (b"not numpy at all".to_vec(), "magic"),
        (npy("<c16", "(1, 1)", &[0; 16]), "unsupported npy dtype"),
        (npy("<f8", "(2, 2)", &[0; 8]), "needs"),
        (npy("<f8", "(1, 1, 1)", &[0; 8]), "2-D"),
        (
            b"\x93NUMPY\x01\x00\xff\x00{".to_vec(),
            "longer than the file",
        ),
    ];
    for (bytes, expected) in cases {
        let err = parse_npy(&bytes, &[]).unwrap_err();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn category_texts() {
    for (v, text) in [
        (1.0, "1"),
        (-3.0, "-3"),
        (2.5, "2.5"),
        (1e20, "100000000000000000000"),
    ] {
        assert_eq!(category_text(v), text);
    }
}
