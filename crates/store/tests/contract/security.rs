//! The security contract: users, refresh tokens, API keys, secrets, audit.

use palisade_core::Timestamp;
use palisade_core::security::{
    NewApiKey, NewAudit, NewUser, RefreshToken, Role, Scope, SecretRecord,
};
use palisade_store::{AuditQuery, Cursor, StoreError};

use crate::harness::{Db, Raw, T0, contract};

contract!(
    users_round_trip_update_and_delete,
    access_token_cut_off_only_moves_forward,
    usernames_conflict,
    active_admins_are_counted,
    unknown_role_or_scope_is_corrupt,
    refresh_tokens_are_used_once_and_revoked,
    refresh_tokens_go_with_their_user,
    api_keys_conflict_are_found_listed_revoked_and_touched,
    secrets_put_get_list_delete,
    put_secrets_is_all_or_nothing,
    audit_is_filtered_and_paginated,
);

fn at(n: i64) -> Timestamp {
    Timestamp(T0 + n)
}

fn new_user(name: &str, role: Role) -> NewUser {
    NewUser {
        username: name.into(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${name}"),
    }
}

fn token(hash: &str, family: &str, user_id: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        family: family.into(),
        user_id,
        issued_at: at(1),
        expires_at: at(1_000_000),
        used_at: None,
        revoked_at: None,
    }
}

fn new_key(name: &str, prefix: &str, scopes: Vec<Scope>) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        prefix: prefix.into(),
        key_hash: format!("{prefix}-sha256"),
        scopes,
        created_by: Some("admin".into()),
    }
}

fn secret(name: &str, ciphertext: &[u8]) -> SecretRecord {
    SecretRecord {
        name: name.into(),
        key_id: "k1".into(),
        nonce: vec![0, 1, 2, 255],
        ciphertext: ciphertext.to_vec(),
        updated_at: at(7),
        updated_by: Some("admin".into()),
    }
}

fn audit(actor: &str, action: &str) -> NewAudit {
    NewAudit {
        actor: Some(actor.into()),
        action: action.into(),
        target: Some("t".into()),
        outcome: "success".into(),
        client_ip: Some("192.0.2.1".into()),
        detail: None,
    }
}

async fn users_round_trip_update_and_delete(db: Db) {
    let s = &db.store;
    let before = Timestamp::now();
    let alice = s.create_user(new_user("alice", Role::Admin)).await.unwrap();
    assert!(alice.id > 0);
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.role, Role::Admin);
    assert!(!alice.disabled);
    assert_eq!(alice.tokens_valid_after, None);
    assert!(alice.created_at >= before);
    assert_eq!(alice.created_at, alice.updated_at);
    assert_eq!(s.user_by_name("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user_by_id(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user_by_name("nobody").await.unwrap(), None);
    assert_eq!(s.user_by_id(alice.id + 1000).await.unwrap(), None);

    let bob = s.create_user(new_user("bob", Role::Viewer)).await.unwrap();
    let zed = s.create_user(new_user("Zed", Role::Analyst)).await.unwrap();
    assert!(bob.id != alice.id && zed.id != bob.id);
    // By name, bytewise on both backends.
    let names: Vec<String> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["Zed", "alice", "bob"]);

    let changed = palisade_core::security::User {
        role: Role::Analyst,
        password_hash: "new-hash".into(),
        disabled: true,
        // Ignored by update_user: these are the store's to set (the token cut-off
        // only through revoke_access_tokens).
        tokens_valid_after: Some(at(99)),
        username: "renamed".into(),
        created_at: at(0),
        ..alice.clone()
    };
    assert!(s.update_user(&changed).await.unwrap());
    let back = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(back.username, "alice");
    assert_eq!(back.role, Role::Analyst);
    assert_eq!(back.password_hash, "new-hash");
    assert!(back.disabled);
    assert_eq!(back.tokens_valid_after, None);
    assert_eq!(back.created_at, alice.created_at);
    assert!(back.updated_at >= alice.updated_at);
    // Enable again: false is written, not skipped.
    let enabled = palisade_core::security::User {
        disabled: false,
        ..back.clone()
    };
    assert!(s.update_user(&enabled).await.unwrap());
    let back = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert!(!back.disabled);
    let ghost = palisade_core::security::User {
        id: alice.id + 1000,
        ..alice.clone()
    };
    assert!(!s.update_user(&ghost).await.unwrap());

    assert!(s.delete_user(bob.id).await.unwrap());
    assert!(!s.delete_user(bob.id).await.unwrap());
    assert_eq!(s.user_by_id(bob.id).await.unwrap(), None);
    assert_eq!(s.list_users().await.unwrap().len(), 2);
}

