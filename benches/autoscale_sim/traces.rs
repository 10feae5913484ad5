//! The load traces: requests in flight demanded, one value per second. Four smooth shapes (what
//! each autoscaler does with a known shape) and one with arrival noise on top of a step (whether
//! it chases the noise: flapping).

use std::f64::consts::PI;

/// A named trace.
pub struct Trace {
    pub name: &'static str,
    /// Concurrent requests demanded during each second.
    pub demand: Vec<f64>,
}

/// Demand from a shape over `seconds` seconds.
fn trace(name: &'static str, seconds: u32, shape: impl Fn(f64) -> f64) -> Trace {
    Trace {
        name,
        demand: (0..seconds).map(|t| shape(f64::from(t))).collect(),
    }
}

/// Linear from `a` at `t0` to `b` at `t1`.
fn lerp(t: f64, (t0, a): (f64, f64), (t1, b): (f64, f64)) -> f64 {
    a + (b - a) * (t - t0) / (t1 - t0)
}

/// Deterministic noise in [-1, 1) for second `t` (an integer hash: the same every run).
fn noise(t: f64) -> f64 {
    let mut x = (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x % 2000) as f64 / 1000.0 - 1.0
}

/// The traces of the benchmark.
pub fn all() -> Vec<Trace> {
    vec![
        // 25 min: 4 in flight, a step to 32 at 5 min, back to 4 at 20 min.
        trace("step", 1500, |t| {
            if (300.0..1200.0).contains(&t) {
                32.0
            } else {
                4.0
            }
        }),
        // 30 min: 4, rising to 64 over 10 min, 5 min flat, falling to 4 over 5 min.
        trace("ramp", 1800, |t| match t {
            t if t < 300.0 => 4.0,
            t if t < 900.0 => lerp(t, (300.0, 4.0), (900.0, 64.0)),
            t if t < 1200.0 => 64.0,
            t if t < 1500.0 => lerp(t, (1200.0, 64.0), (1500.0, 4.0)),
            _ => 4.0,
        }),
        // 20 min: 8 in flight and a 30 s burst to 48 at 10 min.
        trace("spike", 1200, |t| {
            if (600.0..630.0).contains(&t) {
                48.0
            } else {
                8.0
            }
        }),
        // 30 min: a day compressed, 4 in flight at night, 40 at noon.
        trace("diurnal", 1800, |t| {
            22.0 - 18.0 * (2.0 * PI * t / 1800.0).cos()
        }),
        // 20 min: 20 in flight ± 30 % noise every second, a step to 32 (± 30 %) from 5 to
        // 12 min.
        trace("noisy", 1200, |t| {
            let level = if (300.0..720.0).contains(&t) {
                32.0
            } else {
                20.0
            };
            level * (1.0 + 0.3 * noise(t))
        }),
    ]
}
