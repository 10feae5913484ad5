//! The loaded model: ONNX Runtime sessions, the metadata read from them, request
//! validation against that metadata, and running inference off the async executor.
//!
//! `Session::run` needs `&mut Session`, so the model keeps a small pool of sessions (one per
//! worker) behind a semaphore; each run takes a session on a blocking thread and puts it back.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use ort::{
    environment::Environment,
    session::{
        OutputSelector, RunOptions, Session, SessionOutputs,
        builder::{GraphOptimizationLevel, SessionBuilder},
    },
    value::ValueType,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    ort_values::{self, OutputError, datatype_of},
    protocol::{ModelMetadata, TensorMetadata},
    tensor::{DataType, NamedTensor, TensorData, element_count},
};

/// A model input or output as declared by the ONNX graph (`-1` marks a dynamic dimension).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// What clients can know about the model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl ModelInfo {
    /// The protocol's model metadata document.
    pub fn metadata(&self) -> ModelMetadata {
        let convert = |specs: &[TensorSpec]| {
            specs
                .iter()
                .map(|s| TensorMetadata {
                    name: s.name.clone(),
                    datatype: s.datatype.as_str(),
                    shape: s.shape.clone(),
                })
                .collect()
        };
        ModelMetadata {
            name: self.name.clone(),
            versions: vec![self.version.clone()],
            platform: "onnxruntime_onnx",
            inputs: convert(&self.inputs),
            outputs: convert(&self.outputs),
        }
    }

    /// Whether every input and output has a dynamic first dimension, so that requests can
    /// be stacked along it.
    pub fn batchable(&self) -> bool {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .all(|s| s.shape.first() == Some(&-1))
    }
}

/// How sessions are built.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Sessions in the pool (requests run concurrently up to this many).
    pub workers: usize,
    /// Intra-op threads of each session.
    pub intra_threads: usize,
    pub optimization: GraphOptimizationLevel,
}

/// Why the model cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot load the ONNX Runtime library: {0} (set ORT_DYLIB_PATH to libonnxruntime.so, e.g. via `eval \"$(hack/pyenv.sh)\"`)"
    )]
    Library(String),
    #[error("not a loadable ONNX model ({path}): {message}")]
    Session { path: String, message: String },
    #[error("model {kind} '{name}' has type {ty}, which the server cannot carry")]
    UnsupportedType {
        kind: &'static str,
        name: String,
        ty: String,
    },
    #[error("warm-up run failed: {0}")]
    WarmUp(#[source] RunError),
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("ONNX Runtime rejected the inputs: {0}")]
    Invalid(String),
    #[error("inference failed: {0}")]
    Runtime(String),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("the model is shutting down")]
    Closed,
}

impl RunError {
    fn from_ort<R>(e: ort::Error<R>) -> RunError {
        match e.code() {
            ort::error::ErrorCode::InvalidArgument => RunError::Invalid(e.to_string()),
            _ => RunError::Runtime(e.to_string()),
        }
    }
}

/// Creates the process-wide ONNX Runtime environment from the library at `ORT_DYLIB_PATH`.
pub fn init_runtime() -> Result<Environment, LoadError> {
    let path = std::env::var_os("ORT_DYLIB_PATH")
        .ok_or_else(|| LoadError::Library("ORT_DYLIB_PATH is not set".into()))?;
    let builder = ort::init_from(&path).map_err(|e| LoadError::Library(e.to_string()))?;
    builder
        .with_name("modelpilot-serve")
        .build()
        .map_err(|e| LoadError::Library(e.to_string()))
}

/// A model ready to run.
pub struct Model {
    pub info: Arc<ModelInfo>,
    pool: Arc<SessionPool>,
    _env: Environment,
}

struct SessionPool {
    sessions: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
}

