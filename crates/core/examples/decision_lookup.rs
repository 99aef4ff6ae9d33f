//! What one `DecisionSet::verdict` costs, and what rebuilding the set on a change costs.
//!
//! `cargo run --release -p palisade-core --example decision_lookup [BANS]`
//!
//! The set holds BANS single addresses (default 100,000: 80% IPv4, 20% IPv6), 1,000 IPv4
//! /24s, 100 /16s, 1,000 IPv6 /64s and /48s, and 100 allow-list entries; lookups are
//! from a precomputed mix of addresses that miss, hit an address ban, hit a range, and
//! hit an allow-listed address.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use palisade_core::Timestamp;
use palisade_core::decision::{Decision, DecisionKind, DecisionOrigin, DecisionTarget};
use palisade_core::decision_set::DecisionSet;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn v4(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from((self.next() >> 32) as u32))
    }

    fn v6(&mut self) -> IpAddr {
        let hi = u128::from(0x2001_0db8_0000_0000u64 | (self.next() & 0xffff_ffff)) << 64;
        IpAddr::V6(Ipv6Addr::from(hi | u128::from(self.next())))
    }
}

fn decision(id: i64, kind: DecisionKind, target: &str) -> Decision {
    let t: DecisionTarget = target.parse().expect("target");
    Decision {
        id,
        kind,
        scope: t.scope(),
        value: t.to_string(),
        net: t.net(),
        origin: DecisionOrigin::Scenario,
        scenario: "bench".into(),
        created_by: "bench".into(),
        threat_id: None,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        expires_at: Some(Timestamp::now().add_micros(3_600_000_000)),
        deleted_at: None,
        deleted_by: None,
    }
}

fn per_op(n: usize, f: impl FnMut(usize)) -> f64 {
    let mut f = f;
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let bans: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut list = Vec::new();
    let mut banned = Vec::new();
    let mut id = 0;
    let mut push = |list: &mut Vec<Decision>, kind, target: String| {
        id += 1;
        list.push(decision(id, kind, &target));
    };
    for i in 0..bans {
        let ip = if i % 5 == 4 { rng.v6() } else { rng.v4() };
        banned.push(ip);
        push(&mut list, DecisionKind::Ban, ip.to_string());
    }
    let mut ranges = Vec::new();
    for _ in 0..1000 {
        let ip = rng.v4();
        ranges.push(ip);
        push(&mut list, DecisionKind::Ban, format!("{ip}/24"));
    }
    for _ in 0..100 {
        push(&mut list, DecisionKind::Ban, format!("{}/16", rng.v4()));
    }
    for i in 0..1000 {
        let bits = if i % 2 == 0 { 64 } else { 48 };
        push(&mut list, DecisionKind::Ban, format!("{}/{bits}", rng.v6()));
    }
    let mut allowed = Vec::new();
    for i in 0..100 {
        let ip = banned[i * 7];
        allowed.push(ip);
        push(&mut list, DecisionKind::Allow, ip.to_string());
    }
    let total = list.len();
    let set = DecisionSet::new();
    let start = Instant::now();
    set.replace(list, set.generation());
    let build_ms = start.elapsed().as_secs_f64() * 1000.0;

    const N: usize = 4_000_000;
    let mut misses = Vec::with_capacity(1024);
    for i in 0..1024 {
        misses.push(if i % 5 == 4 { rng.v6() } else { rng.v4() });
    }
    let hits: Vec<IpAddr> = banned.iter().skip(1000).take(1024).copied().collect();
    let in_ranges: Vec<IpAddr> = ranges.iter().take(1024).copied().collect();

    let miss = per_op(N, |i| {
        black_box(set.verdict(black_box(misses[i & 1023])));
    });
    let hit = per_op(N, |i| {
        black_box(set.verdict(black_box(hits[i % hits.len()])));
    });
    let range = per_op(N, |i| {
        black_box(set.verdict(black_box(in_ranges[i % in_ranges.len()])));
    });
    let allow = per_op(N, |i| {
        black_box(set.verdict(black_box(allowed[i % allowed.len()])));
    });
    // One change: what the API or the scenario engine pays per ban written.
    let upserts = 20;
    let upsert = per_op(upserts, |i| {
        set.upsert(decision(
            10_000_000 + i as i64,
            DecisionKind::Ban,
            "192.0.2.1",
        ));
    }) / 1e6;

    // Eight threads reading at once: no lock, so no contention between them.
    let threads = 8;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let set = &set;
            let misses = &misses;
            s.spawn(move || {
                for i in 0..N / threads {
                    black_box(set.verdict(black_box(misses[(i + t) & 1023])));
                }
            });
        }
    });
    let parallel = start.elapsed().as_nanos() as f64 / N as f64;

    println!("decisions in the set:          {total}");
    println!("full rebuild (reload):         {build_ms:.1} ms");
    println!("verdict, no decision (miss):   {miss:.1} ns");
    println!("verdict, banned address:       {hit:.1} ns");
    println!("verdict, address in a range:   {range:.1} ns");
    println!("verdict, allow-listed address: {allow:.1} ns");
    println!("upsert one decision:           {upsert:.2} ms");
    println!("{threads} threads, wall per lookup:  {parallel:.1} ns");
}
