//! The free-text index behind `q` (`[search] text_index`): built from the stored
//! events when switched on, kept up to date by writes and deletes, dropped when
//! switched off, and never changing a result: every search answers exactly what the
//! unindexed search answers, page by page.

use palisade_core::{Event, Timestamp};
use palisade_store::{Cursor, DataKind, EventQuery, SearchConfig, SharedStore, StatusFilter};

use crate::harness::{Db, T0, contract, ev, every_page, write};

contract!(
    same_results_with_and_without_the_index,
    index_follows_the_setting_and_the_writes,
    a_large_prefix_with_a_word_gives_the_same_results,
    candidates_read_newest_id_first_give_the_same_pages,
    a_small_prefix_with_a_word_gives_the_same_results,
    a_large_network_with_a_word_gives_the_same_results,
);

/// Both indexes on (PostgreSQL's tagged one answers a prefix plus a word).
const ON: SearchConfig = SearchConfig {
    text_index: true,
    prefix_text_index: true,
};
/// The trigram index alone.
const TRIGRAM_ONLY: SearchConfig = SearchConfig {
    text_index: true,
    prefix_text_index: false,
};
const OFF: SearchConfig = SearchConfig {
    text_index: false,
    prefix_text_index: false,
};

/// Every matching event (walking all pages of 3), as offsets from T0, newest first.
async fn matching(store: &SharedStore, q: &EventQuery) -> Vec<i64> {
    let mut q = EventQuery {
        limit: 3,
        ..q.clone()
    };
    let mut out = Vec::new();
    loop {
        let page = store.query_events(&q).await.unwrap();
        out.extend(page.items.iter().map(|e| e.event.ts.as_micros() - T0));
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::decode(&c).unwrap()),
            None => return out,
        }
    }
}

fn text(needle: &str) -> EventQuery {
    EventQuery {
        text: Some(needle.into()),
        ..EventQuery::default()
    }
}

/// A free-text query for `needle` under the path `prefix`, with the method and status
/// filters given: the shape the prefix tests ask with.
fn under_prefix(
    prefix: &str,
    method: Option<&str>,
    status: Option<StatusFilter>,
    needle: &str,
) -> EventQuery {
    EventQuery {
        path_prefix: Some(prefix.into()),
        method: method.map(Into::into),
        status,
        ..text(needle)
    }
}

/// Events whose searched columns hold the interesting cases: case, wildcards, quotes,
/// non-ASCII, text only in unsearched columns, and words split across two columns.
fn corpus() -> Vec<Event> {
    let mk = |ts: i64, f: &dyn Fn(&mut Event)| {
        let mut e = ev(ts);
        e.status = Some(if ts % 2 == 0 { 200 } else { 404 });
        e.method = Some(if ts % 3 == 0 { "POST" } else { "GET" }.into());
        // Even events from one /24, odd ones from another.
        e.client_ip = format!("10.0.{}.{ts}", ts % 2).parse().ok();
        f(&mut e);
        e
    };
    vec![
        mk(1, &|e| e.path = Some("/Admin/login".into())),
        mk(2, &|e| e.query = Some("q=ADMIN&x=1".into())),
        mk(3, &|e| e.user_agent = Some("sqlmap/1.0 (admin)".into())),
        mk(4, &|e| e.referer = Some("https://x/adMin".into())),
        mk(5, &|e| e.message = Some("admin session opened".into())),
        mk(6, &|e| e.user = Some("sysadmin".into())),
        mk(7, &|e| e.host = Some("admin.example".into())),
        mk(8, &|e| e.message = Some("100% done".into())),
        mk(9, &|e| e.path = Some("/a_b\"quoted\"".into())),
        mk(10, &|e| e.path = Some("/back\\slash".into())),
        mk(11, &|e| e.path = Some("/caf\u{c9}/CAF\u{e9}".into())),
        // "adm" ends the path and "in" starts the query: not "admin" in one column.
        mk(12, &|e| {
            e.path = Some("/adm".into());
            e.query = Some("in=1".into());
        }),
        mk(13, &|e| {
            e.path = Some("/x".into());
            e.user_agent = Some("Mozilla/5.0 (Windows NT 10.0) admin-tool".into());
        }),
        mk(14, &|e| e.message = Some("ctrl \u{1} char".into())),
    ]
}

