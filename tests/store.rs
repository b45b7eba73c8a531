//! Integration tests: the account store (issue 3) — write semantics, vendor error codes,
//! index maintenance, bulk import/export, crash safety, concurrency.

use std::io::Cursor;

use acql::catalog::{Collection, IndexKind};
use acql::store::{AccountParams, ImportOptions, LiteAccountParams, OpenMode, Store, StoreError};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// helpers

fn lite(
    email: &str,
    profile: Option<Value>,
    subscriptions: Option<Value>,
    data: Option<Value>,
) -> LiteAccountParams {
    LiteAccountParams {
        email: email.to_string(),
        profile,
        subscriptions,
        data,
    }
}

fn email_doc(store: &Store, email: &str) -> Value {
    store
        .get_document(Collection::EmailAccounts, email)
        .unwrap()
        .unwrap_or_else(|| panic!("no email account {email}"))
}

fn full_doc(store: &Store, uid: &str) -> Value {
    store
        .get_document(Collection::Accounts, uid)
        .unwrap()
        .unwrap_or_else(|| panic!("no account {uid}"))
}

/// Everything a store holds: both collections (id, key, document) and every side table's
/// rows, so "nothing changed" covers the indexes too.
fn dump(store: &Store) -> Vec<String> {
    store.dump().unwrap()
}

/// Asserts that `f` fails with `code` and leaves the store exactly as it was.
#[track_caller]
fn fails_unchanged(
    store: &Store,
    code: u32,
    f: impl FnOnce(&Store) -> Result<(), StoreError>,
) -> StoreError {
    let before = dump(store);
    let err = f(store).expect_err("the call should fail");
    assert_eq!(err.vendor_code(), code, "{err}");
    assert_eq!(dump(store), before, "a failed call changed the store");
    err
}

/// Row ids of the documents whose index entry for `pattern` (value index) has key `k`.
fn index_lookup(
    store: &Store,
    collection: Collection,
    pattern: &str,
    b: &str,
    k: &dyn rusqlite::ToSql,
) -> Vec<i64> {
    let catalog = store.catalog().unwrap();
    let def = catalog
        .of(collection)
        .find(|d| d.pattern.to_string() == pattern && d.kind == IndexKind::Value)
        .unwrap_or_else(|| panic!("no index on {pattern}"))
        .clone();
    store
        .read(|conn| {
            // Indexes without `*` have no `b` column.
            let (sql, b) = if def.has_binding() {
                ("b = ?1 AND k = ?2", b)
            } else {
                ("?1 = '' AND k = ?2", b)
            };
            let sql = format!("SELECT doc FROM {} WHERE {sql} ORDER BY doc", def.table());
            let mut stmt = conn.prepare(&sql).unwrap();
            stmt.query_map(rusqlite::params![b, k], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        })
        .unwrap()
}

fn row_id(store: &Store, collection: Collection, key: &str) -> i64 {
    store
        .read(|conn| {
            conn.query_row(
                &format!("SELECT id FROM {} WHERE key = ?1", collection.keys_table()),
                [key],
                |r| r.get(0),
            )
            .unwrap()
        })
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// importLiteAccount

#[test]
fn lite_import_creates_account_with_system_fields() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite(
            "  Jane@Example.COM ",
            Some(json!({"firstName": "Jane"})),
            None,
            None,
        ))
        .unwrap();
    let doc = email_doc(&store, "jane@example.com");
    assert_eq!(doc["email"], "jane@example.com");
    assert_eq!(
        doc["profile"],
        json!({"firstName": "Jane", "email": "jane@example.com"})
    );
    assert_eq!(doc["hasLiteAccount"], true);
    assert_eq!(doc["hasFullAccount"], false);
    assert_eq!(doc["channel"], "email");
    assert!(doc.get("UID").is_none());
    let token = doc["token"].as_str().unwrap();
    assert!(
        token.len() == 64
            && token
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let created = doc["created"].as_str().unwrap();
    assert_eq!(created.len(), 24, "ISO with ms and Z: {created}");
    assert!(created.ends_with('Z'));
    assert_eq!(
        acql::store::time::parse_iso(created),
        doc["createdTimestamp"].as_i64()
    );
    assert_eq!(doc["lastUpdatedTimestamp"], doc["createdTimestamp"]);
}

#[test]
fn lite_reimport_merges_and_keeps_untouched_fields() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite(
            "a@b.co",
            Some(json!({"firstName": "Ann", "lastName": "Lee", "address": {"city": "Oslo", "zip": "0150"}})),
            None,
            Some(json!({"tags": ["x", "y"], "n": 1})),
        ))
        .unwrap();
    let first = email_doc(&store, "a@b.co");
    std::thread::sleep(std::time::Duration::from_millis(3));
    // Another case of the same email merges into the same account.
    store
        .import_lite_account(&lite(
            "A@B.CO",
            Some(json!({"lastName": "Smith", "address": {"city": "Bergen"}})),
            None,
            Some(json!({"tags": ["z"]})),
        ))
        .unwrap();
    assert_eq!(store.count(Collection::EmailAccounts).unwrap(), 1);
    let doc = email_doc(&store, "a@b.co");
    assert_eq!(
        doc["profile"],
        json!({"firstName": "Ann", "lastName": "Smith", "address": {"city": "Bergen", "zip": "0150"}, "email": "a@b.co"})
    );
    assert_eq!(
        doc["data"],
        json!({"tags": ["z"], "n": 1}),
        "arrays replace, untouched keys stay"
    );
    assert_eq!(doc["token"], first["token"]);
    assert_eq!(doc["created"], first["created"]);
    assert!(doc["lastUpdatedTimestamp"].as_i64() > first["lastUpdatedTimestamp"].as_i64());
}

#[test]
fn null_removes_a_key_and_dotted_keys_are_paths() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite(
            "a@b.co",
            Some(json!({"nick": "x", "age": 3})),
            None,
            Some(json!({"a": {"b": 1, "c": 2}})),
        ))
        .unwrap();
    store
        .import_lite_account(&lite(
            "a@b.co",
            Some(json!({"nick": null})),
            None,
            Some(json!({"a.c": null, "a.d.e": true, "f": {"g.h": 1}})),
        ))
        .unwrap();
    let doc = email_doc(&store, "a@b.co");
    assert_eq!(doc["profile"], json!({"age": 3, "email": "a@b.co"}));
    assert_eq!(
        doc["data"],
        json!({"a": {"b": 1, "d": {"e": true}}, "f": {"g": {"h": 1}}})
    );
}

#[test]
fn subscriptions_rules() {
    let store = Store::in_memory().unwrap();
    // Dotted keys, namespaced IDs kept whole up to `email`.
    store
        .import_lite_account(&lite(
            "s@b.co",
            None,
            Some(json!({
                "news.email.isSubscribed": true,
                "pets.canine.email.isSubscribed": false,
                "pets.feline": {"email": {"isSubscribed": true, "tags": ["cat"], "doubleOptIn": {"status": "Pending"}}},
                "old": {"email": {"isSubscribed": true, "lastUpdatedSubscriptionState": "2017-05-15T11:30:05.555Z"}}
            })),
            None,
        ))
        .unwrap();
    let doc = email_doc(&store, "s@b.co");
    let subs = &doc["subscriptions"];
    assert_eq!(subs["news"]["email"]["isSubscribed"], true);
    assert_eq!(subs["pets.canine"]["email"]["isSubscribed"], false);
    assert_eq!(subs["pets.feline"]["email"]["tags"], json!(["cat"]));
    assert_eq!(
        subs["pets.feline"]["email"]["doubleOptIn"]["status"],
        "Pending"
    );
    let stamp = subs["news"]["email"]["lastUpdatedSubscriptionState"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stamp,
        doc["lastUpdated"].as_str().unwrap(),
        "set to now when first set"
    );
    assert_eq!(
        subs["old"]["email"]["lastUpdatedSubscriptionState"], "2017-05-15T11:30:05.555Z",
        "import may supply it"
    );

    std::thread::sleep(std::time::Duration::from_millis(3));
    // Same value again: the state time stays; a change moves it; tags replace.
    store
        .import_lite_account(&lite(
            "s@b.co",
            None,
            Some(json!({"news": {"email": {"isSubscribed": true, "tags": ["a", "b"]}}, "pets.feline.email.isSubscribed": false,
                "pets.feline.email.tags": []})),
            None,
        ))
        .unwrap();
    let doc = email_doc(&store, "s@b.co");
    let subs = &doc["subscriptions"];
    assert_eq!(
        subs["news"]["email"]["lastUpdatedSubscriptionState"],
        stamp.as_str()
    );
    assert_eq!(subs["news"]["email"]["tags"], json!(["a", "b"]));
    assert_eq!(subs["pets.feline"]["email"]["tags"], json!([]));
    assert_eq!(
        subs["pets.feline"]["email"]["lastUpdatedSubscriptionState"],
        doc["lastUpdated"]
    );
    assert_ne!(
        subs["pets.feline"]["email"]["lastUpdatedSubscriptionState"],
        stamp.as_str()
    );
    // The default subscriptions index sees namespaced IDs whole.
    let id = row_id(&store, Collection::EmailAccounts, "s@b.co");
    assert_eq!(
        index_lookup(
            &store,
            Collection::EmailAccounts,
            "subscriptions.*.email.isSubscribed",
            "pets.canine",
            &vec![0u8]
        ),
        vec![id]
    );
}

