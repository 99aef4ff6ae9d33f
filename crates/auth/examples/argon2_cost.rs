//! How long one password hash takes with the production argon2id parameters, so the cost of a
//! login (and the headroom against a login flood) is a measured number, not a guess.
//!
//! Run with `cargo run --release -p palisade-auth --example argon2_cost`.

use std::time::Instant;

fn main() -> Result<(), palisade_auth::AuthError> {
    const RUNS: usize = 10;
    // One warm-up run so page faults of the first 19 MiB allocation are not counted.
    let phc = palisade_auth::password::hash("warm-up password")?;
    let mut hash_ms = Vec::with_capacity(RUNS);
    let mut verify_ms = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let password = format!("benchmark password {i}");
        let start = Instant::now();
        let phc = palisade_auth::password::hash(&password)?;
        hash_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let ok = palisade_auth::password::verify(&password, &phc);
        verify_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(ok, "verification of a fresh hash failed");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "argon2id parameters: {}",
        phc.split('$').nth(3).unwrap_or("?")
    );
    println!(
        "hash:   {:.1} ms/hash (median of {RUNS}; min {:.1}, max {:.1})",
        median(&mut hash_ms),
        hash_ms.first().copied().unwrap_or(f64::NAN),
        hash_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "verify: {:.1} ms/verify (median of {RUNS})",
        median(&mut verify_ms)
    );
    Ok(())
}