/// Output of one run, with where its time went.
#[derive(Debug)]
pub struct Computed {
    pub outputs: Vec<NamedTensor>,
    /// Time spent waiting for a free session (and, with batching, for the batch to form).
    pub queue: Duration,
    /// Time spent running the model, including tensor conversion.
    pub compute: Duration,
    /// Rows of the batch this request ran in (1 request = its own dim-0 size).
    pub batch_size: usize,
}

fn build_session(
    env: &Environment,
    path: &Path,
    config: &SessionConfig,
) -> Result<Session, String> {
    let builder: Result<SessionBuilder, String> = Session::builder(env)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.with_optimization_level(config.optimization)
                .map_err(|e| e.to_string())
        })
        .and_then(|b| {
            b.with_intra_threads(config.intra_threads)
                .map_err(|e| e.to_string())
        })
        .and_then(|b| b.with_inter_threads(1).map_err(|e| e.to_string()))
        .and_then(|b| {
            b.with_intra_op_spinning(config.workers == 1)
                .map_err(|e| e.to_string())
        });
    builder?.commit_from_file(path).map_err(|e| e.to_string())
}

fn specs(session: &Session, inputs: bool) -> Result<Vec<TensorSpec>, LoadError> {
    let (kind, outlets) = if inputs {
        ("input", session.inputs())
    } else {
        ("output", session.outputs())
    };
    outlets
        .iter()
        .map(|o| match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => match datatype_of(*ty) {
                Some(datatype) => Ok(TensorSpec {
                    name: o.name().to_owned(),
                    datatype,
                    shape: shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
                }),
                None => Err(LoadError::UnsupportedType {
                    kind,
                    name: o.name().to_owned(),
                    ty: format!("{ty:?}"),
                }),
            },
            other => Err(LoadError::UnsupportedType {
                kind,
                name: o.name().to_owned(),
                ty: format!("{other:?}"),
            }),
        })
        .collect()
}

