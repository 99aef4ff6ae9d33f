//! The live bus relay over PostgreSQL (`LISTEN`/`NOTIFY` + the `live_relay` table for
//! large batches): what one node publishes reaches the others, in order, and never
//! comes back to itself. PostgreSQL only (scale-out roles refuse SQLite); uses
//! `PALISADE_TEST_DATABASE_URL` in a schema of its own.

use std::time::Duration;

use palisade_store::Store as _;
use palisade_store::postgres::PgStore;
use palisade_store::postgres::relay::LiveRelay;

fn pg_url() -> String {
    std::env::var("PALISADE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn schema_url() -> (String, String) {
    let base = pg_url();
    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL reachable at PALISADE_TEST_DATABASE_URL");
    tokio::spawn(conn);
    let schema = format!(
        "relay_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    (
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    )
}

async fn drop_schema(schema: &str) {
    let (admin, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let _ = admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await;
}

#[tokio::test]
async fn relayed_events_reach_other_nodes_in_order_small_and_large() {
    let (url, schema) = schema_url().await;
    PgStore::connect_lazy(&url)
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let worker = LiveRelay::new(&url, "worker-1").unwrap();
    let api = LiveRelay::new(&url, "api-1").unwrap();
    assert!(api.channel().ends_with(&schema.to_ascii_lowercase()));
    let mut api_in = api.listen().await.unwrap();
    let mut worker_in = worker.listen().await.unwrap();
    let out = worker.publisher().await.unwrap();

    let small = vec![
        ("threats".to_owned(), r#"{"id":1}"#.to_owned()),
        ("alerts".to_owned(), r#"{"id":2}"#.to_owned()),
    ];
    // Larger than a NOTIFY payload may be: goes through the table.
    let big_text = "x".repeat(20_000);
    let large = vec![("traffic".to_owned(), format!(r#"{{"blob":"{big_text}"}}"#))];
    out.send(&small).await.unwrap();
    out.send(&large).await.unwrap();
    out.send(&[("jobs".to_owned(), "3".to_owned())])
        .await
        .unwrap();

    let within = Duration::from_secs(10);
    let first = tokio::time::timeout(within, api_in.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), small);
    let second = tokio::time::timeout(within, api_in.next()).await.unwrap();
    let second = second.unwrap().unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].0, "traffic");
    let data: serde_json::Value = serde_json::from_str(&second[0].1).unwrap();
    assert_eq!(data["blob"].as_str().unwrap().len(), 20_000);
    let third = tokio::time::timeout(within, api_in.next()).await.unwrap();
    assert_eq!(third.unwrap().unwrap(), vec![("jobs".into(), "3".into())]);

    // The publishing node does not hear itself.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), worker_in.next())
            .await
            .is_err()
    );
    // Old stored batches are pruned.
    assert_eq!(out.prune(Duration::ZERO).await.unwrap(), 1);
    drop(api_in);
    drop(worker_in);
    drop_schema(&schema).await;
}
