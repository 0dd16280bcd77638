//! `photobulk-graph` and `photobulk graph` against the Graph emulator (`tests/graph-emulator`),
//! on 127.0.0.1 only. Time is scaled: the emulator's Retry-After seconds last `SCALE` real
//! seconds each, and the client's sleeper waits the same scaled time while recording the
//! unscaled value it was asked for — so Retry-After is checked against what the client asked
//! for and against the emulator's own log (`early` retries), never against the wall clock.

pub(crate) mod hybrid;

use std::io::Cursor;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use photobulk_graph::{
    upload_all, BulkOptions, CertificateCredential, CloudBackupStore, Credentials, GraphClient,
    GraphConfig, GraphError, Lookup, RestoreFrom, RetryPolicy, Secret, Sleeper, UploadItem,
    UploadJournal, UploadStatus, UserIndex, WriteOptions,
};
use photobulk_graph_emulator::{
    App, Config, Emulator, Faults, UserSpec, TEST_CLIENT_ID, TEST_SECRET, TEST_TENANT,
};

/// Real seconds per emulated second.
const SCALE: f64 = 0.01;

/// Sleeps `d * scale` and records `d`; its clock is the real one moved on by `advanced`.
#[derive(Debug)]
struct ScaledSleeper {
    scale: f64,
    waits: Mutex<Vec<Duration>>,
    advanced: Mutex<Duration>,
}

impl Sleeper for ScaledSleeper {
    fn sleep(
        &self,
        d: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.waits.lock().expect("waits").push(d);
        Box::pin(tokio::time::sleep(d.mul_f64(self.scale)))
    }

    fn now(&self) -> std::time::Instant {
        std::time::Instant::now() + *self.advanced.lock().expect("clock")
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/graph/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn jpeg(w: u32, h: u32, seed: u8) -> Bytes {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8).wrapping_add(seed), y as u8, seed.wrapping_mul(7)])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode");
    Bytes::from(out.into_inner())
}

