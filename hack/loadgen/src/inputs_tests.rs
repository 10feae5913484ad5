use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

use super::*;

const IRIS: &str = "\
sepal_length,sepal_width,petal_length,petal_width,species
5.1,3.5,1.4,0.2,0
6.0,2.9,4.5,1.5,1
7.7,3.0,6.1,2.3,2.0
";

fn iris_meta(shape: &[i64], datatype: &str) -> ModelMetadata {
    ModelMetadata {
        inputs: vec![TensorMeta {
            name: "float_input".into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
        }],
    }
}

fn body(p: &Payload) -> Value {
    serde_json::from_slice(&p.body).unwrap()
}

#[test]
fn reads_features_and_labels() {
    let t = Table::from_reader(IRIS.as_bytes(), Some("species")).unwrap();
    assert_eq!(
        t.features,
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    );
    assert_eq!(t.rows.len(), 3);
    assert_eq!(t.labels, Some(vec![json!(0), json!(1), json!(2)]));
    let unlabelled = Table::from_reader("a,b\n1,2\n".as_bytes(), None).unwrap();
    assert_eq!(unlabelled.labels, None);
}

#[test]
fn refuses_bad_csv() {
    for (csv, label, want) in [
        (
            "a,b\n1,x\n",
            None,
            "CSV line 2, column \"b\": \"x\" is not a finite number",
        ),
        (
            "a,b\n1,2\n3,\n",
            None,
            "CSV line 3, column \"b\": \"\" is not a finite number",
        ),
        ("a,b\n1,NaN\n", None, "not a finite number"),
        ("a,b\n", None, "CSV has no data rows"),
        ("a,b\n1,2\n", Some("c"), "CSV has no column \"c\""),
        ("y\n1\n", Some("y"), "CSV has no feature columns"),
        ("a,b\n1,2\n3\n", None, "cannot read CSV"),
    ] {
        let err = Table::from_reader(csv.as_bytes(), label).unwrap_err();
        assert!(err.to_string().contains(want), "{csv:?}: {err}");
    }
}

#[test]
fn labels_as_the_feedback_endpoint_compares_them() {
    for (cell, want) in [
        ("2", json!(2)),
        ("-3", json!(-3)),
        ("2.0", json!(2)),
        ("2.5", json!("2.5")),
        ("true", json!(true)),
        ("false", json!(false)),
        ("setosa", json!("setosa")),
        ("", json!("")),
        ("1e400", json!("1e400")),
    ] {
        assert_eq!(label_value(cell), want, "{cell:?}");
    }
}

#[test]
fn request_shapes() {
    for (meta, batch, columns, want) in [
        (&[-1, 4][..], None, Some(4), Ok(vec![1, 4])),
        (&[-1, 4], Some(3), Some(4), Ok(vec![3, 4])),
        (&[-1, -1], Some(2), Some(5), Ok(vec![2, 5])),
        (
            &[-1, 4],
            None,
            Some(3),
            Err("cannot take CSV rows of 3 values"),
        ),
        (&[2, 4], None, Some(4), Ok(vec![2, 4])),
        (&[2, 4], Some(2), Some(4), Ok(vec![2, 4])),
        (&[2, 4], Some(3), Some(4), Err("fixed at 2, not --batch 3")),
        (&[-1], Some(4), Some(1), Ok(vec![4])),
        (
            &[-1],
            None,
            Some(2),
            Err("cannot take CSV rows of 2 values"),
        ),
        (&[-1, 2, 2], None, Some(4), Err("cannot take CSV rows")),
        (&[-1, 4], Some(5), None, Ok(vec![5, 4])),
        (&[-1, -1, 3], None, None, Ok(vec![1, 1, 3])),
        (&[], None, None, Ok(vec![])),
        (&[], Some(2), None, Err("a scalar input takes no batch")),
        (&[-1, 1 << 20], Some(2), None, Err("elements per request")),
        (&[-7, 4], None, None, Err("invalid dimension -7")),
    ] {
        let got = request_shape(meta, batch, columns);
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{meta:?} {batch:?} {columns:?}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{meta:?}: {got}"),
            (got, want) => panic!("{meta:?} {batch:?} {columns:?}: {got:?} vs {want:?}"),
        }
    }
}