async fn access_token_cut_off_only_moves_forward(db: Db) {
    let s = &db.store;
    let alice = s
        .create_user(new_user("alice", Role::Viewer))
        .await
        .unwrap();
    assert!(s.revoke_access_tokens(alice.id, at(50)).await.unwrap());
    let back = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(back.tokens_valid_after, Some(at(50)));
    // An earlier cut-off (a slower request finishing late) does not move it back.
    assert!(s.revoke_access_tokens(alice.id, at(10)).await.unwrap());
    let back = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(back.tokens_valid_after, Some(at(50)));
    assert!(s.revoke_access_tokens(alice.id, at(70)).await.unwrap());
    assert_eq!(
        s.user_by_name("alice")
            .await
            .unwrap()
            .unwrap()
            .tokens_valid_after,
        Some(at(70))
    );
    // update_user leaves it alone.
    assert!(s.update_user(&back).await.unwrap());
    assert_eq!(
        s.user_by_id(alice.id)
            .await
            .unwrap()
            .unwrap()
            .tokens_valid_after,
        Some(at(70))
    );
    assert!(
        !s.revoke_access_tokens(alice.id + 1000, at(80))
            .await
            .unwrap()
    );
}

async fn usernames_conflict(db: Db) {
    let s = &db.store;
    let first = s.create_user(new_user("alice", Role::Admin)).await.unwrap();
    let err = s
        .create_user(new_user("alice", Role::Viewer))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("alice")),
        "{err:?}"
    );
    assert!(!err.is_transient());
    // The first one is untouched and a different name still works.
    assert_eq!(s.user_by_name("alice").await.unwrap(), Some(first));
    s.create_user(new_user("Alice", Role::Viewer))
        .await
        .unwrap();
    assert_eq!(s.list_users().await.unwrap().len(), 2);
}

async fn active_admins_are_counted(db: Db) {
    let s = &db.store;
    assert_eq!(s.count_active_admins().await.unwrap(), 0);
    let a1 = s.create_user(new_user("a1", Role::Admin)).await.unwrap();
    let a2 = s.create_user(new_user("a2", Role::Admin)).await.unwrap();
    s.create_user(new_user("x", Role::Analyst)).await.unwrap();
    s.create_user(new_user("v", Role::Viewer)).await.unwrap();
    assert_eq!(s.count_active_admins().await.unwrap(), 2);
    let disabled = palisade_core::security::User {
        disabled: true,
        ..a1.clone()
    };
    assert!(s.update_user(&disabled).await.unwrap());
    assert_eq!(s.count_active_admins().await.unwrap(), 1);
    assert!(s.delete_user(a2.id).await.unwrap());
    assert_eq!(s.count_active_admins().await.unwrap(), 0);
}

