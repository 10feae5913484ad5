//! Dynamic batching: concurrent requests are stacked along dimension 0, run once and split
//! back, which turns many tiny runs into few large ones.
//!
//! One task per model owns the queue. It waits for a free session first, then collects
//! compatible requests (same output selection, same shapes past dimension 0) until the batch
//! is full or the oldest request has waited `max_delay`. While every session is busy,
//! requests simply pile up, so batches grow with load and latency stays low when idle.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};

use super::{
    model::{Computed, Model, RunError},
    tensor::{NamedTensor, TensorData},
    validate::Prepared,
};

/// Batching limits.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// Most rows (sum of dimension 0) in one run.
    pub max_batch_size: usize,
    /// Longest a request waits for others to join its batch.
    pub max_delay: Duration,
}

struct Pending {
    prepared: Prepared,
    rows: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Computed, RunError>>,
}

/// Called once per run with (requests merged, rows).
pub type BatchObserver = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Handle to the batching task of one model.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Batcher {
    /// Starts the batching task on the current runtime.
    pub fn spawn(model: Arc<Model>, config: BatchConfig, observe: BatchObserver) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(batch_loop(model, config, observe, rx));
        Batcher { tx }
    }

    /// Queues a request with `rows` rows and waits for its share of the batch result.
    pub async fn submit(&self, prepared: Prepared, rows: usize) -> Result<Computed, RunError> {
        let (reply, result) = oneshot::channel();
        let pending = Pending {
            prepared,
            rows,
            enqueued: Instant::now(),
            reply,
        };
        self.tx.send(pending).map_err(|_| RunError::Closed)?;
        result.await.map_err(|_| RunError::Closed)?
    }
}

/// Whether two requests can share a run.
fn compatible(a: &Prepared, b: &Prepared) -> bool {
    a.outputs == b.outputs
        && a.inputs.len() == b.inputs.len()
        && a.inputs.iter().zip(&b.inputs).all(|(x, y)| {
            x.name == y.name
                && x.data.datatype() == y.data.datatype()
                && x.shape.get(1..) == y.shape.get(1..)
        })
}

async fn batch_loop(
    model: Arc<Model>,
    config: BatchConfig,
    observe: BatchObserver,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let mut queue: VecDeque<Pending> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(p) => queue.push_back(p),
                None => return,
            }
        }
        let permit = match model.acquire().await {
            Ok(permit) => permit,
            Err(err) => {
                fail_all(queue, &mut rx, &err);
                return;
            }
        };
        let Some(oldest) = queue.front().map(|p| p.enqueued) else {
            continue;
        };
        let deadline = tokio::time::Instant::from_std(oldest + config.max_delay);
        loop {
            while let Ok(p) = rx.try_recv() {
                queue.push_back(p);
            }
            // An elapsed deadline must not reach `timeout_at`: the timer wheel would still
            // hold the batch for up to a millisecond tick.
            let full = compatible_rows(&queue) >= config.max_batch_size;
            if full || tokio::time::Instant::now() >= deadline {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => queue.push_back(p),
                Ok(None) | Err(_) => break,
            }
        }
        let batch = take_batch(&mut queue, config.max_batch_size);
        observe(batch.len(), batch.iter().map(|p| p.rows).sum());
        let model = Arc::clone(&model);
        // Concatenation, the run and the split all happen off the async executor.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            run_batch(&model, batch);
        });
    }
}

fn fail_all(queue: VecDeque<Pending>, rx: &mut mpsc::UnboundedReceiver<Pending>, err: &RunError) {
    rx.close();
    let rest = std::iter::from_fn(|| rx.try_recv().ok());
    for p in queue.into_iter().chain(rest) {
        let _ = p.reply.send(Err(match err {
            RunError::Closed => RunError::Closed,
            other => RunError::Runtime(other.to_string()),
        }));
    }
}

/// Rows of the queued requests that could join the head's batch.
fn compatible_rows(queue: &VecDeque<Pending>) -> usize {
    let Some(head) = queue.front() else { return 0 };
    queue
        .iter()
        .filter(|p| compatible(&head.prepared, &p.prepared))
        .map(|p| p.rows)
        .sum()
}

/// Removes the head and the compatible requests after it (in order) up to `max_rows`.
fn take_batch(queue: &mut VecDeque<Pending>, max_rows: usize) -> Vec<Pending> {
    let mut batch: Vec<Pending> = Vec::new();
    let mut rows = 0;
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(p) = queue.pop_front() {
        let fits = match batch.first() {
            None => true,
            Some(head) => compatible(&head.prepared, &p.prepared) && rows + p.rows <= max_rows,
        };
        if fits {
            rows += p.rows;
            batch.push(p);
        } else {
            rest.push_back(p);
        }
    }
    *queue = rest;
    batch
}