#[test]
fn csv_rows_cycle_in_batches_with_their_labels() {
    let t = Table::from_reader(IRIS.as_bytes(), Some("species")).unwrap();
    let p = Payloads::new(&iris_meta(&[-1, 4], "FP32"), Some(t), Some(2)).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let first = p.make(0, Some("lg-0"), &mut rng);
    assert_eq!(
        body(&first),
        json!({"id": "lg-0", "inputs": [{
            "name": "float_input", "shape": [2, 4], "datatype": "FP32",
            "data": [5.1, 3.5, 1.4, 0.2, 6.0, 2.9, 4.5, 1.5],
        }]})
    );
    assert_eq!(first.labels, Some(vec![json!(0), json!(1)]));
    // Request 1 starts at row 2 and wraps to row 0.
    let second = p.make(1, None, &mut rng);
    assert_eq!(body(&second)["inputs"][0]["data"][0], json!(7.7));
    assert_eq!(body(&second)["inputs"][0]["data"][4], json!(5.1));
    assert!(body(&second).get("id").is_none());
    assert_eq!(second.labels, Some(vec![json!(2), json!(0)]));
    assert_eq!(p.describe()[0].shape, [2, 4]);
}

#[test]
fn csv_values_must_fit_the_datatype() {
    let ints = "a,b\n1,2\n3,4\n";
    let fractional = "a,b\n1,2.5\n";
    let negative = "a,b\n1,-2\n";
    let bits = "a,b\n1,0\n";
    for (csv, datatype, ok) in [
        (ints, "INT64", true),
        (ints, "INT8", true),
        (fractional, "INT32", false),
        (negative, "UINT8", false),
        (negative, "INT8", true),
        ("a,b\n1,300\n", "INT8", false),
        (bits, "BOOL", true),
        (ints, "BOOL", false),
        (fractional, "BYTES", true),
        (fractional, "FP16", true),
        (ints, "COMPLEX", false),
    ] {
        let t = Table::from_reader(csv.as_bytes(), None).unwrap();
        let got = Payloads::new(&iris_meta(&[-1, 2], datatype), Some(t), None);
        assert_eq!(got.is_ok(), ok, "{csv:?} as {datatype}: {:?}", got.err());
    }
}

#[test]
fn encodes_each_datatype() {
    for (datatype, want) in [
        ("INT32", json!([1, 0])),
        ("BOOL", json!([true, false])),
        ("BYTES", json!(["1", "0"])),
        ("FP64", json!([1.0, 0.0])),
    ] {
        let t = Table::from_reader("a,b\n1,0\n".as_bytes(), None).unwrap();
        let p = Payloads::new(&iris_meta(&[-1, 2], datatype), Some(t), None).unwrap();
        let b = body(&p.make(0, None, &mut StdRng::seed_from_u64(0)));
        assert_eq!(b["inputs"][0]["data"], want, "{datatype}");
        assert_eq!(b["inputs"][0]["datatype"], datatype);
    }
}

#[test]
fn random_values_fill_every_input() {
    let meta = ModelMetadata {
        inputs: vec![
            TensorMeta {
                name: "x".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 3],
            },
            TensorMeta {
                name: "n".into(),
                datatype: "INT64".into(),
                shape: vec![-1],
            },
            TensorMeta {
                name: "s".into(),
                datatype: "BYTES".into(),
                shape: vec![-1, -1],
            },
            TensorMeta {
                name: "b".into(),
                datatype: "BOOL".into(),
                shape: vec![-1, 2],
            },
        ],
    };
    let p = Payloads::new(&meta, None, Some(2)).unwrap();
    let b = body(&p.make(7, None, &mut StdRng::seed_from_u64(3)));
    let inputs = b["inputs"].as_array().unwrap();
    let sizes: Vec<usize> = inputs
        .iter()
        .map(|i| i["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [6, 2, 2, 4]);
    assert!(
        inputs[0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64().is_some_and(|f| (0.0..1.0).contains(&f)))
    );
    assert!(
        inputs[1]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_i64)
    );
    assert!(
        inputs[2]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_str().is_some_and(|s| s.len() == 8))
    );
    assert!(
        inputs[3]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_boolean)
    );
    assert_eq!(p.make(0, None, &mut StdRng::seed_from_u64(3)).labels, None);
}

#[test]
fn a_csv_feeds_the_first_input_only() {
    let mut meta = iris_meta(&[-1, 2], "FP32");
    meta.inputs.push(TensorMeta {
        name: "extra".into(),
        datatype: "INT8".into(),
        shape: vec![-1, 5],
    });
    let t = Table::from_reader("a,b\n1,2\n".as_bytes(), None).unwrap();
    let p = Payloads::new(&meta, Some(t), Some(3)).unwrap();
    let b = body(&p.make(0, None, &mut StdRng::seed_from_u64(0)));
    assert_eq!(
        b["inputs"][0]["data"],
        json!([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    );
    assert_eq!(b["inputs"][1]["shape"], json!([3, 5]));
    assert!(matches!(
        Payloads::new(&ModelMetadata { inputs: vec![] }, None, None),
        Err(InputError::NoInputs)
    ));
}
