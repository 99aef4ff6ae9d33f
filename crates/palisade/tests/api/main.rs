//! Black-box tests of the service: each starts the real application on a random port
//! with its own SQLite file or PostgreSQL schema (see `helpers.rs`).

mod helpers;

mod activities;
mod alerts;
mod analytics;
mod auth_hardening;
mod baselines;
mod check;
mod crs;
mod dashboard;
mod decisions;
mod devices;
mod events;
mod flows;
mod health;
mod ingest;
mod jobs;
#[cfg(feature = "kafka")]
mod kafka;
mod listener;
mod live;
mod models;
mod openapi;
mod outage;
mod pipeline;
mod posture;
mod proxy;
mod security;
mod verdicts;
mod vulnerabilities;
mod webdriver;
