//! Table tests of the signature format and of `compare`.

use super::*;
use crate::serve::tensor::DataType;

fn t(name: &str, datatype: &str, shape: &[i64]) -> TensorSignature {
    TensorSignature {
        name: name.into(),
        datatype: datatype.into(),
        shape: shape.to_vec(),
    }
}

fn sig(inputs: &[TensorSignature], outputs: &[TensorSignature]) -> Signature {
    Signature {
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
        truncated: None,
    }
}

fn iris() -> Signature {
    sig(
        &[t("float_input", "FP32", &[-1, 4])],
        &[
            t("label", "INT64", &[-1]),
            t("probabilities", "FP32", &[-1, 3]),
        ],
    )
}

/// Checks `compare` on each `(case, stable, candidate, differences)` row: no differences means
/// the two are compatible.
fn assert_compares<D: Into<String>>(cases: Vec<(&str, Signature, Signature, Vec<D>)>) {
    for (case, stable, candidate, want) in cases {
        let want: Vec<String> = want.into_iter().map(Into::into).collect();
        let got = compare(&stable, &candidate);
        if want.is_empty() {
            assert_eq!(got, Ok(()), "{case}");
        } else {
            assert_eq!(got, Err(want), "{case}");
        }
    }
}

#[test]
fn compare_table() {
    let x = |shape: &[i64]| t("x", "FP32", shape);
    let y = [t("y", "FP32", &[-1])];
    // (case, stable, candidate, differences; empty = equal)
    let cases: Vec<(&str, Signature, Signature, Vec<&str>)> = vec![
        ("identical", iris(), iris(), vec![]),
        ("both empty", sig(&[], &[]), sig(&[], &[]), vec![]),
        (
            "order does not matter",
            sig(&[x(&[-1, 4]), t("z", "INT64", &[1])], &y),
            sig(&[t("z", "INT64", &[1]), x(&[-1, 4])], &y),
            vec![],
        ),
        (
            "datatype",
            sig(&[t("float_input", "FP32", &[-1, 4])], &[]),
            sig(&[t("float_input", "FP64", &[-1, 4])], &[]),
            vec!["input float_input: datatype FP32 → FP64"],
        ),
        (
            "fixed dimension",
            sig(&[x(&[-1, 4])], &[]),
            sig(&[x(&[-1, 5])], &[]),
            vec!["input x: shape [-1,4] → [-1,5]"],
        ),
        (
            "dynamic becomes fixed",
            sig(&[x(&[-1, 4])], &[]),
            sig(&[x(&[1, 4])], &[]),
            vec!["input x: shape [-1,4] → [1,4]"],
        ),
        (
            "fixed becomes dynamic",
            sig(&[x(&[8, 4])], &[]),
            sig(&[x(&[-1, 4])], &[]),
            vec!["input x: shape [8,4] → [-1,4]"],
        ),
        (
            "rank",
            sig(&[], &[t("label", "INT64", &[-1])]),
            sig(&[], &[t("label", "INT64", &[-1, 1])]),
            vec!["output label: shape [-1] → [-1,1]"],
        ),
        (
            "scalar",
            sig(&[x(&[])], &[]),
            sig(&[x(&[1])], &[]),
            vec!["input x: shape [] → [1]"],
        ),
        (
            "datatype and shape: two differences",
            sig(&[x(&[-1, 4])], &[]),
            sig(&[t("x", "INT32", &[-1, 2])], &[]),
            vec![
                "input x: datatype FP32 → INT32",
                "input x: shape [-1,4] → [-1,2]",
            ],
        ),
        (
            "output missing",
            iris(),
            sig(
                &[t("float_input", "FP32", &[-1, 4])],
                &[t("label", "INT64", &[-1])],
            ),
            vec!["output probabilities missing"],
        ),
        (
            "input added",
            sig(&[x(&[-1, 4])], &y),
            sig(&[x(&[-1, 4]), t("mask", "BOOL", &[-1, 4])], &y),
            vec!["input mask added"],
        ),
        (
            "renamed: one missing, one added",
            sig(&[x(&[-1, 4])], &[]),
            sig(&[t("input", "FP32", &[-1, 4])], &[]),
            vec!["input x missing", "input input added"],
        ),
        (
            "inputs before outputs, stable order first",
            iris(),
            sig(
                &[t("float_input", "FP16", &[-1, 4])],
                &[
                    t("extra", "FP32", &[-1]),
                    t("probabilities", "FP32", &[-1, 2]),
                ],
            ),
            vec![
                "input float_input: datatype FP32 → FP16",
                "output label missing",
                "output probabilities: shape [-1,3] → [-1,2]",
                "output extra added",
            ],
        ),
    ];
    assert_compares(cases);
}

