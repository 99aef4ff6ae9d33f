//! `palisade train`: trains the request models on labelled corpora (the `palisade
//! eval` JSONL format) plus attacks generated from technique templates, and writes a
//! model file with its provenance and held-out figures.

use std::process::ExitCode;

use anyhow::Context as _;
use palisade_models::file::DataFile;
use palisade_models::train::{Provenance, Sample, TrainSettings, sha256_hex, train};
use palisade_models::{FeatureSettings, generate};

use crate::cli::TrainArgs;
use crate::commands::eval;

/// Loads the data, generates attacks, trains with a progress bar, saves the model.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let features = FeatureSettings {
        buckets_log2: args.buckets_log2,
        ..FeatureSettings::default()
    };
    if !features.valid() {
        anyhow::bail!(
            "--buckets-log2: {} is not between 10 and 24",
            args.buckets_log2
        );
    }
    if !(0.0..=0.5).contains(&args.held_out) {
        anyhow::bail!("--held-out: {} is not between 0 and 0.5", args.held_out);
    }
    let mut samples = Vec::new();
    let mut files = Vec::new();
    for path in &args.data {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        let rows = eval::load(path)?;
        files.push(DataFile {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: sha256_hex(&bytes),
            rows: rows.len(),
        });
        samples.extend(rows.into_iter().map(|s| Sample {
            request: s.request,
            attack: s.attack,
            category: None,
        }));
    }
    let settings = TrainSettings {
        features,
        epochs: args.epochs,
        seed: args.seed,
        held_out: args.held_out,
        ..TrainSettings::default()
    };
    // Chosen before the final model is trained, on a part of the same data held out
    // of a model trained on the rest (nothing else is ever seen).
    let operating_point = if args.calibrate {
        Some(super::calibrate::run(&samples, &args, settings)?)
    } else {
        None
    };
    let (samples, attacks) = with_generated(samples, &args);
    let n_attacks = samples.iter().filter(|s| s.attack).count();
    println!(
        "{} requests: {n_attacks} attacks ({attacks} generated), {} normal ({} generated)",
        samples.len(),
        samples.len() - n_attacks,
        args.generated_normal
    );
    let bar = indicatif::ProgressBar::new(0);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "training [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let provenance = Provenance {
        files,
        generated_attacks: attacks,
        generated_normal: args.generated_normal,
    };
    let mut model = train(&samples, settings, provenance, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    model.metadata.operating_point = operating_point;
    model
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({size} bytes), version {}",
        args.out.display(),
        model.metadata.model_version
    );
    if let Some(h) = &model.metadata.held_out {
        println!(
            "held out ({} requests): precision {:.4} recall {:.4} F1 {:.4} FPR {:.4} ROC-AUC {:.4}, category accuracy {:.4}",
            h.requests, h.precision, h.recall, h.f1, h.fpr, h.roc_auc, h.category_accuracy
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The labelled samples plus the generated ones `palisade train` adds (attacks planted
/// in the data's normal requests, and ordinary modern requests); returns them and the
/// number of generated attacks.
pub(crate) fn with_generated(mut samples: Vec<Sample>, args: &TrainArgs) -> (Vec<Sample>, usize) {
    let carriers: Vec<_> = samples
        .iter()
        .filter(|s| !s.attack)
        .map(|s| s.request.clone())
        .collect();
    let attacks = args.generated_attacks.unwrap_or(carriers.len());
    let generated = generate::corpus(&carriers, attacks, args.generated_normal, args.seed);
    samples.extend(generated.into_iter().map(|g| Sample {
        attack: g.category.is_some(),
        category: g.category,
        request: g.request,
    }));
    (samples, attacks)
}