#[test]
fn invalid_lite_imports_return_codes_and_change_nothing() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite("keep@b.co", Some(json!({"x": 1})), None, None))
        .unwrap();
    fails_unchanged(&store, 400_002, |s| {
        s.import_lite_account(&LiteAccountParams::default())
    });
    fails_unchanged(&store, 400_002, |s| {
        s.import_lite_account(&lite("   ", None, None, None))
    });
    let e = fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite("not-an-email", None, None, None))
    });
    assert_eq!(e.validation_errors()[0].field_name, "email");
    let e = fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite("keep@b.co", Some(json!("str")), None, None))
    });
    assert_eq!(e.validation_errors()[0].field_name, "profile");
    fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite("keep@b.co", None, None, Some(json!([1]))))
    });
    let e = fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite(
            "keep@b.co",
            Some(json!({"x": 2})),
            Some(json!({"n.email.isSubscribed": "yes"})),
            None,
        ))
    });
    assert_eq!(
        e.validation_errors()[0].field_name,
        "subscriptions.n.email.isSubscribed"
    );
    let e = fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite(
            "keep@b.co",
            None,
            Some(json!({"n": {"email": {"doubleOptIn": {"status": "Yes"}}}})),
            None,
        ))
    });
    assert_eq!(
        e.validation_errors()[0].field_name,
        "subscriptions.n.email.doubleOptIn.status"
    );
    fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite(
            "keep@b.co",
            None,
            Some(json!({"n": {"email": {"tags": "a"}}})),
            None,
        ))
    });
    // Several faults are all reported.
    let e = fails_unchanged(&store, 400_006, |s| {
        s.import_lite_account(&lite(
            "keep@b.co",
            Some(json!(1)),
            Some(json!({"n.email.isSubscribed": 1})),
            None,
        ))
    });
    assert_eq!(e.validation_errors().len(), 2);
}

// ---------------------------------------------------------------------------------------
// full accounts and the full → email sync

fn full(
    uid: Option<&str>,
    profile: Value,
    data: Option<Value>,
    subscriptions: Option<Value>,
) -> AccountParams {
    AccountParams {
        uid: uid.map(str::to_string),
        profile: Some(profile),
        data,
        subscriptions,
        ..Default::default()
    }
}

#[test]
fn full_import_creates_email_account_with_link() {
    let store = Store::in_memory().unwrap();
    let uid = store
        .import_full_account(&full(
            None,
            json!({"email": " Bob@Site.ORG", "firstName": "Bob"}),
            Some(json!({"k": 1})),
            None,
        ))
        .unwrap();
    assert!(
        uid.len() == 32
            && uid
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let acc = full_doc(&store, &uid);
    assert_eq!(acc["UID"], uid.as_str());
    assert_eq!(acc["profile"]["email"], "bob@site.org");
    assert_eq!(
        (acc["isActive"].clone(), acc["isVerified"].clone()),
        (json!(true), json!(false))
    );
    let ea = email_doc(&store, "bob@site.org");
    assert_eq!(ea["hasFullAccount"], true);
    assert_eq!(ea["hasLiteAccount"], false, "created by a full account");
    assert_eq!(ea["UID"], uid.as_str());
    assert_eq!(
        ea["profile"],
        json!({"email": "bob@site.org", "firstName": "Bob"})
    );
    assert_eq!(ea["data"], json!({"k": 1}));
    // A later lite import for that email turns hasLiteAccount on and keeps the link.
    store
        .import_lite_account(&lite(
            "bob@site.org",
            Some(json!({"nick": "b"})),
            None,
            None,
        ))
        .unwrap();
    let ea = email_doc(&store, "bob@site.org");
    assert_eq!(
        (ea["hasLiteAccount"].clone(), ea["hasFullAccount"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(ea["UID"], uid.as_str());
    // ... and nothing but subscriptions flows back to the full account.
    assert!(full_doc(&store, &uid)["profile"].get("nick").is_none());
    // The linked email account is found through the default UID index.
    let id = row_id(&store, Collection::EmailAccounts, "bob@site.org");
    assert_eq!(
        index_lookup(&store, Collection::EmailAccounts, "UID", "", &uid),
        vec![id]
    );
}

#[test]
fn full_account_links_existing_lite_account_and_merges_subscriptions() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite(
            "c@d.ee",
            Some(json!({"firstName": "Lite", "city": "Rome"})),
            Some(json!({"a.email.isSubscribed": true, "b.email.isSubscribed": true})),
            Some(json!({"liteOnly": 1})),
        ))
        .unwrap();
    let uid = store
        .import_full_account(&full(
            Some("U-1"),
            json!({"email": "c@d.ee", "firstName": "Full"}),
            Some(json!({"fullOnly": 2})),
            Some(json!({"b.email.isSubscribed": false, "c.email.isSubscribed": true})),
        ))
        .unwrap();
    assert_eq!(uid, "U-1");
    let ea = email_doc(&store, "c@d.ee");
    let acc = full_doc(&store, "U-1");
    assert_eq!(
        (
            ea["hasLiteAccount"].clone(),
            ea["hasFullAccount"].clone(),
            ea["UID"].clone()
        ),
        (json!(true), json!(true), json!("U-1"))
    );
    assert_eq!(
        ea["profile"],
        json!({"firstName": "Full", "city": "Rome", "email": "c@d.ee"})
    );
    assert_eq!(ea["data"], json!({"liteOnly": 1, "fullOnly": 2}));
    let flags =
        |d: &Value| ["a", "b", "c"].map(|s| d["subscriptions"][s]["email"]["isSubscribed"].clone());
    assert_eq!(
        flags(&ea),
        [json!(true), json!(false), json!(true)],
        "merged, the full account winning"
    );
    assert_eq!(ea["subscriptions"], acc["subscriptions"], "one shared set");

    // A subscription change on the email side shows on the full account …
    store
        .import_lite_account(&lite(
            "c@d.ee",
            None,
            Some(json!({"a.email.isSubscribed": false})),
            None,
        ))
        .unwrap();
    let acc = full_doc(&store, "U-1");
    assert_eq!(acc["subscriptions"]["a"]["email"]["isSubscribed"], false);
    assert_eq!(
        acc["subscriptions"],
        email_doc(&store, "c@d.ee")["subscriptions"]
    );
    // … and one on the full side shows on the email account, as does the same profile
    // and data write (null deleting there too).
    store
        .set_account_info(&AccountParams {
            uid: Some("U-1".into()),
            subscriptions: Some(json!({"d": {"email": {"isSubscribed": true}}})),
            profile: Some(json!({"city": null, "lastName": "X"})),
            data: Some(json!({"liteOnly": null})),
            ..Default::default()
        })
        .unwrap();
    let ea = email_doc(&store, "c@d.ee");
    assert_eq!(ea["subscriptions"]["d"]["email"]["isSubscribed"], true);
    assert_eq!(
        ea["subscriptions"],
        full_doc(&store, "U-1")["subscriptions"]
    );
    assert_eq!(
        ea["profile"],
        json!({"firstName": "Full", "email": "c@d.ee", "lastName": "X"})
    );
    assert_eq!(ea["data"], json!({"fullOnly": 2}));
    // The subscriptions index follows both writes.
    let id = row_id(&store, Collection::EmailAccounts, "c@d.ee");
    assert_eq!(
        index_lookup(
            &store,
            Collection::EmailAccounts,
            "subscriptions.*.email.isSubscribed",
            "d",
            &vec![1u8]
        ),
        vec![id]
    );
    assert!(
        index_lookup(
            &store,
            Collection::EmailAccounts,
            "subscriptions.*.email.isSubscribed",
            "a",
            &vec![1u8]
        )
        .is_empty()
    );
}

#[test]
fn set_account_info_merges_and_moves_email() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite("old@x.io", None, None, None))
        .unwrap();
    store
        .import_full_account(&full(
            Some("u"),
            json!({"email": "old@x.io", "age": 30}),
            None,
            None,
        ))
        .unwrap();
    store
        .import_full_account(&full(Some("v"), json!({"email": "solo@x.io"}), None, None))
        .unwrap();
    store
        .set_account_info(&AccountParams {
            uid: Some("u".into()),
            profile: Some(json!({"email": "New@X.io"})),
            is_active: Some(false),
            is_verified: Some(true),
            ..Default::default()
        })
        .unwrap();
    let acc = full_doc(&store, "u");
    assert_eq!(acc["profile"], json!({"email": "new@x.io", "age": 30}));
    assert_eq!(
        (acc["isActive"].clone(), acc["isVerified"].clone()),
        (json!(false), json!(true))
    );
    // The old email account had a lite registration: it stays, unlinked.
    let old = email_doc(&store, "old@x.io");
    assert_eq!(old["hasFullAccount"], false);
    assert!(old.get("UID").is_none());
    let new = email_doc(&store, "new@x.io");
    assert_eq!(
        (new["UID"].clone(), new["hasLiteAccount"].clone()),
        (json!("u"), json!(false))
    );
    assert_eq!(
        new["profile"]["age"], 30,
        "a newly linked email account gets the whole profile"
    );
    // isVerified cannot go back to false.
    store
        .set_account_info(&AccountParams {
            uid: Some("u".into()),
            is_verified: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(full_doc(&store, "u")["isVerified"], true);
    // Deleting a full account deletes the email account it created, unlinks others.
    store.delete_account("v").unwrap();
    assert!(
        store
            .get_document(Collection::EmailAccounts, "solo@x.io")
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_document(Collection::Accounts, "v")
            .unwrap()
            .is_none()
    );
    store
        .import_lite_account(&lite("new@x.io", None, None, None))
        .unwrap();
    store.delete_account("u").unwrap();
    let new = email_doc(&store, "new@x.io");
    assert_eq!(
        (new["hasFullAccount"].clone(), new.get("UID")),
        (json!(false), None)
    );
}

#[test]
fn get_account_info_honours_include() {
    let store = Store::in_memory().unwrap();
    store
        .import_full_account(&full(
            Some("g"),
            json!({"firstName": "G"}),
            Some(json!({"d": 1})),
            Some(json!({"n.email.isSubscribed": true})),
        ))
        .unwrap();
    let info = store.get_account_info("g", None).unwrap();
    assert_eq!(info["profile"], json!({"firstName": "G"}));
    assert_eq!(info["data"], json!({"d": 1}));
    assert!(info.get("subscriptions").is_none());
    assert_eq!(info["UID"], "g");
    assert!(info.get("createdTimestamp").is_some());
    let info = store
        .get_account_info("g", Some(&["subscriptions"]))
        .unwrap();
    assert!(info.get("profile").is_none());
    assert_eq!(info["subscriptions"]["n"]["email"]["isSubscribed"], true);
    assert_eq!(
        store
            .get_account_info("nope", None)
            .unwrap_err()
            .vendor_code(),
        403_005
    );
    assert_eq!(
        store.get_account_info("", None).unwrap_err().vendor_code(),
        400_002
    );
}

#[test]
fn invalid_full_account_writes_return_codes_and_change_nothing() {
    let store = Store::in_memory().unwrap();
    store
        .import_full_account(&full(Some("dup"), json!({"email": "d@u.pp"}), None, None))
        .unwrap();
    fails_unchanged(&store, 400_003, |s| {
        s.import_full_account(&full(Some("dup"), json!({}), None, None))
            .map(drop)
    });
    fails_unchanged(&store, 400_006, |s| {
        s.import_full_account(&full(Some(""), json!({}), None, None))
            .map(drop)
    });
    fails_unchanged(&store, 400_006, |s| {
        s.import_full_account(&full(Some(&"x".repeat(257)), json!({}), None, None))
            .map(drop)
    });
    let e = fails_unchanged(&store, 400_006, |s| {
        s.import_full_account(&full(None, json!({"email": "bad@"}), None, None))
            .map(drop)
    });
    assert_eq!(e.validation_errors()[0].field_name, "profile.email");
    fails_unchanged(&store, 400_006, |s| {
        s.import_full_account(&AccountParams {
            profile: Some(json!([])),
            ..Default::default()
        })
        .map(drop)
    });
    fails_unchanged(&store, 400_006, |s| {
        s.import_full_account(&AccountParams {
            created: Some("yesterday".into()),
            ..Default::default()
        })
        .map(drop)
    });
    fails_unchanged(&store, 403_005, |s| {
        s.set_account_info(&full(Some("ghost"), json!({"x": 1}), None, None))
    });
    fails_unchanged(&store, 400_002, |s| {
        s.set_account_info(&AccountParams::default())
    });
    fails_unchanged(&store, 400_006, |s| {
        s.set_account_info(&full(
            Some("dup"),
            json!({}),
            None,
            Some(json!({"n.email.isSubscribed": "no"})),
        ))
    });
    fails_unchanged(&store, 403_005, |s| s.delete_account("ghost"));
    fails_unchanged(&store, 400_002, |s| s.delete_account(""));
    fails_unchanged(&store, 403_005, |s| s.delete_lite_account("00"));
    fails_unchanged(&store, 400_002, |s| s.delete_lite_account(""));
}

#[test]
fn delete_lite_account_by_token() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite("l@x.io", None, None, None))
        .unwrap();
    store
        .import_lite_account(&lite("both@x.io", None, None, None))
        .unwrap();
    store
        .import_full_account(&full(Some("b"), json!({"email": "both@x.io"}), None, None))
        .unwrap();
    let token = email_doc(&store, "l@x.io")["token"]
        .as_str()
        .unwrap()
        .to_string();
    store.delete_lite_account(&token).unwrap();
    assert!(
        store
            .get_document(Collection::EmailAccounts, "l@x.io")
            .unwrap()
            .is_none()
    );
    let token = email_doc(&store, "both@x.io")["token"]
        .as_str()
        .unwrap()
        .to_string();
    store.delete_lite_account(&token).unwrap();
    let doc = email_doc(&store, "both@x.io");
    assert_eq!(
        (doc["hasLiteAccount"].clone(), doc["UID"].clone()),
        (json!(false), json!("b"))
    );
    // `token` has a default index; without it the lookup scans and finds the same account.
    store
        .drop_index(Collection::EmailAccounts, "token", IndexKind::Value)
        .unwrap();
    store.delete_lite_account(&token).unwrap();
    assert_eq!(email_doc(&store, "both@x.io")["hasLiteAccount"], false);
}

