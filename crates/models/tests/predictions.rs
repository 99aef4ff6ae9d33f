//! The built-in model's features and predictions on a fixed set of requests, pinned by
//! digest: any change to the features, the heads or the parse under them that moves a
//! single bit of a feature value, an index or a probability fails here. Training calls
//! the same [`Featurizer::features`], so identical features also mean `palisade train`
//! still gives the committed `default/http.pmodel` (README, "The built-in model").
//!
//! The digests were recorded with the code before the ml-cost4 speed work (5f25e20).

use palisade_detect::{HttpRequest, parse};
use palisade_models::rng::Rng;
use palisade_models::{Featurizer, Model, generate, slot};

/// FNV-1a over 64-bit words.
struct Digest(u64);

impl Digest {
    fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Generated attacks of every family in ordinary carriers, ordinary traffic (JSON, forms,
/// long tokens, non-English text) and a few odd requests (bytes that are not UTF-8, a
/// long part past the n-gram cap, an empty request).
fn requests() -> Vec<HttpRequest> {
    let mut rng = Rng::new(42);
    let mut out: Vec<HttpRequest> = (0..600).map(|_| generate::ordinary(&mut rng)).collect();
    let carriers: Vec<HttpRequest> = (0..60).map(|_| generate::ordinary(&mut rng)).collect();
    out.extend(
        generate::corpus(&carriers, 900, 300, 43)
            .into_iter()
            .map(|g| g.request),
    );
    let mut odd = HttpRequest {
        method: "PUT".into(),
        uri: format!("/a/{}/b?x={}&%ff=%00", "y".repeat(700), "é".repeat(300)),
        protocol: "HTTP/1.1".into(),
        headers: vec![
            ("User-Agent".into(), "curl/8.0 ' or 1=1".into()),
            ("Referer".into(), "http://x/../../etc/passwd".into()),
            ("Content-Type".into(), "application/octet-stream".into()),
        ],
        ..Default::default()
    };
    odd.body = vec![0xff, 0xfe, 0, 1, 2, b'<', b's'];
    out.push(odd);
    out.push(HttpRequest::default());
    out
}

fn digests() -> (u64, u64, u64) {
    let Ok(model) = Model::from_bytes(slot::BUILTIN) else {
        panic!("the built-in model does not load");
    };
    let z = Featurizer::new(model.metadata.features);
    let (mut features, mut predictions, mut parsed_predictions) =
        (Digest::new(), Digest::new(), Digest::new());
    for r in requests() {
        let f = z.features(&r);
        features.add(f.len() as u64);
        for (i, v) in &f {
            features.add(u64::from(*i) << 32 | u64::from(v.to_bits()));
        }
        let p = model.predict(&r);
        predictions.add(u64::from(p.probability.to_bits()));
        predictions.add(p.category.index() as u64);
        predictions.add(u64::from(p.category_probability.to_bits()));
        for paranoia in [1, 2] {
            let q = model.predict_parsed(&r, Some(&parse(&r, paranoia)));
            parsed_predictions.add(u64::from(q.probability.to_bits()));
            parsed_predictions.add(q.category.index() as u64);
            parsed_predictions.add(u64::from(q.category_probability.to_bits()));
        }
    }
    (features.0, predictions.0, parsed_predictions.0)
}

#[test]
fn the_built_in_models_features_and_predictions_are_bit_for_bit_those_recorded() {
    let (f, p, q) = digests();
    println!("features {f:016x} predictions {p:016x} parsed {q:016x}");
    assert_eq!(
        (f, p, q),
        (
            0x1db1_f5ac_f73e_54c9,
            0x521b_4fe0_94eb_4e6b,
            0x6203_a8c1_f94e_35d1
        ),
        "features {f:016x} predictions {p:016x} parsed {q:016x}"
    );
}
