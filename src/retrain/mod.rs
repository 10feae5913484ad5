//! Retraining: when drift or a drop in accuracy is detected, the operator runs the user's
//! training Job and turns what the Job reports into a candidate revision of the model.
//!
//! The Job is the user's code in the user's image; the operator only sees its environment (the
//! trigger, the current model, where to write) and its termination message (the new model).
//! This module keeps that boundary narrow and checked: [`result`] reads the Job's report and
//! refuses anything a `ModelDeployment` could not serve.

pub mod decide;
pub mod result;