// ---------------------------------------------------------------------------------------
// indexes

#[test]
fn index_entries_follow_every_write() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite("i@x.io", Some(json!({"country": "DE"})), None, None))
        .unwrap();
    let id = row_id(&store, Collection::EmailAccounts, "i@x.io");
    let country = |k: &str| {
        index_lookup(
            &store,
            Collection::EmailAccounts,
            "profile.country",
            "",
            &k.to_string(),
        )
    };
    assert_eq!(country("DE"), vec![id]);
    store
        .import_lite_account(&lite("i@x.io", Some(json!({"country": "FR"})), None, None))
        .unwrap();
    assert_eq!((country("DE"), country("FR")), (vec![], vec![id]));
    assert_eq!(
        row_id(&store, Collection::EmailAccounts, "i@x.io"),
        id,
        "updates keep the id"
    );
    store
        .import_lite_account(&lite("i@x.io", Some(json!({"country": null})), None, None))
        .unwrap();
    assert!(country("FR").is_empty());

    // add_index backfills existing documents; drop_index removes the side table.
    store
        .import_lite_account(&lite(
            "j@x.io",
            None,
            None,
            Some(json!({"tier": "gold words here"})),
        ))
        .unwrap();
    let def = store
        .add_index(Collection::EmailAccounts, "data.tier", IndexKind::Words)
        .unwrap();
    let words: Vec<String> = store
        .read(|c| {
            let mut s = c
                .prepare(&format!("SELECT w FROM {} ORDER BY w", def.table()))
                .unwrap();
            s.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        })
        .unwrap();
    assert_eq!(words, ["gold", "here", "words"]);
    assert_eq!(
        store
            .add_index(Collection::EmailAccounts, "data.tier", IndexKind::Words)
            .unwrap_err()
            .vendor_code(),
        400_006
    );
    assert!(
        store
            .add_index(Collection::EmailAccounts, "a.*.b.*", IndexKind::Value)
            .is_err()
    );
    store
        .drop_index(Collection::EmailAccounts, "data.tier", IndexKind::Words)
        .unwrap();
    assert!(
        store
            .catalog()
            .unwrap()
            .indexes
            .iter()
            .all(|d| d.id != def.id)
    );
    assert!(
        store
            .drop_index(Collection::EmailAccounts, "data.tier", IndexKind::Words)
            .is_err()
    );
    // Deleting the document removes its entries.
    store
        .import_lite_account(&lite("i@x.io", Some(json!({"country": "IT"})), None, None))
        .unwrap();
    let token = email_doc(&store, "i@x.io")["token"]
        .as_str()
        .unwrap()
        .to_string();
    store.delete_lite_account(&token).unwrap();
    assert!(country("IT").is_empty());
}

#[test]
fn new_store_has_default_indexes_and_schema_version() {
    let store = Store::in_memory().unwrap();
    let catalog = store.catalog().unwrap();
    assert_eq!(catalog.indexes.len(), acql::catalog::DEFAULT_INDEXES.len());
    let version: i64 = store
        .read(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        })
        .unwrap();
    assert_eq!(version, acql::store::SCHEMA_VERSION);
}

/// Imports a lite account with the `profile` and `data` of `fields`.
fn put(store: &Store, email: &str, fields: Value) {
    store
        .import_lite_account(&lite(
            email,
            fields.get("profile").cloned(),
            None,
            fields.get("data").cloned(),
        ))
        .unwrap();
}