/// Runs one batch on the calling (blocking) thread and answers its requests.
fn run_batch(model: &Model, mut batch: Vec<Pending>) {
    let started = Instant::now();
    if batch.len() == 1 {
        let Some(p) = batch.pop() else { return };
        let queue = started - p.enqueued;
        let result = model
            .run_blocking(p.prepared.inputs, p.prepared.outputs.as_deref())
            .map(|(outputs, compute)| Computed {
                outputs,
                queue,
                compute,
                batch_size: p.rows,
            });
        let _ = p.reply.send(result);
        return;
    }
    let rows: Vec<usize> = batch.iter().map(|p| p.rows).collect();
    let total: usize = rows.iter().sum();
    let Some(outputs) = batch.first().map(|p| p.prepared.outputs.clone()) else {
        return;
    };
    let inputs = concat_inputs(&mut batch, total);
    let result = model.run_blocking(inputs, outputs.as_deref());
    let split =
        result.and_then(|(outs, compute)| Ok((split_outputs(&outs, &rows, total)?, compute)));
    match split {
        Ok((parts, compute)) => {
            for (p, outputs) in batch.into_iter().zip(parts) {
                let _ = p.reply.send(Ok(Computed {
                    outputs,
                    queue: started - p.enqueued,
                    compute,
                    batch_size: total,
                }));
            }
        }
        Err(err) => {
            let message = err.to_string();
            for p in batch {
                let _ = p.reply.send(Err(RunError::Runtime(message.clone())));
            }
        }
    }
}

/// Stacks the inputs of compatible requests along dimension 0 (moving the first one's buffers).
fn concat_inputs(batch: &mut [Pending], total: usize) -> Vec<NamedTensor> {
    let (head, tail) = batch.split_at_mut(1);
    let mut inputs = std::mem::take(&mut head[0].prepared.inputs);
    for (i, input) in inputs.iter_mut().enumerate() {
        let extra: usize = tail.iter().map(|p| p.prepared.inputs[i].data.len()).sum();
        reserve(&mut input.data, extra);
        for p in tail.iter() {
            input.data.extend_from(&p.prepared.inputs[i].data);
        }
        if let Some(dim) = input.shape.first_mut() {
            *dim = total as i64;
        }
    }
    inputs
}

fn reserve(data: &mut TensorData, extra: usize) {
    super::tensor::with_vec!(data, v => v.reserve(extra));
}

/// Cuts each batched output back into per-request tensors.
fn split_outputs(
    outputs: &[NamedTensor],
    rows: &[usize],
    total: usize,
) -> Result<Vec<Vec<NamedTensor>>, RunError> {
    let mut parts: Vec<Vec<NamedTensor>> = rows
        .iter()
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for out in outputs {
        if out.shape.first().copied() != Some(total as i64) {
            return Err(RunError::Runtime(format!(
                "output '{}' has shape {:?}, which does not follow the batch dimension ({total}); \
                 serve this model without --batching",
                out.name, out.shape
            )));
        }
        let per_row = out.data.len() / total.max(1);
        let mut start = 0;
        for (part, &n) in parts.iter_mut().zip(rows) {
            let mut shape = out.shape.clone();
            shape[0] = n as i64;
            let end = start + n * per_row;
            part.push(NamedTensor {
                name: out.name.clone(),
                shape,
                data: out.data.slice(start..end),
            });
            start = end;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(shape: &[i64], data: Vec<f32>, outputs: Option<&[&str]>) -> Prepared {
        Prepared {
            inputs: vec![NamedTensor {
                name: "x".into(),
                shape: shape.to_vec(),
                data: TensorData::Fp32(data),
            }],
            outputs: outputs.map(|o| o.iter().map(|s| s.to_string()).collect()),
            rows: shape.first().map(|&d| d as usize),
        }
    }

    #[test]
    fn compatibility() {
        let a = prepared(&[1, 2], vec![0.0; 2], None);
        assert!(compatible(&a, &prepared(&[3, 2], vec![0.0; 6], None)));
        assert!(!compatible(&a, &prepared(&[1, 3], vec![0.0; 3], None)));
        assert!(!compatible(
            &a,
            &prepared(&[1, 2], vec![0.0; 2], Some(&["y"]))
        ));
    }

    #[test]
    fn splits_outputs_by_rows() {
        let out = NamedTensor {
            name: "y".into(),
            shape: vec![3, 2],
            data: TensorData::Fp32(vec![1., 2., 3., 4., 5., 6.]),
        };
        let parts = split_outputs(&[out], &[1, 2], 3).expect("splits");
        assert_eq!(parts[0][0].shape, vec![1, 2]);
        assert_eq!(parts[0][0].data, TensorData::Fp32(vec![1., 2.]));
        assert_eq!(parts[1][0].data, TensorData::Fp32(vec![3., 4., 5., 6.]));
        let bad = NamedTensor {
            name: "y".into(),
            shape: vec![1],
            data: TensorData::Fp32(vec![1.]),
        };
        assert!(split_outputs(&[bad], &[1, 2], 3).is_err());
    }

    #[test]
    fn takes_compatible_requests_up_to_the_limit() {
        let mut queue = VecDeque::new();
        let mut push = |p: Prepared, rows| {
            let (reply, _) = oneshot::channel();
            queue.push_back(Pending {
                prepared: p,
                rows,
                enqueued: Instant::now(),
                reply,
            });
        };
        push(prepared(&[2, 1], vec![0.0; 2], None), 2);
        push(prepared(&[1, 3], vec![0.0; 3], None), 1);
        push(prepared(&[3, 1], vec![0.0; 3], None), 3);
        push(prepared(&[1, 1], vec![0.0; 1], None), 1);
        assert_eq!(compatible_rows(&queue), 6);
        let batch = take_batch(&mut queue, 4);
        assert_eq!(batch.iter().map(|p| p.rows).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(queue.len(), 2);
    }
}