async fn unknown_role_or_scope_is_corrupt(db: Db) {
    let s = &db.store;
    s.create_user(new_user("alice", Role::Admin)).await.unwrap();
    s.create_api_key(new_key("k", "pk_1", vec![Scope::Read]))
        .await
        .unwrap();
    db.exec_raw("UPDATE users SET role = 'root'; UPDATE api_keys SET scopes = 'read,sudo';")
        .await;
    let err = s.user_by_name("alice").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("root")),
        "{err:?}"
    );
    assert!(matches!(s.list_users().await, Err(StoreError::Corrupt(_))));
    let err = s.api_key_by_prefix("pk_1").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("sudo")),
        "{err:?}"
    );
    assert!(matches!(
        s.list_api_keys().await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn refresh_tokens_are_used_once_and_revoked(db: Db) {
    let s = &db.store;
    let u = s
        .create_user(new_user("alice", Role::Viewer))
        .await
        .unwrap();
    let other = s.create_user(new_user("bob", Role::Viewer)).await.unwrap();
    let t1 = token("h1", "f1", u.id);
    for t in [
        t1.clone(),
        token("h2", "f1", u.id),
        token("h3", "f2", u.id),
        token("h4", "f3", other.id),
    ] {
        s.insert_refresh_token(&t).await.unwrap();
    }
    assert_eq!(s.refresh_token("h1").await.unwrap(), Some(t1.clone()));
    assert_eq!(s.refresh_token("nope").await.unwrap(), None);
    // The same hash twice is not a second token.
    assert!(s.insert_refresh_token(&t1).await.is_err());
    // A token must belong to a user.
    assert!(
        s.insert_refresh_token(&token("h9", "f9", u.id + 1000))
            .await
            .is_err()
    );

    // Exchanged once, never twice.
    assert!(s.use_refresh_token("h1", at(10)).await.unwrap());
    assert!(!s.use_refresh_token("h1", at(11)).await.unwrap());
    assert!(!s.use_refresh_token("nope", at(11)).await.unwrap());
    let used = s.refresh_token("h1").await.unwrap().unwrap();
    assert_eq!((used.used_at, used.revoked_at), (Some(at(10)), None));

    // Reuse detected: the family goes, including the spent token, once.
    assert_eq!(s.revoke_refresh_family("f1", at(20)).await.unwrap(), 2);
    assert_eq!(s.revoke_refresh_family("f1", at(21)).await.unwrap(), 0);
    assert!(!s.use_refresh_token("h2", at(22)).await.unwrap());
    let h2 = s.refresh_token("h2").await.unwrap().unwrap();
    assert_eq!((h2.used_at, h2.revoked_at), (None, Some(at(20))));

    // Logout everywhere: only this user's live tokens.
    assert_eq!(s.revoke_user_refresh_tokens(u.id, at(30)).await.unwrap(), 1);
    assert_eq!(s.revoke_user_refresh_tokens(u.id, at(31)).await.unwrap(), 0);
    let h3 = s.refresh_token("h3").await.unwrap().unwrap();
    assert_eq!(h3.revoked_at, Some(at(30)));
    assert!(s.use_refresh_token("h4", at(32)).await.unwrap());
}

async fn refresh_tokens_go_with_their_user(db: Db) {
    let s = &db.store;
    let u = s
        .create_user(new_user("alice", Role::Viewer))
        .await
        .unwrap();
    let keep = s.create_user(new_user("bob", Role::Viewer)).await.unwrap();
    s.insert_refresh_token(&token("a1", "fa", u.id))
        .await
        .unwrap();
    s.insert_refresh_token(&token("a2", "fb", u.id))
        .await
        .unwrap();
    s.insert_refresh_token(&token("b1", "fc", keep.id))
        .await
        .unwrap();
    assert!(s.delete_user(u.id).await.unwrap());
    assert_eq!(s.refresh_token("a1").await.unwrap(), None);
    assert_eq!(s.refresh_token("a2").await.unwrap(), None);
    assert!(s.refresh_token("b1").await.unwrap().is_some());
    assert_eq!(s.revoke_user_refresh_tokens(u.id, at(1)).await.unwrap(), 0);
}

async fn api_keys_conflict_are_found_listed_revoked_and_touched(db: Db) {
    let s = &db.store;
    let before = Timestamp::now();
    let k1 = s
        .create_api_key(new_key(
            "sensor",
            "pk_aaaa",
            vec![Scope::Ingest, Scope::Read],
        ))
        .await
        .unwrap();
    assert!(k1.id > 0);
    assert_eq!(
        (k1.name.as_str(), k1.prefix.as_str(), k1.key_hash.as_str()),
        ("sensor", "pk_aaaa", "pk_aaaa-sha256")
    );
    assert_eq!(k1.scopes, [Scope::Ingest, Scope::Read]);
    assert_eq!(k1.created_by.as_deref(), Some("admin"));
    assert!(k1.created_at >= before);
    assert_eq!((k1.last_used_at, k1.revoked_at), (None, None));
    assert_eq!(
        s.api_key_by_prefix("pk_aaaa").await.unwrap(),
        Some(k1.clone())
    );
    assert_eq!(s.api_key_by_prefix("pk_zzzz").await.unwrap(), None);

    let err = s
        .create_api_key(new_key("other", "pk_aaaa", vec![Scope::Check]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("prefix")),
        "{err:?}"
    );
    let err = s
        .create_api_key(new_key("sensor", "pk_bbbb", vec![Scope::Check]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("name") && m.contains("sensor")),
        "{err:?}"
    );

    let k2 = s
        .create_api_key(NewApiKey {
            created_by: None,
            ..new_key("proxy", "pk_cccc", vec![])
        })
        .await
        .unwrap();
    assert_eq!((k2.scopes.len(), k2.created_by.clone()), (0, None));
    assert_eq!(s.list_api_keys().await.unwrap(), [k2.clone(), k1.clone()]);

    assert!(s.revoke_api_key(k1.id, at(5)).await.unwrap());
    assert!(!s.revoke_api_key(k1.id, at(6)).await.unwrap());
    assert!(!s.revoke_api_key(k2.id + 1000, at(6)).await.unwrap());
    let revoked = s.api_key_by_prefix("pk_aaaa").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));

    s.touch_api_key(k2.id, at(8)).await.unwrap();
    s.touch_api_key(k2.id, at(9)).await.unwrap();
    s.touch_api_key(k2.id + 1000, at(9)).await.unwrap();
    let touched = s.api_key_by_prefix("pk_cccc").await.unwrap().unwrap();
    assert_eq!(
        (touched.last_used_at, touched.revoked_at),
        (Some(at(9)), None)
    );
    // Revoked keys stay listed.
    assert_eq!(s.list_api_keys().await.unwrap().len(), 2);
}