#[test]
fn version_1_files_are_migrated_keeping_documents_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        // The layout version 1 wrote: the key unique inline, no index flags.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE acql_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
             CREATE TABLE acql_indexes(id INTEGER PRIMARY KEY, collection TEXT NOT NULL,
                 pattern TEXT NOT NULL, kind TEXT NOT NULL, UNIQUE (collection, pattern, kind));
             CREATE TABLE email_accounts(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, doc BLOB NOT NULL);
             CREATE TABLE accounts(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, doc BLOB NOT NULL);
             INSERT INTO acql_meta VALUES ('cursor_key', 'abcd');
             INSERT INTO acql_indexes VALUES (1, 'emailAccounts', 'profile.country', 'value');
             INSERT INTO acql_indexes VALUES (2, 'emailAccounts', 'data.tags', 'value');
             CREATE TABLE ix_1(b TEXT NOT NULL, k NOT NULL, doc INTEGER NOT NULL, n REAL, t INTEGER,
                 PRIMARY KEY (b, k, doc)) WITHOUT ROWID;
             CREATE TABLE ix_2(b TEXT NOT NULL, k NOT NULL, doc INTEGER NOT NULL, n REAL, t INTEGER,
                 PRIMARY KEY (b, k, doc)) WITHOUT ROWID;
             INSERT INTO ix_2 VALUES ('', 'a', 7, NULL, NULL), ('', 'b', 7, NULL, NULL);
             CREATE INDEX by_hand ON email_accounts(length(doc));
             INSERT INTO email_accounts VALUES (7, 'a@x.io', jsonb('{\"email\":\"a@x.io\",\"profile\":{\"country\":\"DE\"}}'));
             INSERT INTO ix_1 VALUES ('', 'DE', 7, NULL, NULL);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path, OpenMode::MustExist).unwrap();
    let version: i64 = store
        .read(|c| {
            c.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap()
        })
        .unwrap();
    assert_eq!(version, acql::store::SCHEMA_VERSION);
    assert_eq!(row_id(&store, Collection::EmailAccounts, "a@x.io"), 7);
    let catalog = store.catalog().unwrap();
    assert_eq!(catalog.indexes.len(), 2);
    assert!(!catalog.indexes[0].multi, "one row per document");
    assert!(catalog.indexes[1].multi, "two rows of one document");
    // The key is still unique, through its own index now.
    let err = import(
        &store,
        Collection::EmailAccounts,
        "{\"email\":\"a@x.io\"}\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let indexes: Vec<String> = store
        .read(|c| {
            let mut s = c
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'email_accounts'")
                .unwrap();
            s.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        })
        .unwrap();
    assert_eq!(indexes, ["by_hand"]);
    assert_eq!(
        keys_of(&store, Collection::EmailAccounts),
        [("a@x.io".to_string(), 7)]
    );
}

/// The rows of a collection's keys table, in key order.
fn keys_of(store: &Store, collection: Collection) -> Vec<(String, i64)> {
    store
        .read(|c| {
            let mut s = c
                .prepare(&format!(
                    "SELECT key, id FROM {} ORDER BY key",
                    collection.keys_table()
                ))
                .unwrap();
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        })
        .unwrap()
}

#[test]
fn version_2_files_move_their_keys_to_the_keys_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let before = {
        let store = Store::open(&path, OpenMode::Create).unwrap();
        put(&store, "b@x.io", json!({"profile": {"country": "DE"}}));
        put(&store, "a@x.io", json!({"data": {"n": 1}}));
        import(
            &store,
            Collection::Accounts,
            "{\"UID\":\"u1\",\"profile\":{}}\n",
        )
        .unwrap();
        store.dump().unwrap()
    };
    {
        // Back to the layout version 2 wrote: a unique index on `key`, no keys tables.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for c in Collection::ALL {
            conn.execute_batch(&format!(
                "DROP TABLE {k}; CREATE UNIQUE INDEX {t}_key ON {t}(key);",
                k = c.keys_table(),
                t = c.table()
            ))
            .unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
    }
    let store = Store::open(&path, OpenMode::MustExist).unwrap();
    assert!(
        store.dump().unwrap() == before,
        "migration changed the data"
    );
    assert_eq!(
        keys_of(&store, Collection::EmailAccounts),
        [("a@x.io".to_string(), 2), ("b@x.io".to_string(), 1)]
    );
    let indexes: i64 = store
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('email_accounts_key', 'accounts_key')",
                [],
                |r| r.get(0),
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(indexes, 0);
    // Keys are found and kept unique through the new table.
    put(&store, "a@x.io", json!({"data": {"n": 2}}));
    assert_eq!(store.count(Collection::EmailAccounts).unwrap(), 2);
    let err = import(&store, Collection::Accounts, "{\"UID\":\"u1\"}\n").unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn index_flags_are_recorded_once_a_document_needs_them() {
    let store = Store::in_memory().unwrap();
    let def = store
        .add_index(Collection::EmailAccounts, "data.tags", IndexKind::Value)
        .unwrap();
    assert!(!def.multi);
    put(&store, "one@x.io", json!({"data": {"tags": "a"}}));
    let multi = |store: &Store| {
        store
            .catalog()
            .unwrap()
            .of(Collection::EmailAccounts)
            .find(|d| d.id == def.id)
            .unwrap()
            .multi
    };
    assert!(!multi(&store), "one value per document so far");
    put(&store, "two@x.io", json!({"data": {"tags": ["a", "b"]}}));
    assert!(multi(&store), "a document with two values sets the flag");
    // Bulk imports record it too.
    let store = Store::in_memory().unwrap();
    let def = store
        .add_index(Collection::EmailAccounts, "data.tags", IndexKind::Value)
        .unwrap();
    import(
        &store,
        Collection::EmailAccounts,
        "{\"email\":\"a@x.io\",\"data\":{\"tags\":[1,2]}}\n",
    )
    .unwrap();
    assert!(
        store
            .catalog()
            .unwrap()
            .of(Collection::EmailAccounts)
            .find(|d| d.id == def.id)
            .unwrap()
            .multi
    );
}

