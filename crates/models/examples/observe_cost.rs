//! The baselines' judge-and-learn (`Baselines::observe_parsed`) as the Guard runs it,
//! for instruction counts and for proof that a change keeps every result.
//!
//! `observe_cost post|get|attack N`: the shapes of `scripts/lib/send-requests.py` (the
//! ~500 B form POST of `scripts/bench-ml-cost-ir.sh`), learnt 450 times (past the
//! warm-up and calibration, as that script's warm-up), then observed N more times;
//! count the observing under callgrind:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='*Baselines*observe_parsed*' \
//!   target/release/examples/observe_cost post 200
//! ```
//!
//! `observe_cost digest`: 30,000 generated ordinary requests learnt then judged, with
//! planted attacks among them, through `observe_parsed` and `train`; prints an FNV
//! digest of every observation (deviations, points, explanations, weights) and of the
//! baselines' snapshot (the saved JSON), and the same after a save and a restore:
//! two builds that print the same digests judge, explain, learn and save alike.

use std::hint::black_box;

use palisade_detect::{Engine, EngineConfig, HttpRequest, RuleSet};
use palisade_models::rng::Rng;
use palisade_models::{Baselines, BaselinesConfig, Category, generate};

const GET_PATH: &str = "/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=55&B1=A%F1adir+al+carrito";
const ATTACK_PATH: &str = "/tienda1/publico/anadir.jsp?id=3&nombre=Vino+Rioja&precio=100&cantidad=1%27%20OR%20%271%27%3D%271&B1=A%F1adir+al+carrito";
const POST_BODY: &str = "modo=registro&login=jdelgado&password=Sk9pTr4x21&nombre=Jacinta&apellidos=Delgado+Rubio&email=jacinta.delgado%40correo.example&dni=48213577K&direccion=Calle+Mayor+12%2C+3B&ciudad=Valladolid&cp=47001&provincia=Valladolid&ntc=4556737586899855&telefono=983123456&movil=600123456&nacimiento=12%2F04%2F1985&idioma=es&boletin=si&comentarios=Entrega+por+la+tarde+preferiblemente+entre+las+cinco+y+las+ocho+gracias&referencia=PED20101123&producto=Jamon+Iberico+de+bellota&cantidad=3&precio=39&B1=Registrar";

fn request(case: &str) -> Option<HttpRequest> {
    let mut headers = vec![
        ("Host".to_owned(), "localhost".to_owned()),
        (
            "User-Agent".to_owned(),
            "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0".to_owned(),
        ),
        ("Accept-Language".to_owned(), "en-US,en;q=0.5".to_owned()),
        (
            "Cookie".to_owned(),
            "JSESSIONID=EA414B3E327DED6875848530C864BD8F".to_owned(),
        ),
    ];
    let (method, uri, body) = match case {
        "get" => ("GET", GET_PATH, ""),
        "attack" => ("GET", ATTACK_PATH, ""),
        "post" => {
            headers.push((
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ));
            ("POST", "/tienda1/miembros/editar.jsp", POST_BODY)
        }
        _ => return None,
    };
    Some(HttpRequest {
        method: method.to_owned(),
        uri: uri.to_owned(),
        protocol: "HTTP/1.1".to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
        client_ip: None,
    })
}

/// FNV-1a over text.
fn fnv(h: &mut u64, text: &str) {
    for b in text.bytes() {
        *h ^= u64::from(b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn digest(engine: &Engine) {
    let baselines = Baselines::new(BaselinesConfig::default());
    let mut rng = Rng::new(5);
    let (mut h, mut deviations) = (0xcbf2_9ce4_8422_2325u64, 0usize);
    let families = Category::ALL;
    for i in 0..30_000usize {
        let ordinary = generate::ordinary(&mut rng);
        let r = if i % 37 == 36 {
            generate::attack(&ordinary, families[i % families.len()], &mut rng)
        } else {
            ordinary
        };
        if i % 5 == 0 {
            baselines.train(&r, Some(200));
            continue;
        }
        let (verdict, parsed) = engine.inspect_parsed(&r);
        let o = baselines.observe_parsed(
            &r,
            parsed.as_ref(),
            (i % 11 == 0).then_some(200),
            verdict.findings.is_empty(),
        );
        deviations += o.deviations.len();
        fnv(&mut h, &format!("{o:?}"));
    }
    println!("observations {h:016x} ({deviations} deviations)");
    let snap = baselines.snapshot();
    let mut rows: Vec<String> = snap
        .changed
        .iter()
        .map(|s| format!("{} {} {}", s.endpoint, s.requests, s.profile))
        .collect();
    rows.sort();
    let mut hs = 0xcbf2_9ce4_8422_2325u64;
    for row in &rows {
        fnv(&mut hs, row);
    }
    println!("snapshot {hs:016x} ({} rows)", rows.len());
    let restored = Baselines::new(BaselinesConfig::default());
    restored.restore(snap.changed);
    let mut hr = 0xcbf2_9ce4_8422_2325u64;
    let mut rng = Rng::new(6);
    for i in 0..3_000usize {
        let ordinary = generate::ordinary(&mut rng);
        let r = generate::attack(&ordinary, families[i % families.len()], &mut rng);
        fnv(&mut hr, &format!("{:?}", restored.judge(&r, None)));
        fnv(&mut hr, &format!("{:?}", restored.judge(&ordinary, None)));
    }
    println!("restored {hr:016x}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Ok(rules) = RuleSet::load(None) else {
        eprintln!("the built-in rules do not load");
        std::process::exit(1);
    };
    let engine = Engine::new(
        rules,
        EngineConfig {
            paranoia: 1,
            threshold: 5,
        },
    );
    let case = args.first().map_or("post", String::as_str);
    if case == "digest" {
        digest(&engine);
        return;
    }
    let Some(r) = request(case) else {
        eprintln!("usage: observe_cost post|get|attack N | digest");
        std::process::exit(2);
    };
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let baselines = Baselines::new(BaselinesConfig::default());
    let (verdict, parsed) = engine.inspect_parsed(&r);
    let clean = verdict.findings.is_empty();
    let learn = request(if case == "attack" { "get" } else { case }).unwrap_or(r.clone());
    let (_, learn_parsed) = engine.inspect_parsed(&learn);
    for _ in 0..450 {
        baselines.observe_parsed(&learn, learn_parsed.as_ref(), None, true);
    }
    let mut points = 0;
    for _ in 0..n {
        let o = baselines.observe_parsed(black_box(&r), parsed.as_ref(), None, clean);
        points += o.points;
        black_box(&o);
    }
    println!("{case}: {n} observed, {points} points, clean {clean}");
}