async fn secrets_put_get_list_delete(db: Db) {
    let s = &db.store;
    assert!(s.list_secrets().await.unwrap().is_empty());
    let a = secret("nvd_api_key", &[9, 0, 255]);
    let b = SecretRecord {
        updated_by: None,
        ..secret("Zeta", b"")
    };
    s.put_secret(&a).await.unwrap();
    s.put_secret(&b).await.unwrap();
    assert_eq!(s.secret("nvd_api_key").await.unwrap(), Some(a.clone()));
    assert_eq!(s.secret("missing").await.unwrap(), None);
    assert_eq!(s.list_secrets().await.unwrap(), [b.clone(), a.clone()]);

    let a2 = SecretRecord {
        key_id: "k2".into(),
        nonce: vec![7; 12],
        ciphertext: vec![1; 40],
        updated_at: at(8),
        updated_by: Some("bob".into()),
        ..a.clone()
    };
    s.put_secret(&a2).await.unwrap();
    assert_eq!(s.secret("nvd_api_key").await.unwrap(), Some(a2.clone()));
    assert_eq!(s.list_secrets().await.unwrap().len(), 2);

    assert!(s.delete_secret("nvd_api_key").await.unwrap());
    assert!(!s.delete_secret("nvd_api_key").await.unwrap());
    assert_eq!(s.secret("nvd_api_key").await.unwrap(), None);
    assert_eq!(s.list_secrets().await.unwrap(), [b]);
}

