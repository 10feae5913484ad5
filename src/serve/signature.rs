//! `modelpilot signature`: a model's inputs and outputs (names, datatypes, shapes), read from the
//! model file itself, and the comparison that refuses a candidate whose signature differs from
//! the stable model's before it takes any traffic.
//!
//! The operator runs this command in a Job next to the candidate's pods (the server image, the
//! same flags and credentials), and reads the result from the container's termination message.
//! The model is fetched, verified and loaded by the very code `modelpilot serve` uses
//! ([`super::fetch_and_load`]), so a file this command accepts is one the server loads.
//!
//! The result is one line of JSON with a fixed key order, in the protocol's datatypes (`FP32`,
//! `INT64`, `BYTES`, …) and with `-1` for a dynamic dimension:
//!
//! ```text
//! {"inputs":[{"name":"float_input","datatype":"FP32","shape":[-1,4]}],
//!  "outputs":[{"name":"label","datatype":"INT64","shape":[-1]}, …]}
//! ```
//!
//! The kubelet keeps at most [`MAX_BYTES`] of a termination message. A signature that does not
//! fit lists only the first tensors and says so in a `truncated` member holding the full counts
//! and a digest of the whole signature, so two truncated signatures still compare exactly.

use std::{collections::HashMap, path::PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    ModelFile,
    config::{DownloadArgs, OptimizationLevel},
    model::{ModelInfo, SessionConfig, TensorSpec},
    source::SourceLimits,
    termination::{self, MAX_BYTES},
};

/// One input or output.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TensorSignature {
    pub name: String,
    /// The Open Inference Protocol datatype (`FP32`, `INT64`, `BYTES`, …).
    pub datatype: String,
    /// Dimensions, `-1` where the model leaves one dynamic.
    pub shape: Vec<i64>,
}

/// Present when the listing was cut to fit the termination message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Truncated {
    /// Inputs the model has (the listing holds fewer).
    pub inputs: usize,
    /// Outputs the model has.
    pub outputs: usize,
    /// [`Signature::digest`] of the whole signature.
    pub sha256: String,
}

/// A model's signature, as `modelpilot signature` prints it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Signature {
    pub inputs: Vec<TensorSignature>,
    pub outputs: Vec<TensorSignature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
}

impl TensorSignature {
    fn of(spec: &TensorSpec) -> TensorSignature {
        TensorSignature {
            name: spec.name.clone(),
            datatype: spec.datatype.as_str().to_owned(),
            shape: spec
                .shape
                .iter()
                .map(|&d| if d < 0 { -1 } else { d })
                .collect(),
        }
    }

    fn json_len(&self) -> usize {
        serde_json::to_string(self).map_or(usize::MAX, |s| s.len())
    }
}

impl Signature {
    /// The signature of a loaded model, tensors in the model's order.
    pub fn of(info: &ModelInfo) -> Signature {
        Signature {
            inputs: info.inputs.iter().map(TensorSignature::of).collect(),
            outputs: info.outputs.iter().map(TensorSignature::of).collect(),
            truncated: None,
        }
    }

    /// Reads a signature printed by `modelpilot signature`.
    pub fn parse(text: &str) -> Result<Signature, serde_json::Error> {
        serde_json::from_str(text.trim())
    }