#[test]
fn composite_index_rows_follow_writes_and_overflow() {
    let store = Store::in_memory().unwrap();
    let def = store
        .add_index(
            Collection::EmailAccounts,
            "profile.country, profile.age",
            IndexKind::Value,
        )
        .unwrap();
    assert_eq!(def.kind, IndexKind::Composite);
    assert_eq!(def.spec(), "profile.country, profile.age");
    let rows = |store: &Store| -> Vec<String> {
        store
            .read(|c| {
                let mut s = c
                    .prepare(&format!(
                        "SELECT b, k, doc FROM {} ORDER BY b, k, doc",
                        def.table()
                    ))
                    .unwrap();
                s.query_map([], |r| {
                    Ok(format!(
                        "{} {:?} {}",
                        r.get::<_, String>(0)?,
                        r.get_ref(1)?,
                        r.get::<_, i64>(2)?
                    ))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            })
            .unwrap()
    };
    put(
        &store,
        "a@x.io",
        json!({"profile": {"country": "DE", "age": 31}}),
    );
    put(
        &store,
        "b@x.io",
        json!({"profile": {"country": "42", "age": [20, 21]}}),
    );
    put(&store, "c@x.io", json!({"profile": {"country": "FR"}}));
    let a = row_id(&store, Collection::EmailAccounts, "a@x.io");
    let b = row_id(&store, Collection::EmailAccounts, "b@x.io");
    let c = row_id(&store, Collection::EmailAccounts, "c@x.io");
    assert_eq!(
        rows(&store),
        [
            format!("$42 Integer(20) {b}"),
            format!("$42 Integer(21) {b}"),
            format!("$DE Integer(31) {a}"),
            // Presence rows: one per first value, with or without a second value.
            format!("=$42 Integer(0) {b}"),
            format!("=$DE Integer(0) {a}"),
            format!("=$FR Integer(0) {c}"),
            format!("=~42 Integer(0) {b}"),
            format!("~42 Integer(20) {b}"),
            format!("~42 Integer(21) {b}"),
        ]
    );
    // A write replaces exactly the document's rows.
    put(&store, "a@x.io", json!({"profile": {"age": 32}}));
    assert!(rows(&store).contains(&format!("$DE Integer(32) {a}")));
    assert!(!rows(&store).contains(&format!("$DE Integer(31) {a}")));
    // Too many combinations: one overflow row, and the flag.
    let many: Vec<u32> = (0..300).collect();
    put(
        &store,
        "d@x.io",
        json!({"profile": {"country": "DE", "age": many}}),
    );
    let d = row_id(&store, Collection::EmailAccounts, "d@x.io");
    assert!(rows(&store).contains(&format!("! Integer(0) {d}")));
    assert!(rows(&store).contains(&format!("=$DE Integer(0) {d}")));
    let catalog = store.catalog().unwrap();
    let now = catalog
        .of(Collection::EmailAccounts)
        .find(|x| x.id == def.id)
        .unwrap();
    assert!(now.multi && now.overflow);
    // Dropping it by the same specification.
    store
        .drop_index(
            Collection::EmailAccounts,
            "profile.country,profile.age",
            IndexKind::Value,
        )
        .unwrap();
    assert!(
        store
            .catalog()
            .unwrap()
            .of(Collection::EmailAccounts)
            .all(|x| x.id != def.id)
    );
    // Bad specifications are refused.
    for spec in ["a.*, b", "a, b, c"] {
        assert!(
            store
                .add_index(Collection::EmailAccounts, spec, IndexKind::Value)
                .is_err(),
            "{spec}"
        );
    }
    assert!(
        store
            .add_index(Collection::EmailAccounts, "a, b", IndexKind::Words)
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// bulk import / export

fn import(
    store: &Store,
    collection: Collection,
    text: &str,
) -> Result<acql::store::ImportReport, StoreError> {
    store.import_ndjson(Cursor::new(text.as_bytes()), ImportOptions::new(collection))
}

#[test]
fn bulk_import_is_verbatim_and_round_trips() {
    let store = Store::in_memory().unwrap();
    let text = "{\"email\":\"Mixed@Case.COM\",\"x\":1.5,\"odd\":{\"k.with.dots\":[null,{}]}}\n\n\
                {\"profile\":{\"email\":\"p@e.xx\"},\"hasLiteAccount\":\"yes\"}\r\n";
    let report = import(&store, Collection::EmailAccounts, text).unwrap();
    assert_eq!((report.lines, report.inserted), (3, 2));
    // Stored exactly as given (no system fields added, key lower-cased only in the key column).
    let doc = email_doc(&store, "mixed@case.com");
    assert_eq!(
        doc,
        json!({"email": "Mixed@Case.COM", "x": 1.5, "odd": {"k.with.dots": [null, {}]}})
    );
    let mut out = Vec::new();
    store
        .export_ndjson(Collection::EmailAccounts, &mut out, Default::default())
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            doc,
            json!({"profile": {"email": "p@e.xx"}, "hasLiteAccount": "yes"})
        ]
    );
    // Indexes were filled.
    assert_eq!(
        index_lookup(
            &store,
            Collection::EmailAccounts,
            "profile.email",
            "",
            &"p@e.xx".to_string()
        )
        .len(),
        1
    );
    // Export of chosen ids.
    let mut out = Vec::new();
    let n = store
        .export_ids(
            Collection::EmailAccounts,
            &mut [2, 99, 1].into_iter(),
            &mut out,
            Default::default(),
        )
        .unwrap();
    assert_eq!(n, 2);
    assert!(String::from_utf8(out).unwrap().starts_with("{\"profile\""));
    // Accounts are keyed by UID.
    import(
        &store,
        Collection::Accounts,
        "{\"UID\":\"u1\",\"profile\":{\"email\":\"z@z.zz\"}}\n",
    )
    .unwrap();
    assert_eq!(full_doc(&store, "u1")["profile"]["email"], "z@z.zz");
}

#[test]
fn bulk_import_is_atomic_and_names_the_bad_line() {
    let store = Store::in_memory().unwrap();
    import(
        &store,
        Collection::EmailAccounts,
        "{\"email\":\"a@a.aa\"}\n",
    )
    .unwrap();
    let cases = [
        (
            "{\"email\":\"b@b.bb\"}\n{\"email\":\"c@c.cc\"\n",
            2,
            "invalid JSON",
        ),
        ("{\"email\":\"b@b.bb\"}\n[1,2]\n", 2, "not a JSON object"),
        ("{\"email\":\"b@b.bb\"}\n{\"name\":\"x\"}\n", 2, "no key"),
        (
            "{\"email\":\"b@b.bb\"}\n\n{\"email\":\" B@b.bb\"}\n",
            3,
            "earlier line",
        ),
        (
            "{\"email\":\"b@b.bb\"}\n{\"email\":\"A@A.AA\"}\n",
            2,
            "in the store",
        ),
    ];
    for (text, line, reason) in cases {
        let before = dump(&store);
        let err = import(&store, Collection::EmailAccounts, text).unwrap_err();
        let StoreError::BadImportLine { line: l, reason: r } = &err else {
            panic!("{err}")
        };
        assert_eq!(*l, line, "{text}");
        assert!(r.contains(reason), "{r}");
        assert_eq!(err.vendor_code(), 400_006);
        assert_eq!(dump(&store), before);
    }
    import(&store, Collection::Accounts, "{\"UID\":\"u\"}\n").unwrap();
    let err = import(&store, Collection::Accounts, "{\"UID\":\"u\"}\n").unwrap_err();
    assert!(matches!(err, StoreError::BadImportLine { line: 1, .. }));
    let err = import(&store, Collection::Accounts, "{\"UID\":7}\n").unwrap_err();
    assert!(matches!(err, StoreError::BadImportLine { line: 1, .. }));
}

#[test]
fn bulk_import_skip_and_replace_options() {
    let store = Store::in_memory().unwrap();
    import(
        &store,
        Collection::EmailAccounts,
        "{\"email\":\"a@a.aa\",\"v\":1,\"profile\":{\"country\":\"DE\"}}\n",
    )
    .unwrap();
    let id = row_id(&store, Collection::EmailAccounts, "a@a.aa");
    let text = "{\"email\":\"a@a.aa\",\"v\":2,\"profile\":{\"country\":\"FR\"}}\nnope\n{\"email\":\"b@b.bb\"}\n";
    let mut seen = Vec::new();
    let mut progress = |p: acql::store::Progress| seen.push(p);
    let report = store
        .import_ndjson(
            Cursor::new(text.as_bytes()),
            ImportOptions {
                collection: Collection::EmailAccounts,
                replace: true,
                skip_bad_lines: true,
                progress: Some(&mut progress),
                exclusive: false,
            },
        )
        .unwrap();
    assert_eq!(
        (report.inserted, report.replaced, report.bad_line_count),
        (1, 1, 1)
    );
    assert_eq!(report.bad_lines[0].line, 2);
    assert_eq!(
        seen.last().copied(),
        Some(acql::store::Progress {
            bytes: text.len() as u64,
            lines: 3
        })
    );
    assert_eq!(email_doc(&store, "a@a.aa")["v"], 2);
    assert_eq!(
        row_id(&store, Collection::EmailAccounts, "a@a.aa"),
        id,
        "replace keeps the id"
    );
    let country = |k: &str| {
        index_lookup(
            &store,
            Collection::EmailAccounts,
            "profile.country",
            "",
            &k.to_string(),
        )
    };
    assert_eq!((country("DE"), country("FR")), (vec![], vec![id]));
}

#[test]
fn generated_data_imports_and_exports_identically() {
    let mut text = Vec::new();
    acql::datagen::generate(300, 11, &mut text).unwrap();
    let store = Store::in_memory().unwrap();
    let report = store
        .import_ndjson(
            Cursor::new(&text),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    assert_eq!(report.inserted, 300);
    let mut out = Vec::new();
    store
        .export_ndjson(Collection::EmailAccounts, &mut out, Default::default())
        .unwrap();
    let parse = |b: &[u8]| -> Vec<Value> {
        String::from_utf8(b.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(parse(&out), parse(&text));
}

#[test]
fn staged_and_direct_index_filling_agree() {
    // An import into an empty collection stages index rows and sorts them in at the end;
    // with `replace` it writes them directly. Both must give the same side tables, and
    // the same as indexes declared afterwards (backfill).
    let mut text = Vec::new();
    acql::datagen::generate(400, 3, &mut text).unwrap();
    let staged = Store::in_memory().unwrap();
    staged
        .import_ndjson(
            Cursor::new(&text),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    let direct = Store::in_memory().unwrap();
    let options = ImportOptions {
        replace: true,
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    direct.import_ndjson(Cursor::new(&text), options).unwrap();
    assert_eq!(dump(&staged), dump(&direct));
    let backfilled = Store::in_memory().unwrap();
    for def in backfilled.catalog().unwrap().indexes {
        backfilled
            .drop_index(def.collection, &def.spec(), def.kind)
            .unwrap();
    }
    backfilled
        .import_ndjson(
            Cursor::new(&text),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    for (collection, pattern, kind) in acql::catalog::DEFAULT_INDEXES {
        backfilled.add_index(*collection, pattern, *kind).unwrap();
    }
    // Side tables are named by index id, which matches: same declaration order.
    assert_eq!(dump(&backfilled), dump(&staged));
    assert!(
        dump(&staged)
            .iter()
            .filter(|l| l.starts_with("ix_"))
            .count()
            > 3000
    );
}

// ---------------------------------------------------------------------------------------
// files, crash safety, concurrency

#[test]
fn open_modes_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let err = Store::open(&path, OpenMode::MustExist)
        .err()
        .expect("missing file must fail");
    assert!(matches!(err, StoreError::NotFound(_)));
    {
        let store = Store::open(&path, OpenMode::Create).unwrap();
        store
            .import_lite_account(&lite("p@q.rs", None, None, None))
            .unwrap();
    }
    let store = Store::open(&path, OpenMode::MustExist).unwrap();
    assert!(
        store
            .get_document(Collection::EmailAccounts, "p@q.rs")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.catalog().unwrap().indexes.len(),
        acql::catalog::DEFAULT_INDEXES.len(),
        "defaults once"
    );
}

fn journal_mode(db: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

fn exclusive_import(store: &Store, text: &str) -> Result<acql::store::ImportReport, StoreError> {
    let options = ImportOptions {
        exclusive: true,
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    store.import_ndjson(Cursor::new(text.as_bytes()), options)
}

#[test]
fn exclusive_import_equals_shared_and_returns_to_wal() {
    let mut text = Vec::new();
    // Past the size at which an import ends with a checkpoint.
    acql::datagen::generate(12_000, 11, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let shared = Store::open(&a, OpenMode::Create).unwrap();
    let report = import(&shared, Collection::EmailAccounts, &text).unwrap();
    assert!(!report.exclusive);
    let exclusive = Store::open(&b, OpenMode::Create).unwrap();
    // Idle pooled readers of the same store do not prevent it.
    exclusive.count(Collection::EmailAccounts).unwrap();
    let report = exclusive_import(&exclusive, &text).unwrap();
    assert!(report.exclusive, "nothing else had the file open");
    assert_eq!(report.inserted, 12_000);
    assert_eq!(dump(&shared), dump(&exclusive));
    for (i, def) in shared.catalog().unwrap().indexes.iter().enumerate() {
        assert_eq!(def, &exclusive.catalog().unwrap().indexes[i]);
    }
    // The store is back in WAL mode and takes further writes, checkpoints and reads.
    assert_eq!(journal_mode(&b), "wal");
    exclusive
        .import_lite_account(&lite("after@x.io", None, None, None))
        .unwrap();
    exclusive.checkpoint().unwrap();
    assert_eq!(exclusive.count(Collection::EmailAccounts).unwrap(), 12_001);
    // A second exclusive import into the now non-empty collection (the non-bulk path).
    let report = exclusive_import(&exclusive, "{\"email\":\"second@x.io\"}\n").unwrap();
    assert!(report.exclusive);
    assert_eq!(exclusive.count(Collection::EmailAccounts).unwrap(), 12_002);
    drop(exclusive);
    let reopened = Store::open(&b, OpenMode::MustExist).unwrap();
    let integrity: String = reopened
        .read(|c| {
            c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap()
        })
        .unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn exclusive_import_falls_back_when_the_file_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let store = Store::open(&db, OpenMode::Create).unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    let before: i64 = other
        .query_row("SELECT count(*) FROM email_accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before, 0);
    let started = std::time::Instant::now();
    let report = exclusive_import(&store, "{\"email\":\"a@x.io\"}\n").unwrap();
    assert!(!report.exclusive, "another connection has the file open");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "never waits"
    );
    let after: i64 = other
        .query_row("SELECT count(*) FROM email_accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, 1);
    assert_eq!(journal_mode(&db), "wal");
}

#[test]
fn failed_exclusive_import_changes_nothing_and_returns_to_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let store = Store::open(&db, OpenMode::Create).unwrap();
    store
        .import_lite_account(&lite("before@x.io", None, None, None))
        .unwrap();
    let before = dump(&store);
    let err = exclusive_import(
        &store,
        "{\"email\":\"a@x.io\"}\n{\"email\":\"before@x.io\"}\n",
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::BadImportLine { line: 2, .. }),
        "{err:?}"
    );
    assert_eq!(dump(&store), before);
    assert_eq!(journal_mode(&db), "wal");
    store
        .import_lite_account(&lite("after@x.io", None, None, None))
        .unwrap();
}

/// Child mode of `sigkill_mid_import_leaves_all_or_nothing`: imports a large generated file
/// into the store named by the variable and never returns on its own.
const CRASH_CHILD: &str = "ACQL_STORE_CRASH_CHILD";
/// Set for a child that imports with [`ImportOptions::exclusive`] (a rollback journal).
const CRASH_EXCLUSIVE: &str = "ACQL_STORE_CRASH_EXCLUSIVE";

#[test]
fn crash_child_mode() {
    let Ok(db) = std::env::var(CRASH_CHILD) else {
        return;
    };
    let source = format!("{db}.ndjson");
    acql::datagen::generate(
        100_000,
        5,
        std::io::BufWriter::new(std::fs::File::create(&source).unwrap()),
    )
    .unwrap();
    let store = Store::open(&db, OpenMode::Create).unwrap();
    let mut signalled = false;
    let mut progress = |p: acql::store::Progress| {
        // Tell the parent once the import is well under way (and far from done).
        if !signalled && p.lines >= 8192 {
            std::fs::write(format!("{db}.started"), b"").unwrap();
            signalled = true;
        }
    };
    let input = std::io::BufReader::new(std::fs::File::open(&source).unwrap());
    let options = ImportOptions {
        progress: Some(&mut progress),
        exclusive: std::env::var_os(CRASH_EXCLUSIVE).is_some(),
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    store.import_ndjson(input, options).unwrap();
    std::fs::write(format!("{db}.done"), b"").unwrap();
}

#[cfg(unix)]
#[test]
fn sigkill_mid_import_leaves_all_or_nothing() {
    sigkill_mid_import(false);
}

#[cfg(unix)]
#[test]
fn sigkill_mid_exclusive_import_leaves_all_or_nothing() {
    sigkill_mid_import(true);
}

#[cfg(unix)]
fn sigkill_mid_import(exclusive: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    {
        let store = Store::open(&db, OpenMode::Create).unwrap();
        store
            .import_lite_account(&lite("before@x.io", None, None, None))
            .unwrap();
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::crash_child_mode",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD, &db)
        .env(
            if exclusive {
                CRASH_EXCLUSIVE
            } else {
                "ACQL_UNUSED"
            },
            "1",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = dir.path().join("crash.db.started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(started.exists(), "child never started importing");
    child.kill().unwrap(); // SIGKILL on unix
    child.wait().unwrap();
    let done = dir.path().join("crash.db.done").exists();
    if exclusive && !done {
        // Killed inside the rollback-journal transaction: the next open must roll it back.
        assert!(
            dir.path().join("crash.db-journal").exists(),
            "no hot journal"
        );
    }
    let store = Store::open(&db, OpenMode::MustExist).unwrap();
    let integrity: String = store
        .read(|c| {
            c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap()
        })
        .unwrap();
    assert_eq!(integrity, "ok");
    let n = store.count(Collection::EmailAccounts).unwrap();
    eprintln!("after SIGKILL: {n} documents, import finished: {done}");
    assert!(
        n == 1 || (done && n == 100_001),
        "partial import survived: {n} documents"
    );
    assert!(
        store
            .get_document(Collection::EmailAccounts, "before@x.io")
            .unwrap()
            .is_some()
    );
    // The store stays writable after the crash.
    store
        .import_lite_account(&lite("after@x.io", None, None, None))
        .unwrap();
}

#[test]
fn one_writer_many_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        std::sync::Arc::new(Store::open(dir.path().join("c.db"), OpenMode::Create).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = 400u64;
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..writes {
                let p = lite(
                    &format!("w{i}@x.io"),
                    None,
                    Some(json!({"n.email.isSubscribed": i % 2 == 0})),
                    Some(json!({"i": i})),
                );
                store.import_lite_account(&p).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Counts only grow, and a document and its index entries agree.
                    let (n, indexed): (i64, i64) = store
                        .read(|c| {
                            c.execute_batch("BEGIN").unwrap();
                            let n = c.query_row("SELECT count(*) FROM email_accounts", [], |r| r.get(0)).unwrap();
                            let def = "SELECT count(*) FROM acql_indexes WHERE collection = 'emailAccounts' AND pattern = 'email'";
                            let id: i64 = c.query_row(&def.replace("count(*)", "id"), [], |r| r.get(0)).unwrap();
                            let m = c.query_row(&format!("SELECT count(*) FROM ix_{id}"), [], |r| r.get(0)).unwrap();
                            c.execute_batch("COMMIT").unwrap();
                            (n, m)
                        })
                        .unwrap();
                    assert!(n >= last);
                    assert_eq!(n, indexed);
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(store.count(Collection::EmailAccounts).unwrap(), writes);
    assert_eq!(email_doc(&store, "w399@x.io")["data"]["i"], 399);
}

/// `ImportOptions::progress` is documented as called after every 512-line batch, the last
/// one included, and once for an empty input.
#[test]
fn bulk_import_progress_after_every_batch() {
    let store = Store::in_memory().unwrap();
    let text: String = (0..1025)
        .map(|i| format!("{{\"email\":\"p{i}@example.com\"}}\n"))
        .collect();
    let mut seen = Vec::new();
    for input in [text.as_str(), ""] {
        let mut progress = |p: acql::store::Progress| seen.push(p.lines);
        store
            .import_ndjson(
                Cursor::new(input.as_bytes()),
                ImportOptions {
                    collection: Collection::EmailAccounts,
                    replace: false,
                    skip_bad_lines: false,
                    progress: Some(&mut progress),
                    exclusive: false,
                },
            )
            .unwrap();
    }
    assert_eq!(seen, [512, 1024, 1025, 0]);
}

#[test]
fn dotted_write_key_with_an_empty_segment_is_refused() {
    let store = Store::in_memory().unwrap();
    store
        .import_lite_account(&lite("keep@b.co", Some(json!({"x": 1})), None, None))
        .unwrap();
    let cases = [
        (None, None, Some(json!({"a.": 1})), "data.a."),
        (None, None, Some(json!({".": 1})), "data.."),
        (None, None, Some(json!({".a": 1})), "data..a"),
        (None, None, Some(json!({"n": {"a..b": 1}})), "data.n.a..b"),
        (Some(json!({"a..b": 1})), None, None, "profile.a..b"),
        (
            None,
            Some(json!({"ns..n.email.isSubscribed": true})),
            None,
            "subscriptions.ns..n.email.isSubscribed",
        ),
    ];
    for (profile, subscriptions, data, field) in cases {
        let e = fails_unchanged(&store, 400_006, |s| {
            s.import_lite_account(&lite("keep@b.co", profile, subscriptions, data))
        });
        let fields: Vec<&str> = e
            .validation_errors()
            .iter()
            .map(|v| v.field_name.as_str())
            .collect();
        assert_eq!(fields, [field]);
    }
    // Keys without dots, valid dotted keys and namespaced subscription IDs still work.
    store
        .import_lite_account(&lite(
            "keep@b.co",
            None,
            Some(json!({"ns.n.email.isSubscribed": true})),
            Some(json!({"plain": 1, "a.b": 2})),
        ))
        .unwrap();
    let doc = email_doc(&store, "keep@b.co");
    assert_eq!(doc["data"], json!({"plain": 1, "a": {"b": 2}}));
    assert_eq!(
        doc["subscriptions"]["ns.n"]["email"]["isSubscribed"],
        json!(true)
    );
}

// ---------------------------------------------------------------------------------------
// per-key counts tables

mod key_counts {
    use super::*;
    use proptest::prelude::*;

    /// A value of `data.c`: few distinct keys of every type, or an array (a document
    /// with several keys under one index), or nothing.
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => Just(Value::Null),
            6 => prop::sample::select(vec![
                json!("a"), json!("b"), json!("2026-01-01T00:00:00Z"), json!(1), json!(2.5),
                json!(-3), json!(true), json!(false), json!("7"),
            ]),
            1 => prop::sample::select(vec![json!(["a", "b"]), json!([1, 1, 2]), json!(["a", 1])]),
        ]
    }

    fn data() -> impl Strategy<Value = Value> {
        (value(), value()).prop_map(|(c, n)| {
            let mut d = serde_json::Map::new();
            if !c.is_null() {
                d.insert("c".into(), c);
            }
            if !n.is_null() {
                d.insert("n".into(), n);
            }
            Value::Object(d)
        })
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// `importLiteAccount`: merges `data` into the account of email `i`.
        Lite(u8, Value),
        /// Deletes the email account `i`, if there is one.
        Delete(u8),
        /// An NDJSON import of accounts `(i, data)`, replacing those that exist (a bulk
        /// load when the collection is empty and nothing is replaced).
        Import(Vec<(u8, Value)>, bool),
        /// Declares an index on the documents there are (it decides its counts table).
        AddIndex(&'static str),
        /// Turns an index's counts off (`true`) or on, if it is declared.
        Counts(&'static str, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..10, data()).prop_map(|(i, d)| Op::Lite(i, d)),
            2 => (0u8..10).prop_map(Op::Delete),
            2 => (prop::collection::vec((0u8..10, data()), 0..12), any::<bool>())
                .prop_map(|(rows, replace)| Op::Import(rows, replace)),
            1 => prop::sample::select(vec!["data.n", "data.c, data.n", "data.*"]).prop_map(Op::AddIndex),
            1 => (prop::sample::select(vec!["data.c", "data.n", "data.c, data.n"]), any::<bool>())
                .prop_map(|(spec, off)| Op::Counts(spec, off)),
        ]
    }

    /// Every counts table holds exactly its side table's rows per key.
    fn assert_counts_agree(store: &Store) -> Result<(), TestCaseError> {
        let catalog = store.catalog().unwrap();
        // An index without counts has no rows in the counts table.
        let stray: i64 = store
            .read(|c| {
                let kept: bool = c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'acql_key_counts')",
                    [],
                    |r| r.get(0),
                )?;
                if !kept {
                    return Ok(0);
                }
                let uncounted: Vec<String> = catalog
                    .indexes
                    .iter()
                    .filter(|d| !d.counted && !d.presence_counted)
                    .map(|d| d.id.to_string())
                    .collect();
                c.query_row(
                    &format!(
                        "SELECT count(*) FROM acql_key_counts WHERE ix IN ({})",
                        if uncounted.is_empty() {
                            "NULL".to_string()
                        } else {
                            uncounted.join(", ")
                        }
                    ),
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap()
            .unwrap();
        prop_assert_eq!(stray, 0, "counts of indexes without counts");
        for def in catalog
            .indexes
            .iter()
            .filter(|d| d.counted || d.presence_counted)
        {
            let b = if def.has_binding() { "b" } else { "''" };
            // Presence rows only: bindings from the tag `=` up to `>`.
            let only = if def.counted {
                ""
            } else {
                " AND b >= '=' AND b < '>'"
            };
            let (want, got): (Vec<String>, Vec<String>) = store
                .read(|conn| {
                    let rows = |sql: &str| -> Vec<String> {
                        let mut stmt = conn.prepare(sql).unwrap();
                        stmt.query_map([def.id], |r| {
                            let b: String = r.get(0)?;
                            let k: rusqlite::types::Value = r.get(1)?;
                            let c: i64 = r.get(2)?;
                            Ok(format!("{b:?} {k:?} {c}"))
                        })
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap()
                    };
                    (
                        rows(&format!(
                            "SELECT {b}, k, count(*) FROM {} WHERE ?1 = ?1{only} GROUP BY {b}, k ORDER BY {b}, k",
                            def.table()
                        )),
                        rows("SELECT b, k, c FROM acql_key_counts WHERE ix = ?1 ORDER BY b, k"),
                    )
                })
                .unwrap();
            prop_assert_eq!(got, want, "counts of {} ({})", def.spec(), def.table());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever writes a store sees (merges, deletes, bulk loads, replacing imports,
        /// indexes declared later), each counts table equals its side table grouped by
        /// key, and a count or a group read from it is the unindexed engine's answer.
        #[test]
        fn counts_tables_follow_every_write(
            first in prop::collection::vec((0u8..10, data()), 0..12),
            ops in prop::collection::vec(op(), 1..16),
        ) {
            let store = Store::in_memory().unwrap();
            store.add_index(Collection::EmailAccounts, "data.c", IndexKind::Value).unwrap();
            store.add_index(Collection::EmailAccounts, "data.c", IndexKind::Words).unwrap();
            // Declared empty: the first load decides their counts tables from what it writes.
            store.add_index(Collection::EmailAccounts, "data.n", IndexKind::Value).unwrap();
            store.add_index(Collection::EmailAccounts, "data.c, data.n", IndexKind::Value).unwrap();
            // Counted from the start (empty), whatever the loads below decide.
            store.set_key_counts(Collection::EmailAccounts, "data.c", IndexKind::Value, true).unwrap();
            let ndjson = |rows: &[(u8, Value)]| -> String {
                rows.iter()
                    .map(|(i, d)| format!("{}\n", json!({"email": format!("e{i}@x.com"), "data": d})))
                    .collect()
            };
            // A first bulk load, skipping the lines that repeat an email (their rows are
            // written, then left out).
            let mut options = ImportOptions::new(Collection::EmailAccounts);
            options.skip_bad_lines = true;
            store.import_ndjson(ndjson(&first).as_bytes(), options).unwrap();
            assert_counts_agree(&store)?;
            for op in ops {
                match op {
                    Op::Lite(i, d) => {
                        store.import_lite_account(&lite(&format!("e{i}@x.com"), None, None, Some(d))).unwrap();
                    }
                    Op::Delete(i) => {
                        if let Some(doc) = store.get_document(Collection::EmailAccounts, &format!("e{i}@x.com")).unwrap()
                            && let Some(token) = doc["token"].as_str()
                        {
                            store.delete_lite_account(token).unwrap();
                        }
                    }
                    Op::Import(rows, replace) => {
                        let mut options = ImportOptions::new(Collection::EmailAccounts);
                        options.replace = replace;
                        // Without `replace`, an existing email fails the import, which must
                        // then change nothing (counts included).
                        let _ = store.import_ndjson(ndjson(&rows).as_bytes(), options);
                    }
                    Op::Counts(spec, off) => {
                        let declared = store.catalog().unwrap().indexes.iter().any(|d| d.spec() == spec && d.kind != IndexKind::Words);
                        if declared {
                            let def = if off {
                                store.set_key_counts(Collection::EmailAccounts, spec, IndexKind::Value, false).unwrap()
                            } else {
                                store.set_key_counts(Collection::EmailAccounts, spec, IndexKind::Value, true).unwrap()
                            };
                            prop_assert_eq!(def.counted, !off);
                        }
                    }
                    Op::AddIndex(spec) => {
                        let kind = IndexKind::Value;
                        let declared = store.catalog().unwrap().indexes.iter().any(|d| d.spec() == spec && d.kind != IndexKind::Words);
                        if !declared {
                            store.add_index(Collection::EmailAccounts, spec, kind).unwrap();
                        }
                    }
                }
                assert_counts_agree(&store)?;
            }
            // Counts and groups read from the tables answer as the evaluator does.
            for def in store.catalog().unwrap().indexes {
                if def.kind != IndexKind::Words && !def.counted {
                    store.set_key_counts(def.collection, &def.spec(), def.kind, true).unwrap();
                }
            }
            assert_counts_agree(&store)?;
            let engine = acql::engine::Engine::from_store(store);
            let plain = engine.without_indexes();
            for q in [
                "SELECT count(*) FROM emailAccounts WHERE data.c = \"a\"",
                "SELECT count(*) FROM emailAccounts WHERE data.c IN (\"a\", 1, true)",
                "SELECT count(*) FROM emailAccounts WHERE data.c >= 0",
                "SELECT count(*) FROM emailAccounts WHERE data.n < \"b\"",
                "SELECT data.c, count(*) FROM emailAccounts GROUP BY data.c",
                "SELECT avg(data.n), sum(data.n), min(data.n), max(data.n), count(*) FROM emailAccounts WHERE data.c = \"a\"",
                "SELECT data.c, avg(data.n), count(*) FROM emailAccounts GROUP BY data.c",
            ] {
                let opts = acql::engine::SearchOptions::default();
                let (got, want) = (engine.search(q, &opts).unwrap(), plain.search(q, &opts).unwrap());
                prop_assert_eq!(&got.results, &want.results, "{}:\n{}", q, engine.explain(q).unwrap_or_default());
                prop_assert_eq!(got.total_count, want.total_count, "{} totalCount", q);
            }
        }
    }

    /// 40 accounts, half in `DE` and half in `FR`, as NDJSON.
    fn two_countries() -> String {
        (0..40)
            .map(|i| {
                let country = ["DE", "FR"][i % 2];
                format!(
                    "{}\n",
                    json!({"email": format!("e{i}@x.com"), "profile": {"country": country}})
                )
            })
            .collect()
    }

    /// Imports NDJSON lines into `emailAccounts`.
    fn load(store: &Store, ndjson: &str) {
        store
            .import_ndjson(
                ndjson.as_bytes(),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
    }

    /// Declaring an index on documents there are counts its keys when they repeat (at
    /// least twice on average), and not otherwise.
    #[test]
    fn an_index_added_later_counts_the_keys_that_repeat() {
        let store = Store::in_memory().unwrap();
        let docs: String = (0..30)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"email": format!("e{i}@x.com"), "data": {"tier": format!("t{}", i % 3), "serial": i}})
                )
            })
            .collect();
        load(&store, &docs);
        let tier = store
            .add_index(Collection::EmailAccounts, "data.tier", IndexKind::Value)
            .unwrap();
        let serial = store
            .add_index(Collection::EmailAccounts, "data.serial", IndexKind::Value)
            .unwrap();
        let pair = store
            .add_index(
                Collection::EmailAccounts,
                "data.tier, data.serial",
                IndexKind::Value,
            )
            .unwrap();
        assert!(tier.counted);
        assert!(!serial.counted);
        // 30 pairs and 30 presence rows over 30 + 3 keys: under two rows per key; the
        // presence rows alone repeat theirs.
        assert!(!pair.counted && pair.presence_counted);
        let catalog = store.catalog().unwrap();
        let flag = |spec: &str| {
            catalog
                .indexes
                .iter()
                .find(|d| d.spec() == spec)
                .unwrap()
                .counted
        };
        assert!(flag("data.tier") && !flag("data.serial"));
        let n: i64 = store
            .read(|c| {
                c.query_row(
                    "SELECT sum(c) FROM acql_key_counts WHERE ix = ?1",
                    [tier.id],
                    |r| r.get(0),
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(n, 30);
        // With the composite alone, a count of its first path reads the presence counts.
        store
            .drop_index(Collection::EmailAccounts, "data.tier", IndexKind::Value)
            .unwrap();
        let engine = acql::engine::Engine::from_store(store);
        let q = "SELECT count(*) FROM emailAccounts WHERE data.tier = \"t1\"";
        let explain = engine.explain(q).unwrap();
        assert!(explain.contains("FROM acql_key_counts"), "{explain}");
        let page = engine
            .search(q, &acql::engine::SearchOptions::default())
            .unwrap();
        assert_eq!(page.results, vec![json!({"count(*)": 10})]);
    }

    /// `set_key_counts(…, false)` takes an index's counts away for good: writes keep none,
    /// a load into a store whose index was turned off leaves it off, EXPLAIN leaves the
    /// counts out, answers stay the same; `set_key_counts(…, true)` brings them back.
    #[test]
    fn stopped_counts_stay_stopped_until_asked_for() {
        let store = Store::in_memory().unwrap();
        let docs = two_countries();
        load(&store, &docs);
        let spec = "profile.country";
        let flags = |store: &Store| {
            let def = store
                .catalog()
                .unwrap()
                .indexes
                .into_iter()
                .find(|d| d.spec() == spec && d.collection == Collection::EmailAccounts)
                .unwrap();
            (def.counted, def.uncounted, def.id)
        };
        // Counts of index `id`, 0 in a store that never kept any.
        let rows = |store: &Store, id: i64| -> i64 {
            store
                .read(|c| {
                    let kept: bool = c.query_row(
                        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'acql_key_counts')",
                        [],
                        |r| r.get(0),
                    )?;
                    if !kept {
                        return Ok(0);
                    }
                    c.query_row(
                        "SELECT count(*) FROM acql_key_counts WHERE ix = ?1",
                        [id],
                        |r| r.get(0),
                    )
                })
                .unwrap()
                .unwrap()
        };
        assert!(flags(&store).0);
        let def = store
            .set_key_counts(Collection::EmailAccounts, spec, IndexKind::Value, false)
            .unwrap();
        assert!(!def.counted && def.uncounted);
        let (counted, uncounted, id) = flags(&store);
        assert!(!counted && uncounted);
        assert_eq!(rows(&store, id), 0);
        store
            .import_lite_account(&lite(
                "new@x.com",
                Some(json!({"country": "DE"})),
                None,
                None,
            ))
            .unwrap();
        assert_eq!(rows(&store, id), 0, "writes keep no counts");
        // A new store whose index is stopped before its first load: the load leaves it so.
        let fresh = Store::in_memory().unwrap();
        fresh
            .set_key_counts(Collection::EmailAccounts, spec, IndexKind::Value, false)
            .unwrap();
        load(&fresh, &docs);
        let (counted, uncounted, id) = flags(&fresh);
        assert!(!counted && uncounted);
        assert_eq!(rows(&fresh, id), 0);
        let engine = acql::engine::Engine::from_store(store);
        let q = "SELECT count(*) FROM emailAccounts WHERE profile.country = \"DE\"";
        assert!(!engine.explain(q).unwrap().contains("acql_key_counts"));
        let opts = acql::engine::SearchOptions::default();
        assert_eq!(
            engine.search(q, &opts).unwrap().results,
            vec![json!({"count(*)": 21})]
        );
        let def = engine
            .set_key_counts(Collection::EmailAccounts, spec, IndexKind::Value, true)
            .unwrap();
        assert!(def.counted && !def.uncounted);
        assert!(engine.explain(q).unwrap().contains("acql_key_counts"));
        assert_eq!(
            engine.search(q, &opts).unwrap().results,
            vec![json!({"count(*)": 21})]
        );
    }

    /// A bulk load gives a counts table to the indexes whose keys repeat (at least
    /// twice on average) and to no other; `EXPLAIN` then shows counts read from it.
    #[test]
    fn a_bulk_load_counts_the_keys_that_repeat() {
        let store = Store::in_memory().unwrap();
        let docs = two_countries();
        load(&store, &docs);
        let catalog = store.catalog().unwrap();
        let counted = |spec: &str| {
            catalog
                .indexes
                .iter()
                .find(|d| d.spec() == spec && d.collection == Collection::EmailAccounts)
                .unwrap()
                .counted
        };
        assert!(counted("profile.country"));
        assert!(!counted("email"), "unique keys get no counts table");
        let engine = acql::engine::Engine::from_store(store);
        let explain = engine
            .explain("SELECT count(*) FROM emailAccounts WHERE profile.country = \"DE\"")
            .unwrap();
        assert!(explain.contains("FROM acql_key_counts"), "{explain}");
        let explain = engine
            .explain("SELECT count(*) FROM emailAccounts WHERE email = \"e1@x.com\"")
            .unwrap();
        assert!(!explain.contains("FROM acql_key_counts"), "{explain}");
    }
}