async fn same_results_with_and_without_the_index(db: Db) {
    write(&db.store, corpus()).await;
    let mut queries: Vec<EventQuery> = [
        "admin",
        "ADMIN",
        "dmi",
        "ad",
        "a",
        "0% d",
        "%",
        "a_b",
        "_",
        "k\\s",
        "\"quoted\"",
        "caf\u{e9}",
        "CAF\u{c9}",
        "\u{c9}/C",
        "windows nt",
        "no such text",
        "adm\u{1}in",
        "\u{1} ch",
    ]
    .iter()
    .map(|n| text(n))
    .collect();
    // With the other filters, and a time range.
    for needle in ["admin", "mozilla", "zzz"] {
        queries.push(EventQuery {
            status: Some(StatusFilter::Class(4)),
            method: Some("GET".into()),
            ..text(needle)
        });
        queries.push(EventQuery {
            from: Some(Timestamp(T0 + 2)),
            to: Some(Timestamp(T0 + 13)),
            status: Some(StatusFilter::Exact(200)),
            ..text(needle)
        });
        queries.push(EventQuery {
            path_prefix: Some("/A".into()),
            ..text(needle)
        });
        // A client network (PostgreSQL reads a small one through its index alone).
        queries.push(EventQuery {
            client: "10.0.1.0/24".parse().ok(),
            status: Some(StatusFilter::Class(4)),
            ..text(needle)
        });
        queries.push(EventQuery {
            client: "10.0.0.0/16".parse().ok(),
            ..text(needle)
        });
        // Prefixes long enough to name a bucket of the index, ASCII or not.
        for prefix in ["/Admin", "/Adm", "/x", "/caf\u{c9}", "/a_b", "/zz"] {
            queries.push(EventQuery {
                path_prefix: Some(prefix.into()),
                ..text(needle)
            });
        }
    }
    for (prefix, needle) in [("/caf\u{c9}", "caf"), ("/a_b", "quoted"), ("/x", "windows")] {
        queries.push(EventQuery {
            path_prefix: Some(prefix.into()),
            method: Some("GET".into()),
            ..text(needle)
        });
    }
    // Answered before the index exists, then through it.
    let mut unindexed = Vec::new();
    for q in &queries {
        unindexed.push(matching(&db.store, q).await);
    }
    let indexed = db.reopen_with(ON).await;
    for (q, expected) in queries.iter().zip(&unindexed) {
        assert_eq!(
            &matching(&indexed, q).await,
            expected,
            "{:?} {:?}",
            q.text,
            q.status
        );
    }
    assert_eq!(
        matching(
            &indexed,
            &EventQuery {
                path_prefix: Some("/Adm".into()),
                ..text("login")
            }
        )
        .await,
        vec![1]
    );
    // The odd events' /24, 404s (every odd one), "admin" in a searched column.
    assert_eq!(
        matching(
            &indexed,
            &EventQuery {
                client: "10.0.1.0/24".parse().ok(),
                status: Some(StatusFilter::Class(4)),
                ..text("admin")
            }
        )
        .await,
        vec![13, 5, 3, 1]
    );
    assert_eq!(
        matching(
            &indexed,
            &EventQuery {
                path_prefix: Some("/x".into()),
                ..text("windows")
            }
        )
        .await,
        vec![13]
    );
    // And what the results are (ASCII case folded, the rest as written).
    assert_eq!(
        matching(&indexed, &text("ADMIN")).await,
        vec![13, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(
        matching(&indexed, &text("dmi")).await,
        vec![13, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(matching(&indexed, &text("\"quoted\"")).await, vec![9]);
    assert_eq!(matching(&indexed, &text("caf\u{e9}")).await, vec![11]);
    assert_eq!(
        matching(&indexed, &text("adm\u{1}in")).await,
        Vec::<i64>::new()
    );
    assert_eq!(matching(&indexed, &text("\u{1} ch")).await, vec![14]);
    assert_eq!(
        matching(
            &indexed,
            &EventQuery {
                status: Some(StatusFilter::Class(4)),
                method: Some("GET".into()),
                ..text("admin")
            }
        )
        .await,
        vec![13, 5, 1]
    );
    // The comparisons above went through the index: emptied behind the store's back,
    // it makes a rare word vanish (SQLite; PostgreSQL's planner makes its own choice).
    if let crate::harness::Raw::Sqlite(_) = db.raw {
        db.exec_raw("DELETE FROM events_text").await;
        assert_eq!(
            matching(&indexed, &text("sysadmin")).await,
            Vec::<i64>::new()
        );
        let plain = db.reopen_with(OFF).await;
        assert_eq!(matching(&plain, &text("sysadmin")).await, vec![6]);
    }
}

async fn index_follows_the_setting_and_the_writes(db: Db) {
    let exists = match db.raw {
        crate::harness::Raw::Sqlite(_) => {
            "SELECT count(*) FROM sqlite_master WHERE name = 'events_text'"
        }
        crate::harness::Raw::Postgres { .. } => {
            "SELECT count(*) FROM pg_class WHERE relname = 'events_text_bucket_trgm' AND relnamespace = current_schema()::regnamespace"
        }
    };
    assert_eq!(db.scalar(exists).await, 0, "off by default");
    // Events stored before the index exists are indexed when it is built.
    write(&db.store, corpus()).await;
    // SQLite builds it 100,000 ids at a time: an id far past the others spans chunks.
    let sqlite = matches!(db.raw, crate::harness::Raw::Sqlite(_));
    if sqlite {
        db.exec_raw(&format!(
            "INSERT INTO events (id, ts, received_at, kind, source, path, user_agent) \
             VALUES (250000, {}, {}, 'http', 'web', '/far', 'ChunkBot/1.0')",
            T0 + 40,
            T0 + 40
        ))
        .await;
    }
    let indexed = db.reopen_with(ON).await;
    assert_eq!(db.scalar(exists).await, 1);
    assert_eq!(matching(&indexed, &text("sysadmin")).await, vec![6]);
    if sqlite {
        assert_eq!(matching(&indexed, &text("chunkbot")).await, vec![40]);
    }
    // Migrating again with the index on keeps it.
    indexed.migrate().await.unwrap();
    assert_eq!(db.scalar(exists).await, 1);
    // An index of the first SQLite layout (rowid = id, an insert trigger) is rebuilt.
    if let crate::harness::Raw::Sqlite(_) = db.raw {
        db.exec_raw(
            "DELETE FROM events_text; CREATE TRIGGER events_text_ai AFTER INSERT ON events BEGIN SELECT 1; END;",
        )
        .await;
        let rebuilt = db.reopen_with(ON).await;
        assert_eq!(
            db.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'events_text_ai'")
                .await,
            0
        );
        assert_eq!(matching(&rebuilt, &text("sysadmin")).await, vec![6]);
    }
    // An index of the first PostgreSQL layout (trigrams only) is replaced.
    if let crate::harness::Raw::Postgres { .. } = db.raw {
        db.exec_raw(
            "DROP INDEX events_text_bucket_trgm; CREATE INDEX events_text_trgm ON events USING gin ((path || '') public.gin_trgm_ops)",
        )
        .await;
        let rebuilt = db.reopen_with(ON).await;
        assert_eq!(db.scalar(exists).await, 1);
        assert_eq!(
            db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'events_text_trgm' AND relnamespace = current_schema()::regnamespace")
                .await,
            0
        );
        assert_eq!(matching(&rebuilt, &text("sysadmin")).await, vec![6]);
    }
    // PostgreSQL's tagged index (and its function) comes with it, and a store whose
    // text index predates it gets it at the next start.
    let tagged = "SELECT count(*) FROM pg_class WHERE relname = 'events_text_tagged_trgm' AND relnamespace = current_schema()::regnamespace";
    let tagged_fn = "SELECT count(*) FROM pg_proc WHERE proname = 'palisade_tagged_trgm' AND pronamespace = current_schema()::regnamespace";
    if let crate::harness::Raw::Postgres { .. } = db.raw {
        assert_eq!(db.scalar(tagged).await, 1);
        assert_eq!(db.scalar(tagged_fn).await, 1);
        db.exec_raw(
            "DROP INDEX events_text_tagged_trgm; DROP FUNCTION palisade_tagged_trgm(text, text)",
        )
        .await;
        let upgraded = db.reopen_with(ON).await;
        assert_eq!(db.scalar(exists).await, 1);
        assert_eq!(db.scalar(tagged).await, 1);
        assert_eq!(
            matching(
                &upgraded,
                &EventQuery {
                    path_prefix: Some("/Adm".into()),
                    ..text("LOGIN")
                }
            )
            .await,
            vec![1]
        );
        // `prefix_text_index` off: the tagged index goes, the trigram one stays.
        let trigram_only = db.reopen_with(TRIGRAM_ONLY).await;
        assert_eq!(db.scalar(exists).await, 1);
        assert_eq!(db.scalar(tagged).await, 0);
        assert_eq!(db.scalar(tagged_fn).await, 0);
        assert_eq!(
            matching(
                &trigram_only,
                &EventQuery {
                    path_prefix: Some("/Adm".into()),
                    ..text("LOGIN")
                }
            )
            .await,
            vec![1]
        );
        let _ = db.reopen_with(ON).await;
        assert_eq!(db.scalar(tagged).await, 1);
    }
    // Writes made with the index on are found through it.
    let mut late = ev(50);
    late.user_agent = Some("LateBot/2.0".into());
    write(&indexed, vec![late]).await;
    assert_eq!(matching(&indexed, &text("latebot")).await, vec![50]);
    // Retention deletes leave nothing behind that a search could return.
    let deleted = indexed
        .delete_older_than(DataKind::Events, Timestamp(T0 + 7), 1000)
        .await
        .unwrap();
    assert_eq!(deleted, 6);
    assert_eq!(matching(&indexed, &text("admin")).await, vec![13]);
    let mut newer = ev(60);
    newer.message = Some("admin again".into());
    write(&indexed, vec![newer]).await;
    assert_eq!(matching(&indexed, &text("admin")).await, vec![60, 13]);
    // Switched off: dropped, and the same answers without it.
    let plain = db.reopen_with(OFF).await;
    assert_eq!(db.scalar(exists).await, 0);
    if let crate::harness::Raw::Postgres { .. } = db.raw {
        assert_eq!(db.scalar(tagged).await, 0);
        assert_eq!(db.scalar(tagged_fn).await, 0);
    }
    assert_eq!(matching(&plain, &text("admin")).await, vec![60, 13]);
    assert_eq!(matching(&plain, &text("latebot")).await, vec![50]);
}

/// The first `pages` pages of `limit` events, as offsets from T0.
async fn pages(store: &SharedStore, q: &EventQuery, pages: usize, limit: u32) -> Vec<i64> {
    let mut q = EventQuery { limit, ..q.clone() };
    let mut out = Vec::new();
    for _ in 0..pages {
        let page = store.query_events(&q).await.unwrap();
        out.extend(page.items.iter().map(|e| e.event.ts.as_micros() - T0));
        match page.next_cursor {
            Some(c) => q.cursor = Some(Cursor::decode(&c).unwrap()),
            None => break,
        }
    }
    out
}

/// A path prefix holding more rows than the stores' probes count (20,000) plus a word:
/// PostgreSQL then walks a few thousand rows newest first and, when the word is rare,
/// asks the index for the prefix's bucket and the word's trigrams together. Every
/// answer is the unindexed one: rare and common words, with and without a method or
/// a status, paths in the prefix's bucket that do not start with it, page after page.
async fn a_large_prefix_with_a_word_gives_the_same_results(db: Db) {
    let mut events: Vec<Event> = (0..24_000)
        .map(|i| {
            let mut e = ev(i);
            e.path = Some(format!("/big/p{}", i % 50));
            e.method = Some(if i % 7 == 0 { "POST" } else { "GET" }.into());
            e.status = Some(if i % 3 == 0 { 404 } else { 200 });
            e.user_agent = Some("Mozilla/5.0 (X11; Linux)".into());
            if i % 3001 == 17 {
                e.query = Some(format!("q=NeedLe{i}"));
            }
            e
        })
        .collect();
    for (ts, path) in [
        (24_001, "/bi"),
        (24_002, "/bigger/x"),
        (24_003, "/other/x"),
        (24_004, "/big"),
        (24_005, "/big/"),
    ] {
        let mut e = ev(ts);
        e.path = Some(path.into());
        e.method = Some("GET".into());
        e.status = Some(200);
        e.message = Some("a needle here".into());
        events.push(e);
    }
    for (ts, path) in [(24_006, "/big/caf\u{e9}"), (24_007, "/BIG/x")] {
        let mut e = ev(ts);
        e.path = Some(path.into());
        e.method = Some("POST".into());
        e.message = Some("a needle here".into());
        events.push(e);
    }
    write(&db.store, events).await;
    let rare = [
        under_prefix("/big/", Some("GET"), None, "needle"),
        under_prefix("/big/", None, None, "NEEDLE"),
        under_prefix("/big/", None, Some(StatusFilter::Exact(404)), "needle"),
        under_prefix(
            "/big/",
            Some("POST"),
            Some(StatusFilter::Class(2)),
            "needle",
        ),
        under_prefix("/big", Some("GET"), None, "needle"),
        under_prefix("/bi", None, None, "needle"),
        under_prefix("/big/", Some("GET"), None, "zzq-none"),
        under_prefix("/big/p1", Some("GET"), None, "needle"),
        // Trigrams PostgreSQL's tagged index keeps (three ASCII letters or digits)
        // beside ones it leaves out (padded, or non-ASCII and printed as a hash).
        under_prefix("/big/", None, None, "Caf\u{e9}"),
        under_prefix("/big/", None, None, "e neEd"),
        under_prefix("/big/", None, None, "\u{e9}"),
        under_prefix("/big/", None, None, "a ne"),
        under_prefix("/big/", None, None, "dle1"),
        under_prefix("/BIG/", None, None, "needle"),
    ];
    let common = [
        under_prefix("/big/", Some("GET"), None, "mozilla"),
        under_prefix("/big/", None, Some(StatusFilter::Exact(404)), "linux"),
        under_prefix("/big/", Some("POST"), None, "x11"),
        under_prefix("/big/", None, None, "linux"),
    ];
    let mut unindexed = Vec::new();
    for q in &rare {
        unindexed.push(matching(&db.store, q).await);
    }
    for q in &common {
        unindexed.push(pages(&db.store, q, 2, 100).await);
    }
    assert_eq!(unindexed[0].len(), 8, "{:?}", unindexed[0]);
    assert_eq!(unindexed[6], Vec::<i64>::new());
    let indexed = db.reopen_with(ON).await;
    for (q, expected) in rare.iter().zip(&unindexed) {
        assert_eq!(&matching(&indexed, q).await, expected, "{q:?}");
    }
    for (q, expected) in common.iter().zip(&unindexed[rare.len()..]) {
        assert_eq!(&pages(&indexed, q, 2, 100).await, expected, "{q:?}");
    }
}

/// More candidates than the SQLite store reads at once when the text index drives (it
/// reads them newest id first, a slice at a time, and checks on the time index that no
/// unread one is newer than the page): events written in time order, then a backfill
/// of older ones, then newer ones written late among the first ones' times (equal
/// times too). A word only in the first part (the ids follow the time: the check
/// passes), a word mostly in the backfill (the newest ids are old: it fails and every
/// candidate is read), one in all three parts, with filters, a time window, a client
/// network (its rows among the candidates) and every page size: the pages are the
/// unindexed ones.
async fn candidates_read_newest_id_first_give_the_same_pages(db: Db) {
    let mut events = Vec::new();
    let mk = |ts: i64, i: i64, words: &[(&str, bool)]| {
        let mut e = ev(ts);
        e.method = Some(if i % 5 == 0 { "POST" } else { "GET" }.into());
        e.status = Some(if i % 3 == 0 { 404 } else { 200 });
        e.path = Some(format!("/p{}", i % 7));
        e.client_ip = format!("10.5.{}.{}", i % 2, i % 250).parse().ok();
        let words: Vec<&str> = words
            .iter()
            .filter(|(_, on)| *on)
            .map(|(w, _)| *w)
            .collect();
        e.message = Some(format!("{} {i}", words.join(" ")));
        e
    };
    // In time order.
    for i in 0..1_500_i64 {
        let words = [
            ("alphaword", i % 4 == 0),
            ("needleword", i % 9 == 0),
            ("betaword", i % 15 == 0),
        ];
        events.push(mk(10_000 + i, i, &words));
    }
    // A backfill: older events, written after, out of order.
    for i in 0..800_i64 {
        let words = [("needleword", i % 3 == 0), ("betaword", i % 2 == 0)];
        events.push(mk((i * 3) % 2_000, i, &words));
    }
    // Late events among the first part's times, some at equal times.
    for i in 0..600_i64 {
        events.push(mk(
            10_000 + (i * 7) % 1_500,
            i,
            &[("needleword", i % 2 == 0)],
        ));
    }
    write(&db.store, events).await;
    let window = |from: i64, to: i64, needle: &str| EventQuery {
        from: Some(Timestamp(T0 + from)),
        to: Some(Timestamp(T0 + to)),
        ..text(needle)
    };
    let queries = [
        text("alphaword"),
        text("needleword"),
        text("AlphaWord"),
        EventQuery {
            method: Some("GET".into()),
            ..text("needleword")
        },
        EventQuery {
            status: Some(StatusFilter::Exact(404)),
            ..text("alphaword")
        },
        EventQuery {
            path_prefix: Some("/p3".into()),
            ..text("needleword")
        },
        window(10_100, 10_400, "alphaword"),
        window(10_100, 10_400, "needleword"),
        window(0, 1_000, "needleword"),
        window(5_000, 6_000, "needleword"),
        text("betaword"),
        EventQuery {
            status: Some(StatusFilter::Exact(200)),
            ..text("betaword")
        },
        text("zzq-none"),
        // A network with a word: both few, the network's rows among the candidates.
        EventQuery {
            client: "10.5.1.0/24".parse().ok(),
            ..text("needleword")
        },
        EventQuery {
            client: "10.5.0.0/24".parse().ok(),
            status: Some(StatusFilter::Class(2)),
            ..text("betaword")
        },
    ];
    let limits = [1, 7, 100, 300, 1_000];
    let mut unindexed = Vec::new();
    for q in &queries {
        for limit in limits {
            unindexed.push(every_page(&db.store, q, limit).await);
        }
    }
    // Enough matches to need several slices.
    assert_eq!(unindexed[0].len(), 375);
    assert_eq!(unindexed[5].len(), 167 + 267 + 300);
    assert_eq!(unindexed[50].len(), 100 + 400);
    let indexed = db.reopen_with(ON).await;
    let mut expected = unindexed.iter();
    for q in &queries {
        for limit in limits {
            let got = every_page(&indexed, q, limit).await;
            assert_eq!(Some(&got), expected.next(), "{q:?} limit {limit}");
            // Strictly newest first, then highest id first: no row twice.
            assert!(got.windows(2).all(|w| w[0] > w[1]), "{q:?} limit {limit}");
        }
    }
}

/// The page sizes the prefix and network tests list every page at.
const PAGE_SIZES: [u32; 3] = [1, 7, 100];

/// Every page of each query at each of [`PAGE_SIZES`], query by query.
async fn pages_of_each(store: &SharedStore, queries: &[EventQuery]) -> Vec<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for q in queries {
        for limit in PAGE_SIZES {
            out.push(every_page(store, q, limit).await);
        }
    }
    out
}

/// Asserts that the store reopened with the trigram index alone, then with every
/// search index, gives each query's pages as `unindexed` ([`pages_of_each`]) holds them.
async fn each_index_gives(db: &Db, queries: &[EventQuery], unindexed: &[Vec<(i64, i64)>]) {
    for search in [TRIGRAM_ONLY, ON] {
        let indexed = db.reopen_with(search).await;
        let mut expected = unindexed.iter();
        for q in queries {
            for limit in PAGE_SIZES {
                let got = every_page(&indexed, q, limit).await;
                assert_eq!(
                    Some(&got),
                    expected.next(),
                    "{q:?} limit {limit} {search:?}"
                );
            }
        }
    }
}

/// A path prefix holding fewer rows than the stores' probes count, plus a word:
/// PostgreSQL reads the prefix's rows by id, unless its path bucket (the first three
/// characters) holds under twice as many rows, in which case it asks the text index
/// for the bucket and the word's trigrams. Prefixes of both kinds (the bucket about
/// the prefix; the bucket much larger), rows in the bucket outside the prefix, a
/// common word, a rare one, none, case and non-ASCII needles, a method and a status,
/// every page size: the pages are the unindexed ones.
async fn a_small_prefix_with_a_word_gives_the_same_results(db: Db) {
    let mut events = Vec::new();
    for i in 0..400 {
        let mut e = ev(i);
        e.path = Some(format!("/sm/p{}", i % 4));
        e.method = Some(if i % 5 == 0 { "POST" } else { "GET" }.into());
        e.status = Some(if i % 3 == 0 { 404 } else { 200 });
        e.user_agent = Some("Mozilla/5.0".into());
        if i % 37 == 5 {
            e.query = Some(format!("q=SmallNeedle{i}"));
        }
        if i == 77 {
            e.message = Some("caf\u{e9} au lait".into());
        }
        events.push(e);
    }
    for i in 0..100 {
        let mut e = ev(1_000 + i);
        e.path = Some("/smx/q".into());
        e.method = Some("GET".into());
        e.status = Some(200);
        if i % 10 == 0 {
            e.referer = Some("https://a.example/smallneedle".into());
        }
        events.push(e);
    }
    for i in 0..1_500 {
        let mut e = ev(2_000 + i);
        e.path = Some(format!("/ot/{}", i % 9));
        e.method = Some("GET".into());
        e.status = Some(200);
        e.user_agent = Some("Mozilla/5.0".into());
        if i % 50 == 0 {
            e.query = Some("smallneedle".into());
        }
        events.push(e);
    }
    write(&db.store, events).await;
    let queries = [
        // The bucket (/sm: 500 rows) under twice the prefix's rows: the index.
        under_prefix("/sm/", Some("GET"), None, "needle"),
        under_prefix("/sm/", None, None, "SMALLNEEDLE"),
        under_prefix("/sm/", None, None, "mozilla"),
        under_prefix("/sm/", Some("POST"), Some(StatusFilter::Class(4)), "needle"),
        under_prefix("/sm/", None, None, "zzq-none"),
        under_prefix("/sm/", None, None, "caf\u{e9}"),
        under_prefix("/smx", Some("GET"), None, "needle"),
        // The bucket far larger than the prefix: its rows by id.
        under_prefix("/sm/p1", Some("GET"), None, "needle"),
        under_prefix("/ot/3", None, None, "mozilla"),
        under_prefix(
            "/smx/q",
            None,
            Some(StatusFilter::Exact(200)),
            "smallneedle",
        ),
    ];
    let unindexed = pages_of_each(&db.store, &queries).await;
    assert_eq!(unindexed[0].len(), 8, "{:?}", unindexed[0]);
    assert_eq!(unindexed[6].len(), 400, "{:?}", unindexed[6]);
    assert_eq!(unindexed[12], Vec::new());
    assert_eq!(unindexed[15].len(), 1, "{:?}", unindexed[15]);
    each_index_gives(&db, &queries, &unindexed).await;
}

/// A client network holding more rows than the stores' probes count (20,000) plus a
/// word: PostgreSQL asks the text index alone, the network hidden, when the planner
/// expects the word in few rows (here, with a table of 20,000 rows, any word). Rare
/// and common words, a status class, one address among them, rows outside the
/// network holding the word, every page size: the pages are the unindexed ones.
async fn a_large_network_with_a_word_gives_the_same_results(db: Db) {
    let events: Vec<Event> = (0..20_300)
        .map(|i| {
            let mut e = ev(i);
            e.client_ip = if i < 20_100 {
                format!("10.9.{}.{}", (i / 250) % 250, i % 250).parse().ok()
            } else {
                format!("10.10.0.{}", i % 250).parse().ok()
            };
            e.path = Some(format!("/n/{}", i % 13));
            e.status = Some(if i % 3 == 0 { 404 } else { 200 });
            // A common word in 1 row of 40: every page of it at each page size is
            // still hundreds of listings, and all of them at 20,000 rows took minutes.
            if i % 40 == 0 {
                e.user_agent = Some("Mozilla/5.0".into());
            }
            if i % 997 == 3 || i >= 20_290 {
                e.query = Some(format!("q=RareNetWord{i}"));
            }
            e
        })
        .collect();
    write(&db.store, events).await;
    let net = |cidr: &str, status: Option<StatusFilter>, needle: &str| EventQuery {
        client: cidr.parse().ok(),
        status,
        ..text(needle)
    };
    let queries = [
        net("10.9.0.0/16", None, "rarenetword"),
        net("10.9.0.0/16", Some(StatusFilter::Class(4)), "RareNetWord"),
        net("10.9.0.0/16", Some(StatusFilter::Class(2)), "mozilla"),
        net("10.9.0.0/16", None, "zzq-none"),
        net("10.0.0.0/8", Some(StatusFilter::Class(4)), "rarenetword"),
        net("10.9.0.3/32", None, "rarenetword"),
    ];
    let unindexed = pages_of_each(&db.store, &queries).await;
    assert_eq!(unindexed[0].len(), 21, "{:?}", unindexed[0]);
    assert_eq!(unindexed[9], Vec::new());
    assert_eq!(unindexed[12].len(), 7 + 3, "{:?}", unindexed[12]);
    each_index_gives(&db, &queries, &unindexed).await;
}