    /// The whole signature as one line of JSON (may exceed [`MAX_BYTES`]).
    pub fn to_json(&self) -> String {
        // Strings, integers and sequences only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// SHA-256 (hex) of the signature with its tensors sorted by name: equal digests mean the
    /// same names, datatypes and shapes, whatever the order. A truncated listing returns the
    /// digest of the whole signature it was cut from.
    pub fn digest(&self) -> String {
        if let Some(t) = &self.truncated {
            return t.sha256.clone();
        }
        let sorted = |tensors: &[TensorSignature]| {
            let mut v = tensors.to_vec();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            v
        };
        let canonical = Signature {
            inputs: sorted(&self.inputs),
            outputs: sorted(&self.outputs),
            truncated: None,
        };
        hex::encode(Sha256::digest(canonical.to_json().as_bytes()))
    }

    /// The termination message: [`Signature::to_json`] when it fits in [`MAX_BYTES`], else a
    /// listing cut to fit — the first tensors, taken from inputs and outputs in turn — with a
    /// `truncated` member giving the full counts and the digest of the whole signature.
    pub fn to_message(&self) -> String {
        let full = self.to_json();
        if full.len() <= MAX_BYTES || self.truncated.is_some() {
            return full;
        }
        let mut cut = Signature {
            inputs: Vec::new(),
            outputs: Vec::new(),
            truncated: Some(Truncated {
                inputs: self.inputs.len(),
                outputs: self.outputs.len(),
                sha256: self.digest(),
            }),
        };
        // Each tensor costs its JSON plus at most one comma.
        let mut budget = MAX_BYTES.saturating_sub(cut.to_json().len());
        let (mut i, mut o) = (0, 0);
        let (mut inputs_open, mut outputs_open) = (true, true);
        while inputs_open || outputs_open {
            let take_input = inputs_open && (!outputs_open || i <= o);
            let (list, next, open) = if take_input {
                (&self.inputs, &mut i, &mut inputs_open)
            } else {
                (&self.outputs, &mut o, &mut outputs_open)
            };
            let cost = list.get(*next).map(|t| t.json_len().saturating_add(1));
            match cost {
                Some(cost) if cost <= budget => {
                    budget -= cost;
                    *next += 1;
                }
                _ => *open = false,
            }
        }
        cut.inputs = self.inputs[..i].to_vec();
        cut.outputs = self.outputs[..o].to_vec();
        cut.to_json()
    }
}

/// Every difference between the stable model's signature and a candidate's, in words; `Ok` when
/// names, datatypes and shapes are exactly equal (`-1` matches only `-1`; the order of tensors
/// does not matter, clients address them by name).
///
/// ```
/// use modelpilot::serve::signature::{Signature, compare};
/// let stable = Signature::parse(
///     r#"{"inputs":[{"name":"float_input","datatype":"FP32","shape":[-1,4]}],
///        "outputs":[{"name":"label","datatype":"INT64","shape":[-1]},
///                   {"name":"probabilities","datatype":"FP32","shape":[-1,3]}]}"#,
/// ).unwrap();
/// let candidate = Signature::parse(
///     r#"{"inputs":[{"name":"float_input","datatype":"FP64","shape":[-1,5]}],
///        "outputs":[{"name":"label","datatype":"INT64","shape":[-1]},
///                   {"name":"scores","datatype":"FP32","shape":[-1,3]}]}"#,
/// ).unwrap();
/// assert_eq!(
///     compare(&stable, &candidate),
///     Err(vec![
///         "input float_input: datatype FP32 → FP64".to_owned(),
///         "input float_input: shape [-1,4] → [-1,5]".to_owned(),
///         "output probabilities missing".to_owned(),
///         "output scores added".to_owned(),
///     ])
/// );
/// assert_eq!(compare(&stable, &stable), Ok(()));
/// ```
///
/// When either listing was truncated, the tensors both list are compared one by one and the
/// digests of the whole signatures decide the rest.
pub fn compare(stable: &Signature, candidate: &Signature) -> Result<(), Vec<String>> {
    let truncated = stable.truncated.is_some() || candidate.truncated.is_some();
    let mut differences = Vec::new();
    for (kind, old, new, old_complete, new_complete) in [
        (
            "input",
            &stable.inputs,
            &candidate.inputs,
            stable.truncated.is_none(),
            candidate.truncated.is_none(),
        ),
        (
            "output",
            &stable.outputs,
            &candidate.outputs,
            stable.truncated.is_none(),
            candidate.truncated.is_none(),
        ),
    ] {
        compare_tensors(
            kind,
            (old, old_complete),
            (new, new_complete),
            &mut differences,
        );
    }
    if truncated {
        let count = |s: &Signature| match &s.truncated {
            Some(t) => (t.inputs, t.outputs),
            None => (s.inputs.len(), s.outputs.len()),
        };
        let ((old_in, old_out), (new_in, new_out)) = (count(stable), count(candidate));
        if old_in != new_in {
            differences.push(format!("inputs: {old_in} → {new_in}"));
        }
        if old_out != new_out {
            differences.push(format!("outputs: {old_out} → {new_out}"));
        }
        if differences.is_empty() && stable.digest() != candidate.digest() {
            differences.push(
                "the signatures differ beyond the tensors listed (the listing was truncated \
                 to fit the termination message)"
                    .to_owned(),
            );
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences)
    }
}

/// Differences between two lists of tensors of one kind. A name absent from a list that is
/// not complete (truncated) is not a difference: it may lie beyond the cut.
fn compare_tensors<'a>(
    kind: &str,
    (old, old_complete): (&'a [TensorSignature], bool),
    (new, new_complete): (&'a [TensorSignature], bool),
    out: &mut Vec<String>,
) {
    let by_name = |list: &'a [TensorSignature]| -> HashMap<&'a str, &'a TensorSignature> {
        list.iter().map(|t| (t.name.as_str(), t)).collect()
    };
    let (old_names, new_names) = (by_name(old), by_name(new));
    for o in old {
        match new_names.get(o.name.as_str()) {
            Some(n) => {
                if o.datatype != n.datatype {
                    out.push(format!(
                        "{kind} {}: datatype {} → {}",
                        o.name, o.datatype, n.datatype
                    ));
                }
                if o.shape != n.shape {
                    out.push(format!(
                        "{kind} {}: shape {} → {}",
                        o.name,
                        shape_text(&o.shape),
                        shape_text(&n.shape)
                    ));
                }
            }
            None if new_complete => out.push(format!("{kind} {} missing", o.name)),
            None => {}
        }
    }
    if old_complete {
        for n in new
            .iter()
            .filter(|n| !old_names.contains_key(n.name.as_str()))
        {
            out.push(format!("{kind} {} added", n.name));
        }
    }
}

/// `[-1,4]`: the shape as the signature JSON writes it.
fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(","))
}

