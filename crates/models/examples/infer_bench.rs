//! Inference speed of the built-in request model on one core: features (the engine's
//! parser plus n-gram hashing) and both heads, over generated requests.
//!
//! `cargo run --release -p palisade-models --example infer_bench`

use std::time::Instant;

use palisade_models::{Model, generate, slot};

fn main() {
    let model = match Model::from_bytes(slot::BUILTIN) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("built-in model: {e}");
            std::process::exit(1);
        }
    };
    let requests: Vec<_> = generate::corpus(&[], 1000, 1000, 42)
        .into_iter()
        .map(|g| g.request)
        .collect();
    let mut sink = 0.0f32;
    for r in &requests {
        sink += model.predict(r).probability;
    }
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        for r in &requests {
            sink += model.predict(r).probability;
        }
    }
    let n = rounds * requests.len();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "model {}: {n} inferences in {secs:.3} s = {:.0} inferences/s on one core ({:.2} µs each) [checksum {sink:.1}]",
        model.metadata.model_version,
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}