async fn put_secrets_is_all_or_nothing(db: Db) {
    let s = &db.store;
    let x = secret("x", b"old-x");
    let y = secret("y", b"old-y");
    s.put_secrets(&[x.clone(), y.clone()]).await.unwrap();
    assert_eq!(s.list_secrets().await.unwrap(), [x.clone(), y.clone()]);
    s.put_secrets(&[]).await.unwrap();

    // A rotation whose second write fails inside the database leaves nothing changed.
    match &db.raw {
        Raw::Sqlite(_) => {
            db.exec_raw(
                "CREATE TRIGGER boom BEFORE INSERT ON secrets WHEN NEW.name = 'boom'
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )
            .await
        }
        Raw::Postgres { .. } => {
            db.exec_raw(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
                   RETURN NEW;
                 END $$;
                 CREATE TRIGGER boom BEFORE INSERT ON secrets
                   FOR EACH ROW EXECUTE FUNCTION boom();",
            )
            .await
        }
    }
    let rotated = SecretRecord {
        key_id: "k2".into(),
        ciphertext: b"new-x".to_vec(),
        ..x.clone()
    };
    let err = s
        .put_secrets(&[rotated.clone(), secret("boom", b"b")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert_eq!(s.list_secrets().await.unwrap(), [x, y.clone()]);

    s.put_secrets(std::slice::from_ref(&rotated)).await.unwrap();
    assert_eq!(s.list_secrets().await.unwrap(), [rotated, y]);
}

async fn audit_is_filtered_and_paginated(db: Db) {
    let s = &db.store;
    let start = Timestamp::now();
    for i in 0..10 {
        let actor = if i % 2 == 0 { "alice" } else { "bob" };
        s.append_audit(audit(actor, "login")).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mid = Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for i in 0..15 {
        let action = if i % 3 == 0 { "user.create" } else { "login" };
        s.append_audit(audit("alice", action)).await.unwrap();
    }
    // NUL is stored (and found) as U+FFFD on both backends; optional fields stay null.
    s.append_audit(NewAudit {
        actor: Some("ev\0il".into()),
        action: "login".into(),
        target: None,
        outcome: "failure".into(),
        client_ip: None,
        detail: Some("bad password".into()),
    })
    .await
    .unwrap();

    // Walks every page of `q` with a small page size.
    let walk = |q: AuditQuery| async move {
        let mut q = AuditQuery { limit: 4, ..q };
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            let page = s.query_audit(&q).await.unwrap();
            assert!(page.items.len() <= 4);
            pages += 1;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => q.cursor = Some(Cursor::decode(&c).unwrap()),
                None => return (out, pages),
            }
        }
    };

    let (all, pages) = walk(AuditQuery::default()).await;
    assert_eq!(all.len(), 26);
    assert_eq!(pages, 7);
    // Newest first, strictly, with no entry twice.
    assert!(
        all.windows(2)
            .all(|w| (w[0].ts, w[0].id) > (w[1].ts, w[1].id))
    );
    assert!(all.iter().all(|e| e.ts >= start));
    let newest = &all[0];
    assert_eq!(newest.actor.as_deref(), Some("ev\u{fffd}il"));
    assert_eq!(
        (newest.target.clone(), newest.client_ip.clone()),
        (None, None)
    );
    assert_eq!(newest.outcome, "failure");
    assert_eq!(newest.detail.as_deref(), Some("bad password"));
    let oldest = &all[25];
    assert_eq!(
        (
            oldest.actor.as_deref(),
            oldest.action.as_str(),
            oldest.target.as_deref(),
            oldest.outcome.as_str(),
            oldest.client_ip.as_deref(),
            oldest.detail.as_deref()
        ),
        (
            Some("alice"),
            "login",
            Some("t"),
            "success",
            Some("192.0.2.1"),
            None
        )
    );

    let count = |q: AuditQuery| async move { walk(q).await.0.len() };
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(count(q(|q| q.actor = Some("bob".into()))).await, 5);
    assert_eq!(count(q(|q| q.actor = Some("alice".into()))).await, 20);
    assert_eq!(count(q(|q| q.actor = Some("ev\0il".into()))).await, 1);
    assert_eq!(count(q(|q| q.action = Some("user.create".into()))).await, 5);
    assert_eq!(
        count(AuditQuery {
            to: Some(mid),
            ..AuditQuery::default()
        })
        .await,
        10
    );
    assert_eq!(
        count(AuditQuery {
            from: Some(mid),
            ..AuditQuery::default()
        })
        .await,
        16
    );
    let combined = AuditQuery {
        from: Some(mid),
        actor: Some("alice".into()),
        action: Some("login".into()),
        ..AuditQuery::default()
    };
    let (hits, _) = walk(combined).await;
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|e| e.ts >= mid && e.action == "login"));
    let none = AuditQuery {
        to: Some(mid),
        action: Some("user.create".into()),
        ..AuditQuery::default()
    };
    assert_eq!(count(none).await, 0);

    // One page holding everything has no next cursor; limit 0 means 1.
    let page = s
        .query_audit(&AuditQuery {
            limit: 26,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next_cursor), (26, None));
    let page = s
        .query_audit(&AuditQuery {
            limit: 0,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next_cursor.is_some());
}