/// Flags of `modelpilot signature`: the model flags of `modelpilot serve`, read from the same
/// `MODELPILOT_*` environment variables.
#[derive(clap::Args, Debug, Clone)]
pub struct SignatureArgs {
    /// Where the ONNX model is: a local path, file://, https:// or s3://bucket/key.
    #[arg(long, env = "MODELPILOT_MODEL_URI")]
    pub model_uri: String,
    /// Expected SHA-256 of the model file (hex); reading fails on a mismatch.
    #[arg(long, env = "MODELPILOT_SHA256")]
    pub sha256: Option<String>,
    /// ONNX Runtime graph optimisation level (as the server loads the model).
    #[arg(
        long,
        env = "MODELPILOT_GRAPH_OPTIMIZATION_LEVEL",
        value_enum,
        default_value = "all"
    )]
    pub graph_optimization_level: OptimizationLevel,
    /// Where and how the model is downloaded (the same flags as `modelpilot serve`).
    #[command(flatten)]
    pub download: DownloadArgs,
    /// File that receives the signature, or the error (the default path is written only when
    /// it exists, as it does in a pod).
    #[arg(
        long,
        env = "MODELPILOT_TERMINATION_MESSAGE_PATH",
        default_value = termination::DEFAULT_PATH
    )]
    pub termination_message_path: PathBuf,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "MODELPILOT_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,
    /// Log level or filter directive (RUST_LOG wins when set).
    #[arg(long, env = "MODELPILOT_LOG_LEVEL", default_value = "info,ort=warn")]
    pub log_level: String,
}

impl SignatureArgs {
    fn source_limits(&self) -> SourceLimits {
        self.download.source_limits()
    }
}

/// Entry point of `modelpilot signature`: prints the signature message and writes it to the
/// termination message file; on failure writes the one-line error there instead.
pub fn main(args: SignatureArgs) -> anyhow::Result<()> {
    crate::telemetry::init_logging(args.log_format, &args.log_level);
    let target = termination::Target::for_path(&args.termination_message_path);
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(read(&args)))
        .and_then(|signature| {
            let message = signature.to_message();
            println!("{message}");
            if !target.absent_default() {
                target.write_text(&message).with_context(|| {
                    format!("cannot write the signature to {}", target.path.display())
                })?;
            }
            Ok(())
        });
    if let Err(err) = &result {
        target.write(err);
    }
    result
}

/// Fetches, verifies and loads the model as `modelpilot serve` does (one session, no warm-up:
/// only the declared inputs and outputs are read).
async fn read(args: &SignatureArgs) -> anyhow::Result<Signature> {
    let file = ModelFile {
        uri: &args.model_uri,
        sha256: args.sha256.as_deref(),
        limits: args.source_limits(),
    };
    let session = SessionConfig {
        workers: 1,
        intra_threads: 1,
        optimization: args.graph_optimization_level.into(),
    };
    let model = super::fetch_and_load(&file, session, ("signature", ""), false).await?;
    let signature = Signature::of(&model.info);
    model.close();
    Ok(signature)
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