#[test]
fn json_is_canonical_and_round_trips() {
    let info = ModelInfo {
        name: "m".into(),
        version: "1".into(),
        inputs: vec![
            TensorSpec {
                name: "text".into(),
                datatype: DataType::Bytes,
                shape: vec![-1, 1],
            },
            TensorSpec {
                name: "half".into(),
                datatype: DataType::Fp16,
                shape: vec![-1, 2],
            },
        ],
        outputs: vec![TensorSpec {
            name: "flag".into(),
            datatype: DataType::Bool,
            shape: vec![3],
        }],
    };
    let signature = Signature::of(&info);
    let want = concat!(
        r#"{"inputs":[{"name":"text","datatype":"BYTES","shape":[-1,1]},"#,
        r#"{"name":"half","datatype":"FP16","shape":[-1,2]}],"#,
        r#""outputs":[{"name":"flag","datatype":"BOOL","shape":[3]}]}"#
    );
    assert_eq!(signature.to_json(), want);
    assert_eq!(signature.to_message(), want);
    assert_eq!(Signature::parse(want).ok(), Some(signature.clone()));
    // Key order and whitespace of the input do not matter; a trailing newline neither.
    let loose = r#" { "outputs": [{"shape":[3],"datatype":"BOOL","name":"flag"}],
        "inputs": [{"datatype":"BYTES","name":"text","shape":[-1,1]},
                   {"shape":[-1,2],"name":"half","datatype":"FP16"}] }
    "#;
    assert_eq!(Signature::parse(loose).ok(), Some(signature));
    for bad in [
        "",
        "not json",
        r#"{"inputs":[]}"#,
        r#"{"inputs":[{"name":"x"}],"outputs":[]}"#,
    ] {
        assert!(Signature::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn digest_ignores_order_but_not_content() {
    let a = sig(&[t("a", "FP32", &[1]), t("b", "FP32", &[2])], &[]);
    let b = sig(&[t("b", "FP32", &[2]), t("a", "FP32", &[1])], &[]);
    let c = sig(&[t("a", "FP32", &[1]), t("b", "FP32", &[3])], &[]);
    let moved = sig(&[t("a", "FP32", &[1])], &[t("b", "FP32", &[2])]);
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), c.digest());
    assert_ne!(a.digest(), moved.digest(), "an input is not an output");
    assert_eq!(a.digest().len(), 64);
}

/// A model with many long-named inputs: its signature does not fit in a termination message.
fn wide(inputs: usize, outputs: usize) -> Signature {
    let name = |kind: &str, i: usize| format!("{kind}_feature_with_a_rather_long_name_{i:04}");
    Signature {
        inputs: (0..inputs)
            .map(|i| t(&name("in", i), "FP32", &[-1, 1]))
            .collect(),
        outputs: (0..outputs)
            .map(|i| t(&name("out", i), "INT64", &[-1]))
            .collect(),
        truncated: None,
    }
}

fn cut(s: &Signature) -> Signature {
    let message = s.to_message();
    assert!(message.len() <= MAX_BYTES, "{} bytes", message.len());
    Signature::parse(&message).expect("a cut message parses")
}

#[test]
fn a_large_signature_is_cut_to_fit_and_says_so() {
    let full = wide(200, 5);
    assert!(full.to_json().len() > MAX_BYTES);
    let listed = cut(&full);
    let truncated = listed.truncated.clone().expect("marked truncated");
    assert_eq!((truncated.inputs, truncated.outputs), (200, 5));
    assert_eq!(truncated.sha256, full.digest());
    // Inputs and outputs are taken in turn: every output fits here, then inputs fill up.
    assert_eq!(listed.outputs, full.outputs);
    assert!(listed.inputs.len() > 20, "{}", listed.inputs.len());
    assert_eq!(listed.inputs[..], full.inputs[..listed.inputs.len()]);
    // Nearly the whole budget is used: one more input would not have fitted.
    let next = &full.inputs[listed.inputs.len()];
    assert!(listed.to_json().len() + next.json_len() + 1 > MAX_BYTES);
    // Cutting again changes nothing.
    assert_eq!(listed.to_message(), listed.to_json());
}

#[test]
fn truncated_signatures_still_compare_exactly() {
    let full = wide(200, 5);
    let listed = cut(&full);
    let shown = listed.inputs.len();

    let mut beyond = full.clone();
    beyond.inputs[199].shape = vec![-1, 2];
    let mut visible = full.clone();
    visible.inputs[0].datatype = "FP64".into();
    let mut one_more = full.clone();
    one_more.inputs.push(t(
        "in_feature_with_a_rather_long_name_0200",
        "FP32",
        &[-1, 1],
    ));
    let mut one_less = full.clone();
    one_less.outputs.pop();

    let beyond_msg = "the signatures differ beyond the tensors listed (the listing was truncated to fit the termination message)";
    // (case, stable, candidate, differences; empty = equal)
    let cases: Vec<(&str, Signature, Signature, Vec<String>)> = vec![
        ("cut vs cut of the same", listed.clone(), cut(&full), vec![]),
        ("cut vs whole", listed.clone(), full.clone(), vec![]),
        ("whole vs cut", full.clone(), listed.clone(), vec![]),
        (
            "a difference past the cut",
            listed.clone(),
            cut(&beyond),
            vec![beyond_msg.into()],
        ),
        (
            "a difference in the listing",
            listed.clone(),
            cut(&visible),
            vec![format!(
                "input {}: datatype FP32 → FP64",
                full.inputs[0].name
            )],
        ),
        (
            "one input more, against the whole stable: named",
            full.clone(),
            cut(&one_more),
            vec!["inputs: 200 → 201".into()],
        ),
        (
            "one output less, whole candidate: named as missing",
            listed.clone(),
            one_less.clone(),
            vec![
                "output out_feature_with_a_rather_long_name_0004 missing".into(),
                "outputs: 5 → 4".into(),
            ],
        ),
    ];
    assert!(shown < 200);
    assert_compares(cases);
}

#[test]
fn one_huge_tensor_name_leaves_an_empty_but_honest_listing() {
    let full = sig(&[t(&"n".repeat(5000), "FP32", &[1])], &[]);
    let listed = cut(&full);
    assert!(listed.inputs.is_empty());
    assert_eq!(
        listed.truncated.map(|t| (t.inputs, t.outputs)),
        Some((1, 0))
    );
}
