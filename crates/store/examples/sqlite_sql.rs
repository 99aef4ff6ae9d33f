//! Runs one SQL statement against an SQLite file the way the store's readers do, for
//! looking at an events query by hand: its `EXPLAIN QUERY PLAN`, then `RUNS` timed
//! runs with the rows returned and SQLite's own counters (VM steps, full-scan steps,
//! sorts). The bundled SQLite, so that FTS5 tables with `contentless_delete` open
//! (Debian's `sqlite3` CLI is older).
//!
//! ```text
//! sqlite_sql DB 'SQL' [PARAM ...]   # PARAM: i:42, t:text, b:hexbytes, n (NULL)
//! ```
//!
//! `PRAGMAS="mmap_size=1073741824;cache_size=-16384"` sets pragmas on the connection
//! first; `RUNS` (default 3).
//!
//! `sqlite_sql DB --replay FILE` replays the statements of a trace (lines
//! `REPLAY<US>begin`, then `REPLAY<US>probe|run<US>SQL<US>PARAM...`, parameters as
//! above or `x:` hex UTF-8 text) on one connection, as one pooled reader would, and
//! prints each listing's wall and CPU time (`/proc/thread-self/schedstat`).

use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{Connection, StatementStatus};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn param(s: &str) -> Result<Value, BoxError> {
    Ok(match s.split_once(':') {
        Some(("i", v)) => Value::Integer(v.parse()?),
        Some(("t", v)) => Value::Text(v.to_owned()),
        Some(("x", v)) => Value::Text(String::from_utf8(hex(v)?)?),
        Some(("b", v)) => Value::Blob(hex(v)?),
        _ if s == "n" => Value::Null,
        _ => return Err(format!("bad parameter {s}").into()),
    })
}

fn hex(v: &str) -> Result<Vec<u8>, BoxError> {
    let bytes: Result<Vec<u8>, _> = (0..v.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v.get(i..i + 2).unwrap_or(""), 16))
        .collect();
    Ok(bytes?)
}

/// This thread's CPU time so far, ns.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn open(db: &str) -> Result<Connection, BoxError> {
    let conn = Connection::open(db)?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -16384;")?;
    if let Ok(pragmas) = std::env::var("PRAGMAS") {
        for p in pragmas.split(';').filter(|p| !p.trim().is_empty()) {
            conn.query_row(&format!("PRAGMA {p}"), [], |_| Ok(()))
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(()),
                    e => Err(e),
                })?;
        }
    }
    Ok(conn)
}

fn replay(db: &str, file: &str) -> Result<(), BoxError> {
    let conn = open(db)?;
    let text = std::fs::read_to_string(file)?;
    let mut listings: Vec<Vec<(String, Vec<Value>)>> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split('\x1f');
        if fields.next() != Some("REPLAY") {
            continue;
        }
        match fields.next() {
            Some("begin") => listings.push(Vec::new()),
            Some(_) => {
                let sql = fields.next().ok_or("no SQL")?.to_owned();
                let params = fields.map(param).collect::<Result<Vec<_>, _>>()?;
                if let Some(last) = listings.last_mut() {
                    last.push((sql, params));
                }
            }
            None => {}
        }
    }
    let (mut wall_total, mut cpu_total) = (0.0, 0.0);
    for (i, listing) in listings.iter().enumerate() {
        let started = Instant::now();
        let cpu = cpu_ns();
        let mut rows = 0usize;
        for (sql, params) in listing {
            let mut stmt = conn.prepare_cached(sql)?;
            let mut r = stmt.query(rusqlite::params_from_iter(params.iter()))?;
            rows = 0;
            while r.next()?.is_some() {
                rows += 1;
            }
        }
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        let cpu = (cpu_ns() - cpu) as f64 / 1e6;
        wall_total += wall;
        cpu_total += cpu;
        println!(
            "listing {i}: wall {wall:.2} ms cpu {cpu:.2} ms rows {rows} statements {}",
            listing.len()
        );
    }
    println!(
        "total: wall {wall_total:.1} ms cpu {cpu_total:.1} ms, {} listings",
        listings.len()
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let db = args.get(1).ok_or("usage: sqlite_sql DB SQL [PARAM ...]")?;
    let sql = args.get(2).ok_or("usage: sqlite_sql DB SQL [PARAM ...]")?;
    if sql == "--replay" {
        return replay(db, args.get(3).ok_or("--replay FILE")?);
    }
    let params: Vec<Value> = args
        .get(3..)
        .unwrap_or(&[])
        .iter()
        .map(|s| param(s))
        .collect::<Result<_, _>>()?;
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let conn = open(db)?;
    {
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = plan.query_map(rusqlite::params_from_iter(params.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (id, parent, detail) = row?;
            println!("plan {id} <- {parent}: {detail}");
        }
    }
    for run in 0..runs {
        let mut stmt = conn.prepare(sql)?;
        let started = Instant::now();
        let mut n = 0usize;
        let mut first = None;
        {
            let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
            while let Some(row) = rows.next()? {
                if first.is_none() {
                    first = Some(row.get::<_, Value>(0)?);
                }
                n += 1;
            }
        }
        let took = started.elapsed();
        println!(
            "run {run}: {:.2} ms, {n} rows, first {:?}, vm steps {}, fullscan steps {}, sorts {}, autoindex {}",
            took.as_secs_f64() * 1000.0,
            first,
            stmt.get_status(StatementStatus::VmStep),
            stmt.get_status(StatementStatus::FullscanStep),
            stmt.get_status(StatementStatus::Sort),
            stmt.get_status(StatementStatus::AutoIndex),
        );
    }
    Ok(())
}
