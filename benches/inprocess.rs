//! In-process baseline for the serving benchmark (`hack/bench/run.sh`): ONNX Runtime's
//! `Session::run` called in a loop from Rust, with the same model, thread budget, session
//! layout and concurrency as `modelpilot serve`, so the served numbers can be read as a
//! ratio of what the runtime itself delivers.
//!
//! `threads` CPU threads are split over `workers` sessions (`threads / workers` intra-op
//! threads each, spinning only with a single session), as the server does; `concurrency`
//! client threads share that pool and each records the latency of its runs (waiting for a
//! free session included). Prints one JSON object on stdout.
//!
//! ```text
//! ORT_DYLIB_PATH=... cargo bench --bench inprocess -- --model tiny.onnx --concurrency 16
//! ```

use std::{
    path::PathBuf,
    sync::{
        Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Parser;
use ort::{
    environment::Environment,
    session::{Session, SessionInputValue, builder::GraphOptimizationLevel},
    value::{Tensor, ValueType},
};

#[derive(Parser, Debug)]
struct Args {
    /// ONNX model with one FP32 input whose only dynamic dimension is the first.
    #[arg(long)]
    model: PathBuf,
    /// CPU thread budget, as `modelpilot serve --threads`.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Sessions, as `modelpilot serve --workers` (default: one per thread).
    #[arg(long)]
    workers: Option<usize>,
    /// Client threads running requests at the same time.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Rows per request (the first dimension).
    #[arg(long, default_value_t = 1)]
    rows: usize,
    /// Measurement time, after warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Upper bound on measured requests.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    /// Ignored: `cargo bench` passes it to every bench target.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Sessions shared by the client threads.
struct Pool {
    sessions: Mutex<Vec<Session>>,
    freed: Condvar,
}

impl Pool {
    fn run<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut guard = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut session = loop {
            match guard.pop() {
                Some(s) => break s,
                None => guard = self.freed.wait(guard).unwrap_or_else(|e| e.into_inner()),
            }
        };
        drop(guard);
        let out = f(&mut session);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        self.freed.notify_one();
        out
    }
}

/// The model's input: its name and shape with the first dimension set to `rows`.
fn input_spec(session: &Session, rows: usize) -> Result<(String, Vec<i64>)> {
    let [input] = session.inputs() else {
        bail!("the model must have exactly one input")
    };
    let ValueType::Tensor { shape, .. } = input.dtype() else {
        bail!("input is not a tensor")
    };
    let mut dims: Vec<i64> = shape.iter().copied().collect();
    match dims.first_mut() {
        Some(d) if *d < 0 => *d = i64::try_from(rows)?,
        _ => bail!("the input's first dimension must be dynamic"),
    }
    if dims.iter().any(|d| *d < 0) {
        bail!("only the first input dimension may be dynamic: {dims:?}");
    }
    Ok((input.name().to_string(), dims))
}

fn one_run(session: &mut Session, name: &str, dims: &[i64], data: &[f32]) -> Result<usize> {
    let tensor = Tensor::from_array((dims.to_vec(), data.to_vec()))?.into_dyn();
    let inputs: Vec<(String, SessionInputValue)> = vec![(name.to_string(), tensor.into())];
    let outputs = session.run(inputs)?;
    // Copy every output out, as a server must before answering.
    let mut elements = 0;
    for (_, value) in outputs.iter() {
        if let Ok((_, v)) = value.try_extract_tensor::<f32>() {
            elements += v.to_vec().len();
        } else if let Ok((_, v)) = value.try_extract_tensor::<i64>() {
            elements += v.to_vec().len();
        }
    }
    Ok(elements)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1_000.0
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dylib = std::env::var_os("ORT_DYLIB_PATH").context("ORT_DYLIB_PATH is not set")?;
    let env: Environment = ort::init_from(&dylib)?
        .with_name("inprocess-bench")
        .build()?;
    let workers = args
        .workers
        .unwrap_or(args.threads)
        .clamp(1, args.threads.max(1));
    let intra = (args.threads / workers).max(1);
    let sessions = (0..workers)
        .map(|_| {
            Session::builder(&env)?
                .with_optimization_level(GraphOptimizationLevel::All)?
                .with_intra_threads(intra)?
                .with_inter_threads(1)?
                .with_intra_op_spinning(workers == 1)?
                .commit_from_file(&args.model)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (name, dims) = input_spec(&sessions[0], args.rows)?;
    let len = dims.iter().product::<i64>() as usize;
    let data: Vec<f32> = (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let pool = Pool {
        sessions: Mutex::new(sessions),
        freed: Condvar::new(),
    };
    let warmup = Instant::now() + Duration::from_secs_f64((args.seconds / 5.0).min(2.0));
    let end = warmup + Duration::from_secs_f64(args.seconds);
    let done = AtomicU64::new(0);
    let latencies: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<Vec<u64>> {
                    let mut samples = Vec::new();
                    loop {
                        let start = Instant::now();
                        if start >= end || done.load(Ordering::Relaxed) >= args.max_requests {
                            return Ok(samples);
                        }
                        pool.run(|s| one_run(s, &name, &dims, &data))?;
                        if start >= warmup {
                            samples.push(start.elapsed().as_nanos() as u64);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect::<Result<Vec<_>>>()
    })?;
    let elapsed = (Instant::now().min(end) - warmup).as_secs_f64();
    let mut all: Vec<u64> = latencies.into_iter().flatten().collect();
    all.sort_unstable();
    let report = serde_json::json!({
        "requests": all.len(),
        "seconds": elapsed,
        "throughput": all.len() as f64 / elapsed,
        "p50_us": percentile(&all, 50.0),
        "p99_us": percentile(&all, 99.0),
        "threads": args.threads, "workers": workers, "intra_threads": intra,
        "concurrency": args.concurrency, "rows": args.rows,
    });
    println!("{report}");
    Ok(())
}