impl Model {
    /// Loads `config.workers` sessions of the model at `path` (blocking).
    pub fn load(
        env: &Environment,
        path: &Path,
        name: &str,
        version: &str,
        config: &SessionConfig,
    ) -> Result<Model, LoadError> {
        let start = Instant::now();
        let session_error = |message| LoadError::Session {
            path: path.display().to_string(),
            message,
        };
        let workers = config.workers.max(1);
        let mut sessions = Vec::with_capacity(workers);
        for _ in 0..workers {
            sessions.push(build_session(env, path, config).map_err(session_error)?);
        }
        let info = ModelInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            inputs: specs(&sessions[0], true)?,
            outputs: specs(&sessions[0], false)?,
        };
        tracing::info!(
            sessions = workers,
            elapsed_ms = start.elapsed().as_millis() as u64,
            "sessions created"
        );
        Ok(Model {
            info: Arc::new(info),
            pool: Arc::new(SessionPool {
                sessions: Mutex::new(sessions),
                permits: Arc::new(Semaphore::new(workers)),
            }),
            _env: env.clone(),
        })
    }

    /// Runs every session once on zeros of the declared shapes (dynamic dims = 1), so the
    /// first real request does not pay for lazy initialisation (blocking).
    pub fn warm_up(&self) -> Result<(), LoadError> {
        let start = Instant::now();
        let workers = self.pool.permits.available_permits();
        let mut checked_out = Vec::with_capacity(workers);
        for _ in 0..workers {
            let inputs = self.zeros();
            let mut session = self
                .pool
                .take()
                .ok_or(LoadError::WarmUp(RunError::Closed))?;
            let result = run_session(&mut session, &self.info, inputs, None);
            checked_out.push(session);
            result.map_err(LoadError::WarmUp)?;
        }
        for session in checked_out {
            self.pool.put(session);
        }
        tracing::info!(
            sessions = workers,
            elapsed_ms = start.elapsed().as_millis() as u64,
            "warmed up"
        );
        Ok(())
    }

    fn zeros(&self) -> Vec<NamedTensor> {
        self.info
            .inputs
            .iter()
            .map(|spec| {
                let shape: Vec<i64> = spec
                    .shape
                    .iter()
                    .map(|&d| if d < 0 { 1 } else { d })
                    .collect();
                let len = element_count(&shape).unwrap_or(0);
                NamedTensor {
                    name: spec.name.clone(),
                    shape,
                    data: TensorData::zeros(spec.datatype, len),
                }
            })
            .collect()
    }

    /// Waits for a free session.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, RunError> {
        self.pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RunError::Closed)
    }

    /// Runs validated `inputs` on a blocking thread while holding `permit`. `outputs` selects
    /// outputs by name (`None` = all, in model order). Returns the outputs and compute time.
    pub async fn run_with(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        inputs: Vec<NamedTensor>,
        outputs: Option<Arc<[String]>>,
    ) -> Result<(Vec<NamedTensor>, Duration), RunError> {
        let model = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            model.run_blocking(inputs, outputs.as_deref())
        });
        task.await
            .map_err(|e| RunError::Runtime(format!("inference task failed: {e}")))?
    }

    /// Runs on the calling thread, which must hold a permit from [`Model::acquire`] and
    /// must not be an async executor thread. Returns the outputs and compute time.
    pub fn run_blocking(
        &self,
        inputs: Vec<NamedTensor>,
        outputs: Option<&[String]>,
    ) -> Result<(Vec<NamedTensor>, Duration), RunError> {
        let start = Instant::now();
        let mut session = self.pool.take().ok_or(RunError::Closed)?;
        let result = run_session(&mut session, &self.info, inputs, outputs);
        self.pool.put(session);
        result.map(|out| (out, start.elapsed()))
    }

    /// Runs one request on its own (no batching).
    pub async fn run(
        self: &Arc<Self>,
        inputs: Vec<NamedTensor>,
        outputs: Option<Arc<[String]>>,
    ) -> Result<Computed, RunError> {
        let enqueued = Instant::now();
        let batch_size = inputs
            .first()
            .and_then(|t| t.shape.first())
            .map_or(1, |&d| d.max(0) as usize);
        let permit = self.acquire().await?;
        let queue = enqueued.elapsed();
        let (outputs, compute) = self.run_with(permit, inputs, outputs).await?;
        Ok(Computed {
            outputs,
            queue,
            compute,
            batch_size,
        })
    }

    /// Closes the pool: waiting and future runs fail with [`RunError::Closed`].
    pub fn close(&self) {
        self.pool.permits.close();
    }
}

impl SessionPool {
    fn take(&self) -> Option<Session> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
    }
    fn put(&self, session: Session) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
    }
}

fn run_session(
    session: &mut Session,
    info: &ModelInfo,
    inputs: Vec<NamedTensor>,
    outputs: Option<&[String]>,
) -> Result<Vec<NamedTensor>, RunError> {
    let values = inputs
        .into_iter()
        .map(ort_values::to_input)
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::from_ort)?;
    match outputs {
        None => {
            let result = session.run(values).map_err(RunError::from_ort)?;
            let names = info.outputs.iter().map(|s| s.name.as_str());
            collect(&result, names)
        }
        Some(names) => {
            let selector = names
                .iter()
                .fold(OutputSelector::no_default(), |sel, name| {
                    sel.with(name.as_str())
                });
            let options = RunOptions::new()
                .map_err(RunError::from_ort)?
                .with_outputs(selector);
            let result = session
                .run_with_options(values, &options)
                .map_err(RunError::from_ort)?;
            collect(&result, names.iter().map(String::as_str))
        }
    }
}

fn collect<'n>(
    result: &SessionOutputs<'_>,
    names: impl Iterator<Item = &'n str>,
) -> Result<Vec<NamedTensor>, RunError> {
    names
        .map(|name| match result.get(name) {
            Some(value) => Ok(ort_values::from_output(name, value)?),
            None => Err(RunError::Runtime(format!(
                "output '{name}' missing from the result"
            ))),
        })
        .collect()
}
