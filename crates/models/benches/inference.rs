//! Cost per request of each detector on one core, same run and same requests: the
//! signature rules (`Engine::inspect`, paranoia 1), the request model
//! (`Model::predict`, built-in model: features + both heads) and the per-endpoint
//! baselines (`Baselines::judge`, learnt first from 20,000 generated ordinary
//! requests), over 2,000 generated ordinary requests (`benign`, another seed than the
//! ones learnt) and 2,000 generated attacks (`attack`, the nine families in turn,
//! planted in ordinary requests). Criterion's `thrpt` is requests (inferences) per
//! second on one core.
//!
//! The rules keep a per-thread memo of parts seen before (`palisade_detect` `memo.rs`,
//! 4,096 slots): repeated user agents and hosts hit it here as in production, and
//! part of the parameters do too, since the same requests come round each iteration;
//! so the `rules` rows are a lower bound on the rules' cost. The model and the
//! baselines keep no such memo.
//!
//! Two more rows per group follow the requests as the Guard serves them: `observe`, the
//! baselines' judge-and-learn from the engine's parse (`Baselines::observe_parsed`,
//! learning the benign requests, not the attacks), and `defaults`, the shipped policy
//! (`Engine::inspect_parsed`; the advisory model only when the rules found something;
//! the baselines' observe), each on its own copy of the learnt baselines.
//!
//! `cargo bench -p palisade-models --bench inference`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
use palisade_models::rng::Rng;
use palisade_models::{Baselines, BaselinesConfig, Model, generate, slot};

fn bench(c: &mut Criterion) {
    let Ok(model) = Model::from_bytes(slot::BUILTIN) else {
        eprintln!("the built-in model does not load");
        return;
    };
    let Ok(rules) = RuleSet::load(None) else {
        eprintln!("the built-in rules do not load");
        return;
    };
    let engine = Engine::new(
        rules,
        EngineConfig {
            paranoia: 1,
            threshold: 5,
        },
    );
    let learnt = || {
        let baselines = Baselines::new(BaselinesConfig::default());
        let mut rng = Rng::new(1);
        for _ in 0..20_000 {
            baselines.train(&generate::ordinary(&mut rng), None);
        }
        baselines
    };
    let baselines = learnt();
    let (observing, serving) = (learnt(), learnt());
    let mut rng = Rng::new(42);
    let benign: Vec<HttpRequest> = (0..2000).map(|_| generate::ordinary(&mut rng)).collect();
    let carriers: Vec<HttpRequest> = (0..200).map(|_| generate::ordinary(&mut rng)).collect();
    let attack: Vec<HttpRequest> = generate::corpus(&carriers, 2000, 0, 43)
        .into_iter()
        .filter(|g| g.category.is_some())
        .map(|g| g.request)
        .collect();
    for (name, requests) in [("benign", &benign), ("attack", &attack)] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(requests.len() as u64));
        group.bench_function("rules", |b| {
            b.iter(|| {
                for r in requests {
                    black_box(engine.inspect(black_box(r)).score);
                }
            })
        });
        group.bench_function("model", |b| {
            b.iter(|| {
                for r in requests {
                    black_box(model.predict(black_box(r)).probability);
                }
            })
        });
        group.bench_function("baselines", |b| {
            b.iter(|| {
                for r in requests {
                    black_box(baselines.judge(black_box(r), None).points);
                }
            })
        });
        group.bench_function("rules+model+baselines", |b| {
            b.iter(|| {
                for r in requests {
                    let v = engine.inspect(black_box(r));
                    let p = model.predict(r);
                    let o = baselines.judge(r, None);
                    black_box((v.score, p.probability, o.points));
                }
            })
        });
        let learn = name == "benign";
        let parsed: Vec<palisade_detect::ParsedRequest> = requests
            .iter()
            .map(|r| palisade_detect::parse(r, 1))
            .collect();
        group.bench_function("observe", |b| {
            b.iter(|| {
                for (r, p) in requests.iter().zip(&parsed) {
                    let o = observing.observe_parsed(black_box(r), Some(p), None, learn);
                    black_box(o.points);
                }
            })
        });
        group.bench_function("defaults", |b| {
            b.iter(|| {
                for r in requests {
                    let (v, parsed) = engine.inspect_parsed(black_box(r));
                    let clean = v.findings.is_empty();
                    let p = (!clean).then(|| model.predict_parsed(r, parsed.as_ref()).probability);
                    let o = serving.observe_parsed(r, parsed.as_ref(), None, clean);
                    black_box((v.score, p, o.points));
                }
            })
        });
        group.finish();
    }
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group! {
        name = benches;
        config = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        targets = bench
    }
}
use group::benches;
criterion_main!(benches);