fn png(w: u32, h: u32) -> Bytes {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([9, 9, 9]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    Bytes::from(out.into_inner())
}

fn secret_creds() -> Credentials {
    Credentials::ClientSecret {
        tenant: TEST_TENANT.into(),
        client_id: TEST_CLIENT_ID.into(),
        secret: Secret::new(TEST_SECRET),
    }
}

fn client_for(emu: &Emulator, creds: Credentials) -> (GraphClient, Arc<ScaledSleeper>) {
    let sleeper = Arc::new(ScaledSleeper {
        scale: SCALE,
        waits: Mutex::new(Vec::new()),
        advanced: Mutex::new(Duration::ZERO),
    });
    let mut cfg = GraphConfig::with_urls(emu.base_url(), emu.graph_url());
    cfg.retry = RetryPolicy {
        sleeper: sleeper.clone(),
        ..RetryPolicy::default()
    };
    cfg.timeout = Duration::from_secs(20);
    (GraphClient::new(cfg, creds).expect("client"), sleeper)
}

async fn start(mut cfg: Config) -> Emulator {
    cfg.time_scale = SCALE;
    Emulator::start(cfg).await.expect("emulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_paged_and_resolved_by_every_name() {
    let mut cfg = Config::with_users(2_100);
    let mut twin = UserSpec::numbered(7);
    twin.id = "00000000-0000-4000-9000-000000000007".into();
    twin.upn = "seed.00007@other.test".into();
    twin.mail = None;
    cfg.users.push(twin);
    let emu = start(cfg).await;
    let (graph, _) = client_for(&emu, secret_creds());

    let users = graph.list_users().await.expect("list");
    assert_eq!(users.len(), 2_101);
    let pages = emu
        .log()
        .iter()
        .filter(|e| e.path == "/v1.0/users" && e.status == 200)
        .count();
    assert_eq!(pages, 3, "999 per page, following @odata.nextLink");

    let by_upn = graph
        .find_user(Lookup::Upn, "SEED.00042@photobulk.test")
        .await
        .expect("upn");
    assert_eq!(by_upn.alias(), "seed.00042");
    let by_id = graph.find_user(Lookup::Id, &by_upn.id).await.expect("id");
    assert_eq!(by_id, by_upn);
    let by_mail = graph
        .find_user(Lookup::Mail, "seed.00042@mail.photobulk.test")
        .await
        .expect("mail");
    assert_eq!(by_mail, by_upn);
    let by_alias = graph
        .find_user(Lookup::Alias, "Seed.00042")
        .await
        .expect("alias");
    assert_eq!(by_alias, by_upn);
    assert_eq!(
        graph
            .find_user(Lookup::Auto, "seed.00042")
            .await
            .expect("auto"),
        by_upn
    );
    assert_eq!(
        graph
            .find_user(Lookup::Auto, "seed.00042@mail.photobulk.test")
            .await
            .expect("auto mail"),
        by_upn
    );
    // An alias in two UPN domains is ambiguous, never a guess.
    match graph.find_user(Lookup::Alias, "seed.00007").await {
        Err(GraphError::Ambiguous { matches, .. }) => assert_eq!(matches.len(), 2),
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert!(matches!(
        graph.find_user(Lookup::Upn, "nobody@photobulk.test").await,
        Err(GraphError::UserNotFound(_))
    ));
    assert!(matches!(
        graph.find_user(Lookup::Alias, "seed.0004").await,
        Err(GraphError::UserNotFound(_))
    ));

    let index = UserIndex::new(users);
    assert_eq!(index.find("SEED.00042").expect("index").id, by_upn.id);
    assert!(matches!(
        index.find("seed.00007"),
        Err(GraphError::Ambiguous { .. })
    ));
    assert_eq!(
        index
            .find("seed.00007@other.test")
            .expect("full UPN")
            .user_principal_name,
        "seed.00007@other.test"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_round_trip_backups_restore_and_read_after_write() {
    let mut cfg = Config::with_users(3);
    // Long enough that nothing becomes readable by waiting: the test publishes the pending
    // photos itself (`publish_pending`) where a reader would have waited.
    cfg.read_after_write = 3600.0;
    let emu = start(cfg).await;
    let (graph, _) = client_for(&emu, secret_creds());
    let tmp = tempfile::tempdir().expect("tmp");
    let store = CloudBackupStore::open(tmp.path()).expect("store");
    let opts = WriteOptions::backup_to(store.clone());
    let user = graph
        .find_user(Lookup::Alias, "seed.00001")
        .await
        .expect("user");

    // No photo: an answer, not an error.
    assert_eq!(graph.photo_meta(&user.id).await.expect("meta"), None);
    assert_eq!(graph.get_photo(&user.id).await.expect("get"), None);

    let first = jpeg(700, 500, 1);
    let out = graph
        .set_photo(&user, first.clone(), &opts)
        .await
        .expect("set");
    let b1 = out.backup.expect("backup");
    assert!(!b1.had_photo);
    // Not readable yet (read-after-write delay), then readable, re-encoded and shrunk.
    assert_eq!(graph.get_photo(&user.id).await.expect("get"), None);
    emu.publish_pending();
    let stored = graph
        .get_photo(&user.id)
        .await
        .expect("get")
        .expect("photo");
    assert_ne!(stored, first.to_vec(), "Graph re-encodes");
    let meta = graph
        .photo_meta(&user.id)
        .await
        .expect("meta")
        .expect("has photo");
    assert_eq!((meta.width, meta.height), (Some(648), Some(463)));
    assert_eq!(meta.content_type.as_deref(), Some("image/jpeg"));

    // Replace: the backup holds what Graph had (its re-encoded copy).
    let out = graph
        .set_photo(&user, jpeg(300, 300, 2), &opts)
        .await
        .expect("replace");
    let b2 = out.backup.expect("backup");
    assert_eq!(store.load(&b2).expect("load"), Some(stored.clone()));

    // Remove, then restore the latest (the removal's backup) and by id the first (no photo).
    emu.publish_pending();
    let out = graph.remove_photo(&user, &opts).await.expect("remove");
    assert_eq!(out.had_photo, Some(true));
    assert_eq!(graph.get_photo(&user.id).await.expect("get"), None);
    let (rec, _) = graph
        .restore_photo(&user, &store, &RestoreFrom::Latest, &opts)
        .await
        .expect("restore");
    assert_eq!(rec.reason, photobulk_graph::BackupReason::Remove);
    assert!(emu.photo(&user.id).is_some());
    graph
        .restore_photo(&user, &store, &RestoreFrom::Id(b1.id.clone()), &opts)
        .await
        .expect("restore none");
    assert_eq!(emu.photo(&user.id), None);
    assert!(!graph.delete_photo(&user.id).await.expect("delete none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_errors_are_typed_and_the_run_goes_on() {
    let mut cfg = Config::with_users(10);
    cfg.users[2].mailbox = false; // seed.00003
    let emu = start(cfg).await;
    let (graph, _) = client_for(&emu, secret_creds());
    let index = UserIndex::new(graph.list_users().await.expect("list"));
    let big = {
        let mut b = jpeg(64, 64, 3).to_vec();
        b.resize(4 * 1024 * 1024 + 1, 0);
        Bytes::from(b)
    };
    let items = vec![
        ("seed.00001", jpeg(96, 96, 1)),
        ("seed.00002", jpeg(23, 23, 1)), // tiny
        ("seed.00003", jpeg(96, 96, 1)), // no mailbox
        ("seed.00004", big),             // > 4 MB: refused before sending
        ("seed.00005", png(96, 96)),     // not a JPEG
        ("nobody", jpeg(96, 96, 1)),     // no such user
        ("seed.00006", jpeg(96, 96, 2)),
        ("seed.00006@photobulk.test", jpeg(96, 96, 3)), // same user twice
        ("seed.00007", jpeg(96, 96, 4)),
    ];
    let items: Vec<UploadItem> = items
        .into_iter()
        .map(|(k, b)| UploadItem {
            key: k.into(),
            jpeg: b,
            source: None,
        })
        .collect();
    let results = upload_all(
        &graph,
        &index,
        items,
        &BulkOptions::new(WriteOptions::no_backup()),
        &|_| {},
    )
    .await;
    let kinds: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.error.as_ref().map_or("ok", |e| e.kind().as_str()),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("seed.00001", "ok"),
            ("seed.00002", "image_rejected"),
            ("seed.00003", "no_mailbox"),
            ("seed.00004", "too_large"),
            ("seed.00005", "not_jpeg"),
            ("nobody", "user_not_found"),
            ("seed.00006", "duplicate"),
            ("seed.00006@photobulk.test", "duplicate"),
            ("seed.00007", "ok"),
        ]
    );
    match &results[1].error {
        Some(GraphError::ImageRejected { code, .. }) => assert_eq!(code, "ValidationWidthTooSmall"),
        other => panic!("{other:?}"),
    }
    let log = emu.log();
    // Refused before sending: no PUT for seed.00004 or seed.00005; 4xx answers are not retried.
    let puts = |id: &str| {
        log.iter()
            .filter(|e| e.method == "PUT" && e.user.as_deref() == Some(id))
            .count()
    };
    let id = |k: &str| index.find(k).expect("user").id.clone();
    assert_eq!(puts(&id("seed.00004")), 0);
    assert_eq!(puts(&id("seed.00005")), 0);
    assert_eq!(puts(&id("seed.00002")), 1);
    assert_eq!(puts(&id("seed.00003")), 1);
    assert_eq!(puts(&id("seed.00006")), 0);
    assert!(emu.photo(&id("seed.00007")).is_some());

    // The emulator's own 413 for a body over 4 MB, sent around the client's check.
    let http = reqwest::Client::new();
    let tok: serde_json::Value = http
        .post(format!("{}/{TEST_TENANT}/oauth2/v2.0/token", emu.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={TEST_CLIENT_ID}&client_secret={TEST_SECRET}&scope=x%2F.default"
        ))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let resp = http
        .put(format!(
            "{}/users/{}/photo/$value",
            emu.graph_url(),
            id("seed.00001")
        ))
        .bearer_auth(tok["access_token"].as_str().expect("access_token"))
        .header("content-type", "image/jpeg")
        .body(vec![0xffu8; 4 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("raw put");
    assert_eq!(resp.status().as_u16(), 413);
    let body: serde_json::Value = resp.json().await.expect("error body");
    assert_eq!(body["error"]["code"], "RequestBodyTooLarge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_obeyed_and_other_4xx_are_not_retried() {
    let mut cfg = Config::with_users(60);
    cfg.faults = Faults {
        p_429_retry_after: 0.25,
        p_503: 0.1,
        p_429_bare: 0.1,
        retry_after: 7,
        ..Faults::default()
    };
    let emu = start(cfg).await;
    let (graph, sleeper) = client_for(&emu, secret_creds());
    let index = UserIndex::new(graph.list_users().await.expect("list"));
    let items = (1..=60)
        .map(|n| UploadItem {
            key: format!("seed.{n:05}"),
            jpeg: jpeg(64, 64, n as u8),
            source: None,
        })
        .collect();
    let results = upload_all(
        &graph,
        &index,
        items,
        &BulkOptions::new(WriteOptions::no_backup()),
        &|_| {},
    )
    .await;
    assert!(results.iter().all(|r| r.status == UploadStatus::Uploaded));
    let log = emu.log();
    let with_ra = log.iter().filter(|e| e.retry_after == Some(7)).count();
    assert!(with_ra >= 10, "only {with_ra} Retry-After answers");
    let waits = sleeper.waits.lock().expect("waits").clone();
    let exact = waits
        .iter()
        .filter(|d| **d == Duration::from_secs(7))
        .count();
    assert_eq!(exact, with_ra, "one 7 s wait per Retry-After: 7");
    // The emulator's own log: no retry came back before its Retry-After had passed.
    assert_eq!(emu.summary().early_retries, 0);
    // Bare 429s got jittered backoff instead (never exactly 7 s, at least base/4).
    let bare = log.iter().filter(|e| e.fault == Some("429-bare")).count();
    assert!(bare > 0);
    assert_eq!(waits.len(), with_ra + bare);
    assert!(waits.iter().all(|d| *d >= Duration::from_millis(250)));
    assert_eq!(graph.stats().retry_after_waits as usize, with_ra);

    // A 400 is final: one request, no retry.
    emu.configure(|c| c.faults = Faults::default());
    let user = index.find("seed.00001").expect("user").clone();
    let before = emu.log().len();
    let err = graph
        .put_photo(&user.id, jpeg(20, 20, 9))
        .await
        .expect_err("tiny");
    assert!(matches!(err, GraphError::ImageRejected { .. }));
    assert!(!err.is_retryable());
    assert_eq!(emu.log().len(), before + 1);

    // The attempt cap: always 503 → GaveUp after max_attempts, keeping the last answer.
    emu.configure(|c| c.faults.p_503 = 1.0);
    match graph.put_photo(&user.id, jpeg(64, 64, 1)).await {
        Err(GraphError::GaveUp { attempts, last }) => {
            assert_eq!(attempts, RetryPolicy::default().max_attempts);
            assert!(matches!(*last, GraphError::Http { status: 503, .. }));
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_uploads_with_five_percent_faults() {
    let mut cfg = Config::with_users(2_000);
    // 429 with/without Retry-After, 503, 504, resets before and after the upload is applied.
    cfg.faults = Faults::mixed(0.05, 2);
    let emu = start(cfg).await;
    let (graph, _) = client_for(&emu, secret_creds());
    let tmp = tempfile::tempdir().expect("tmp");
    let journal = Arc::new(UploadJournal::open(tmp.path().join("journal.jsonl")).expect("journal"));
    let index = UserIndex::new(graph.list_users().await.expect("list"));
    let body = jpeg(96, 96, 5);
    let sha = photobulk_graph::sha256_hex(&body);
    let items = (1..=2_000)
        .map(|n| UploadItem {
            key: format!("seed.{n:05}"),
            jpeg: body.clone(),
            source: Some(format!("seed.{n:05}.jpg")),
        })
        .collect();
    let mut opts = BulkOptions::new(WriteOptions::no_backup());
    opts.journal = Some(journal.clone());
    let results = upload_all(&graph, &index, items, &opts, &|_| {}).await;
    let failed: Vec<_> = results
        .iter()
        .filter(|r| r.status != UploadStatus::Uploaded)
        .map(|r| format!("{}: {:?}", r.key, r.error))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");

    let s = emu.summary();
    assert_eq!(s.users_with_photo, 2_000);
    assert_eq!(
        s.users_uploaded_twice, 0,
        "no upload repeated beyond retries of one request"
    );
    assert_eq!(s.early_retries, 0);
    assert!(s.injected >= 50, "{s:?}");
    let log = emu.log();
    assert!(log.iter().any(|e| e.fault == Some("reset-after-apply")));
    assert!(
        !log.iter().any(|e| e.fault == Some("concurrency")),
        "the client stays within 4 photo requests in flight"
    );
    assert!(log
        .iter()
        .filter(|e| e.applied)
        .all(|e| e.body_sha256.as_deref() == Some(sha.as_str())));
    // The journal matches: one entry per user, with the bytes sent.
    let entries = journal.entries().expect("entries");
    assert_eq!(entries.len(), 2_000);
    assert!(entries.iter().all(|e| e.sha256 == sha));
    let ids: std::collections::HashSet<_> = entries.iter().map(|e| e.user_id.clone()).collect();
    assert_eq!(ids.len(), 2_000);

    // Run again: everything is unchanged according to the journal; nothing is sent.
    let before = emu.log().len();
    let items = (1..=2_000)
        .map(|n| UploadItem {
            key: format!("seed.{n:05}"),
            jpeg: body.clone(),
            source: None,
        })
        .collect();
    let again = upload_all(&graph, &index, items, &opts, &|_| {}).await;
    assert!(again.iter().all(|r| r.status == UploadStatus::Unchanged));
    assert_eq!(emu.log().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_before_expiry_and_after_revocation() {
    let mut cfg = Config::with_users(5);
    cfg.token_lifetime = 600; // seconds of the emulator's clock
    let emu = start(cfg).await;
    let (graph, clock) = client_for(&emu, secret_creds());
    let user = graph
        .find_user(Lookup::Alias, "seed.00001")
        .await
        .expect("user");
    // 40 calls, 60 s apart on both clocks: 2,400 s over 600-second tokens, no real waiting.
    let mut calls = 0;
    while calls < 40 {
        graph
            .put_photo(&user.id, jpeg(64, 64, calls as u8))
            .await
            .expect("put");
        calls += 1;
        *clock.advanced.lock().expect("clock") += Duration::from_secs(60);
        emu.advance_clock(Duration::from_secs(60));
    }
    assert!(graph.stats().token_fetches >= 3, "{:?}", graph.stats());
    assert_eq!(
        emu.summary().unauthorized,
        0,
        "refreshed before expiry, never presented expired"
    );

    // Revoked mid-run: one 401, a new token, the call succeeds. (One call first with the
    // clocks still, so the client holds a token it believes good when it is revoked.)
    graph
        .put_photo(&user.id, jpeg(64, 64, 2))
        .await
        .expect("put");
    emu.revoke_tokens();
    graph
        .put_photo(&user.id, jpeg(64, 64, 1))
        .await
        .expect("after revoke");
    assert_eq!(emu.summary().unauthorized, 1);

    // A caller-provided token cannot be refreshed: a clear error.
    let (stale, _) = client_for(
        &emu,
        Credentials::AccessToken(Secret::new("expired-elsewhere")),
    );
    assert!(matches!(
        stale.get_photo(&user.id).await,
        Err(GraphError::TokenRejected { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credential_and_bad_secrets() {
    let app_pem = fixture("app.pem");
    let der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(&app_pem)
            .expect("der")
            .to_vec()
    };
    let mut cfg = Config::with_users(2);
    cfg.apps.push(App {
        client_id: "cert-app".into(),
        secret: None,
        certificate_der: Some(der),
    });
    let emu = start(cfg).await;
    let cert = |pem: &str, key: &str| Credentials::Certificate {
        tenant: TEST_TENANT.into(),
        client_id: "cert-app".into(),
        certificate: CertificateCredential::from_pem(&fixture(pem), &fixture(key)).expect("cert"),
    };
    let (good, _) = client_for(&emu, cert("app.pem", "app.key"));
    good.sign_in().await.expect("certificate sign-in");
    assert_eq!(good.list_users().await.expect("list").len(), 2);

    let (wrong_key, _) = client_for(&emu, cert("app.pem", "other.key"));
    match wrong_key.sign_in().await {
        Err(GraphError::Auth { code, message, .. }) => {
            assert_eq!(code, "invalid_client");
            assert!(message.contains("AADSTS700027"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let (bad_secret, _) = client_for(
        &emu,
        Credentials::ClientSecret {
            tenant: TEST_TENANT.into(),
            client_id: TEST_CLIENT_ID.into(),
            secret: Secret::new("wrong"),
        },
    );
    match bad_secret.sign_in().await {
        Err(e @ GraphError::Auth { .. }) => {
            assert!(e.to_string().contains("AADSTS7000215"), "{e}");
            assert!(
                !e.to_string().contains("wrong"),
                "the secret is never echoed"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_through_rustls_ring() {
    let mut cfg = Config::with_users(3);
    cfg.tls = Some((fixture("server.pem"), fixture("server.key")));
    let emu = start(cfg).await;
    assert!(emu.base_url().starts_with("https://localhost:"));
    let sleeper = Arc::new(ScaledSleeper {
        scale: SCALE,
        waits: Mutex::new(Vec::new()),
        advanced: Mutex::new(Duration::ZERO),
    });
    let mut gc = GraphConfig::with_urls(emu.base_url(), emu.graph_url());
    gc.ca_file = Some(format!("{}/tests/graph/fixtures/ca.pem", env!("CARGO_MANIFEST_DIR")).into());
    gc.retry.sleeper = sleeper;
    let graph = GraphClient::new(gc, secret_creds()).expect("client");
    assert_eq!(graph.list_users().await.expect("over TLS").len(), 3);
    // The process-wide provider is ring (installed by the client; aws-lc-rs is not built in).
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());

    // Without the test CA the server is not trusted: a network error that is not retried.
    let gc = GraphConfig::with_urls(emu.base_url(), emu.graph_url());
    let untrusted = GraphClient::new(gc, secret_creds()).expect("client");
    match untrusted.sign_in().await {
        Err(e @ GraphError::Transport { .. }) => {
            assert!(!e.is_retryable(), "{e}");
            assert!(e.to_string().contains("certificate"), "{e}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert_eq!(untrusted.stats().requests, 1);
}

// ---------------------------------------------------------------------------------------------
// The CLI: kill mid-run, run again.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_upload_killed_mid_run_resumes_without_reuploading() {
    let n = 300;
    let mut cfg = Config::with_users(n);
    cfg.faults = Faults {
        p_429_retry_after: 0.03,
        retry_after: 1,
        ..Faults::default()
    };
    cfg.time_scale = 0.05;
    // Slow enough to kill mid-run: every photo request takes ~10 ms.
    cfg.faults.p_slow = 1.0;
    cfg.faults.slow = 0.2;
    let emu = Emulator::start(cfg).await.expect("emulator");
    let tmp = tempfile::tempdir().expect("tmp");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    for i in 1..=n {
        std::fs::write(
            photos.join(format!("seed.{i:05} hd.jpg")),
            jpeg(96, 96, (i % 200) as u8),
        )
        .expect("write");
    }
    let journal = tmp.path().join("journal.jsonl");
    let run = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_photobulk"));
        c.args(["graph", "upload", "--raw", "--no-backup"])
            .arg(&photos)
            .arg("--journal")
            .arg(&journal)
            .args([
                "--authority-url",
                &emu.base_url(),
                "--graph-url",
                &emu.graph_url(),
            ])
            .args(["--tenant", TEST_TENANT, "--client-id", TEST_CLIENT_ID])
            .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut child = run().spawn().expect("spawn");
    // Kill once about a third is done (by the emulator's own count).
    let t0 = std::time::Instant::now();
    while emu.summary().uploads_applied < n / 3 {
        assert!(t0.elapsed() < Duration::from_secs(60), "first run too slow");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "finished before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill");
    let _ = child.wait();
    let applied_first: std::collections::HashSet<String> = emu
        .log()
        .iter()
        .filter(|e| e.applied)
        .filter_map(|e| e.user.clone())
        .collect();
    let journaled_first = UploadJournal::open(&journal).expect("journal").len();
    assert!(journaled_first > 0 && journaled_first < n);
    let mark = emu.log().len();

    let out = run().output().expect("second run");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = emu.log();
    let second: Vec<String> = log[mark..]
        .iter()
        .filter(|e| e.applied)
        .filter_map(|e| e.user.clone())
        .collect();
    let again: Vec<&String> = second
        .iter()
        .filter(|u| applied_first.contains(*u))
        .collect();
    // Only uploads in flight at the kill (applied, not yet journaled) may be sent again.
    assert!(
        again.len() <= 4,
        "re-uploaded {} users: {again:?}",
        again.len()
    );
    assert_eq!(emu.summary().users_with_photo, n);
    assert_eq!(UploadJournal::open(&journal).expect("journal").len(), n);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{journaled_first} unchanged")),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cloud matching: alias (mailNickname), then UPN prefix, then mail prefix (issue 19).

/// The CLI upload of a folder to `emu`, with backups and journal under `state`.
fn cli_upload(emu: &Emulator, state: &std::path::Path, photos: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_photobulk"));
    c.args(["graph", "upload", "--raw", "--json"])
        .arg(photos)
        .arg("--backup-dir")
        .arg(state.join("graph-backups"))
        .args(graph_conn_args(emu))
        .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
        .env("PHOTOBULK_STATE_DIR", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn graph_conn_args(emu: &Emulator) -> Vec<String> {
    vec![
        "--authority-url".into(),
        emu.base_url(),
        "--graph-url".into(),
        emu.graph_url(),
        "--tenant".into(),
        TEST_TENANT.into(),
        "--client-id".into(),
        TEST_CLIENT_ID.into(),
    ]
}

fn alias_tenant() -> Config {
    let mut cfg = Config::with_users(3);
    let mut anna = UserSpec::numbered(101);
    anna.upn = "anna.berg@photobulk.test".into();
    anna.mail = Some("anna.berg@photobulk.test".into());
    anna.mail_nickname = Some("aberg".into());
    cfg.users.push(anna);
    for (n, upn) in [(102, "p.one@photobulk.test"), (103, "p.two@photobulk.test")] {
        let mut u = UserSpec::numbered(n);
        u.upn = upn.into();
        u.mail = None;
        u.mail_nickname = Some("shared".into());
        cfg.users.push(u);
    }
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_users_are_matched_by_alias_then_upn_prefix_and_shared_aliases_are_refused() {
    let emu = start(alias_tenant()).await;
    let (graph, _) = client_for(&emu, secret_creds());
    let anna = graph
        .find_user(Lookup::Auto, "aberg")
        .await
        .expect("alias lookup");
    assert_eq!(anna.user_principal_name, "anna.berg@photobulk.test");
    assert_eq!(
        graph
            .find_user(Lookup::Alias, "anna.berg")
            .await
            .expect("UPN prefix")
            .id,
        anna.id
    );
    match graph.find_user(Lookup::Alias, "shared").await {
        Err(GraphError::Ambiguous { matches, .. }) => {
            assert_eq!(matches.len(), 2, "{matches:?}");
            assert!(
                matches.iter().any(|m| m.starts_with("p.one@")),
                "{matches:?}"
            );
            assert!(
                matches.iter().any(|m| m.starts_with("p.two@")),
                "{matches:?}"
            );
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }

    let tmp = tempfile::tempdir().expect("tmp");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    std::fs::write(photos.join("aberg portrait.jpg"), jpeg(96, 96, 1)).expect("w");
    std::fs::write(photos.join("shared team.jpg"), jpeg(96, 96, 2)).expect("w");
    std::fs::write(photos.join("seed.00002 hd.jpg"), jpeg(96, 96, 3)).expect("w");
    let out = cli_upload(&emu, tmp.path(), &photos)
        .output()
        .expect("upload");
    assert_eq!(out.status.code(), Some(1), "the ambiguous file fails");
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let by_user = |k: &str| {
        items
            .iter()
            .find(|i| i["user"] == k)
            .unwrap_or_else(|| panic!("no item {k}: {items:?}"))
            .clone()
    };
    let a = by_user("aberg");
    assert_eq!(a["status"], "uploaded", "{a}");
    assert_eq!(a["upn"], "anna.berg@photobulk.test");
    let s = by_user("seed.00002");
    assert_eq!(s["status"], "uploaded", "{s}");
    let sh = by_user("shared");
    assert_eq!(sh["error"]["kind"], "ambiguous", "{sh}");
    let msg = sh["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("p.one@photobulk.test") && msg.contains("p.two@photobulk.test"),
        "{msg}"
    );
    assert!(emu.photo(&anna.id).is_some());
    for n in [102usize, 103] {
        let id = UserSpec::numbered(n).id;
        assert!(
            emu.photo(&id).is_none(),
            "nothing uploaded for a shared alias"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Undo means undo (issue 19): kill -9 after Graph stored photos but before they were journaled,
// resume, restore the run: everyone back to the state before the run.

/// Every file and folder under `dir` with its size and SHA-256 (a `find` listing with contents).
fn listing(dir: &std::path::Path) -> Vec<(String, u64, String)> {
    fn walk(base: &std::path::Path, d: &std::path::Path, out: &mut Vec<(String, u64, String)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
            if p.is_dir() {
                out.push((rel + "/", 0, String::new()));
                walk(base, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.push((rel, bytes.len() as u64, photobulk_graph::sha256_hex(&bytes)));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn body_sha_of_last_put(emu: &Emulator, user_id: &str) -> Option<String> {
    emu.log()
        .iter()
        .rev()
        .find(|e| e.method == "PUT" && e.applied && e.user.as_deref() == Some(user_id))
        .and_then(|e| e.body_sha256.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_reply_window_resumed_and_restored_leaves_everyone_as_before() {
    let n = 8;
    let emu = start(Config::with_users(n)).await;
    let ids: Vec<String> = (1..=n).map(|i| UserSpec::numbered(i).id).collect();
    // Users 1-4 have a photo before the run (stored as is); 5-8 have none.
    let mut before: Vec<Option<Vec<u8>>> = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        if k < 4 {
            let orig = jpeg(120, 120, 100 + k as u8).to_vec();
            emu.seed_photo(id, &orig, 120, 120);
            before.push(Some(orig));
        } else {
            before.push(None);
        }
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    for i in 1..=n {
        std::fs::write(
            photos.join(format!("seed.{i:05} new.jpg")),
            jpeg(96, 96, i as u8),
        )
        .expect("write");
    }

    // A plan writes nothing, not even the state folder.
    let plan = cli_upload(&emu, &state, &photos)
        .arg("--plan")
        .output()
        .expect("plan");
    let planned: Vec<serde_json::Value> = serde_json::from_slice(&plan.stdout).expect("plan json");
    assert_eq!(planned.len(), n, "{planned:?}");
    assert_eq!(
        planned.iter().filter(|p| p["status"] == "replace").count(),
        4
    );
    assert_eq!(planned.iter().filter(|p| p["status"] == "set").count(), 4);
    assert!(!state.exists(), "--plan created {:?}", listing(&state));

    // Every answer to an upload waits 20 s after the photo was stored: kill -9 in that window.
    emu.configure(|c| c.delay_after_store = 2_000.0);
    let mut child = cli_upload(&emu, &state, &photos)
        .args(["--concurrency", "4"])
        .spawn()
        .expect("spawn");
    let changed = |emu: &Emulator| {
        ids.iter()
            .zip(&before)
            .filter(|(id, b)| emu.photo(id) != **b)
            .count()
    };
    let t0 = std::time::Instant::now();
    while changed(&emu) < 4 {
        assert!(t0.elapsed() < Duration::from_secs(60), "uploads too slow");
        assert!(child.try_wait().expect("wait").is_none(), "finished early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let in_window = changed(&emu);
    assert!(in_window >= 4, "{in_window}");
    let journal_path = state.join("graph-backups/upload-journal.jsonl");
    let j = UploadJournal::open(&journal_path).expect("journal");
    assert_eq!(
        j.len(),
        0,
        "killed before any reply: nothing journaled as done"
    );
    let runs = j.runs();
    assert_eq!(runs.len(), 1);
    let run = runs[0].run.clone();
    assert_eq!(runs[0].state, "interrupted");
    drop(j);

    // Resume: same command, same run; nobody backed up twice.
    emu.configure(|c| c.delay_after_store = 0.0);
    let out = cli_upload(&emu, &state, &photos).output().expect("resume");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(items.iter().all(|i| i["run"] == run.as_str()), "{items:?}");
    assert!(items.iter().all(|i| i["status"] == "uploaded"), "{items:?}");
    let store = CloudBackupStore::open(state.join("graph-backups")).expect("store");
    let records = store.records().expect("records");
    for id in &ids {
        let mine: Vec<_> = records.iter().filter(|r| &r.who.user_id == id).collect();
        assert_eq!(mine.len(), 1, "one pre-run backup of {id}: {mine:?}");
    }
    let j = UploadJournal::open(&journal_path).expect("journal");
    let info = &j.runs()[0];
    assert_eq!((info.attempts, info.state, info.users), (2, "complete", n));
    drop(j);
    let runs_out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args(["runs", "--graph-backup-dir"])
        .arg(state.join("graph-backups"))
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&runs_out.stdout);
    assert!(
        listed.contains(&run) && listed.contains("complete, resumed"),
        "{listed}"
    );

    // One user, "before run RUN": the pre-run backup, not the latest.
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args([
            "graph",
            "photo",
            "restore",
            "seed.00001",
            "--run",
            &run,
            "--json",
        ])
        .arg("--backup-dir")
        .arg(state.join("graph-backups"))
        .args(graph_conn_args(&emu))
        .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
        .output()
        .expect("photo restore --run");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        body_sha_of_last_put(&emu, &ids[0]).as_deref(),
        Some(photobulk_graph::sha256_hex(before[0].as_deref().expect("had one")).as_str()),
        "seed.00001 got its pre-run photo back"
    );

    // Undo the run: one restore.
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args(["graph", "restore", "--run", &run, "--json", "--backup-dir"])
        .arg(state.join("graph-backups"))
        .args(graph_conn_args(&emu))
        .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
        .output()
        .expect("restore");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (id, b) in ids.iter().zip(&before) {
        match b {
            // Graph re-encodes whatever it is sent; what we sent back is the original.
            Some(orig) => assert_eq!(
                body_sha_of_last_put(&emu, id).as_deref(),
                Some(photobulk_graph::sha256_hex(orig).as_str()),
                "{id} got its pre-run photo back"
            ),
            None => assert!(emu.photo(id).is_none(), "{id} had no photo before the run"),
        }
    }

    // A plan after all this changes nothing in state, backups or journal.
    let snapshot = listing(&state);
    let plan = cli_upload(&emu, &state, &photos)
        .arg("--plan")
        .output()
        .expect("plan");
    assert!(!plan.stdout.is_empty());
    assert_eq!(listing(&state), snapshot, "--plan changed the state folder");
}

// ---------------------------------------------------------------------------------------------
// Frictions of issue 19.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_broken_files_carry_their_file_and_control_characters_are_escaped() {
    let emu = start(Config::with_users(3)).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    std::fs::write(photos.join("seed.00001 empty.jpg"), b"").expect("w");
    std::fs::write(photos.join("seed.00002 text.jpg"), b"not a photo").expect("w");
    // ESC and a newline in a file name (Linux allows both; NUL it does not).
    let hostile = "seed.00003 \u{1b}[2Jwiped\nforged line.jpg";
    std::fs::write(photos.join(hostile), b"").expect("w");

    // Without --raw: converted, so the imaging errors are what is reported.
    let json_upload = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_photobulk"));
        c.args(["graph", "upload", "--json"])
            .arg(&photos)
            .arg("--backup-dir")
            .arg(state.join("graph-backups"))
            .args(graph_conn_args(&emu))
            .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET);
        c
    };
    let out = json_upload().output().expect("upload");
    assert_eq!(out.status.code(), Some(1));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(items.len(), 3, "{items:?}");
    for i in &items {
        assert!(i["file"].is_string(), "every failure names its file: {i}");
        assert_eq!(i["ok"], false, "{i}");
    }
    let by = |u: &str| items.iter().find(|i| i["user"] == u).expect(u).clone();
    let empty = by("seed.00001");
    assert_eq!(empty["error"]["kind"], "image", "{empty}");
    assert!(
        empty["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("empty"),
        "{empty}"
    );
    assert_eq!(by("seed.00002")["error"]["kind"], "image");

    // Plain output (plan table and stderr) never carries a raw control character.
    let plan = json_upload();
    let plan = Command::new(plan.get_program())
        .args(plan.get_args().filter(|a| *a != "--json"))
        .arg("--plan")
        .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
        .output()
        .expect("plan");
    let run = json_upload();
    let run = Command::new(run.get_program())
        .args(run.get_args().filter(|a| *a != "--json"))
        .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
        .output()
        .expect("run");
    for (what, bytes) in [
        ("plan stdout", &plan.stdout),
        ("plan stderr", &plan.stderr),
        ("run stdout", &run.stdout),
        ("run stderr", &run.stderr),
    ] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\0') && !text.contains("\nforged"),
            "{what} carries a raw control character: {text:?}"
        );
    }
    let table = String::from_utf8_lossy(&plan.stdout);
    assert!(table.contains("\\e[2Jwiped\\nforged line.jpg"), "{table}");
}

#[test]
fn plaintext_refusal_names_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args([
            "ad",
            "whoami",
            "--server",
            "ldap://127.0.0.1:9",
            "--bind",
            "admin@photobulk.test",
        ])
        .env("PHOTOBULK_LDAP_PASSWORD", "x")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--allow-plaintext-bind"), "{err}");
}
