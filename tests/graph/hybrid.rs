//! Both sides at once: `sync-hd-to-ad` (cloud HD photo → AD thumbnailPhoto) and environment
//! detection, against the Graph emulator and the real Samba AD DC from `PB_SAMBA_*`
//! (`scripts/samba-dc`; these tests FAIL, not skip, without it).
//!
//! Users: each test seeds its own OU (`scripts/samba-dc seed N --ou NAME`), so they are
//! disjoint from tests/ad and tests/import and from each other: OU=SyncHd (library run),
//! OU=SyncCli (the CLI). Their photos are removed first, so a re-run of the suite against the
//! same Samba starts from the same state. "Nothing was written" is checked through the backup
//! folder: every write is preceded by a durable backup record, so an unchanged record count
//! means no write was sent.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use photobulk_directory::{
    BackupStore, Credentials as LdapCredentials, Directory, ListOptions, Password, WriteOptions,
};
use photobulk_engine::environment::{detect, Environment};
use photobulk_engine::sync_hd::{
    sync_hd_to_ad, SyncHdOptions, SyncJournal, SyncReport, SyncScope, SyncStatus,
};
use photobulk_graph::{GraphClient, GraphConfig};
use photobulk_graph_emulator::{
    Config, Emulator, UserSpec, TEST_CLIENT_ID, TEST_SECRET, TEST_TENANT,
};

use super::{jpeg, listing, secret_creds};
use crate::util::Samba;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

impl Samba {
    /// The DNS domain of the base (`DC=photobulk,DC=test` → `photobulk.test`): the UPN suffix of
    /// seeded users.
    pub(crate) fn domain(&self) -> String {
        self.base
            .split(',')
            .filter_map(|p| p.trim().strip_prefix("DC="))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Seed `n` users into OU=`ou` (prefix = the OU name in lower case) and remove their photos.
    pub(crate) async fn fresh_ou(&self, ou: &str, n: usize) -> Directory {
        let out = Command::new(Path::new(ROOT).join("scripts/samba-dc"))
            .args(["seed", &n.to_string(), "--ou", ou, "--dir", &self.dir])
            .output()
            .expect("run scripts/samba-dc");
        assert!(
            out.status.success(),
            "seeding OU={ou}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = self.connect().await;
        for u in self.users(&dir, ou).await {
            if u.photo.is_some() {
                dir.remove_photo(&u.dn, &WriteOptions::without_backup())
                    .await
                    .expect("clear photo");
            }
        }
        dir
    }

    async fn users(&self, dir: &Directory, ou: &str) -> Vec<photobulk_directory::User> {
        dir.list_users(&ListOptions {
            base: Some(format!("OU={ou},{}", self.base)),
            only_with_photo: false,
            fetch_photo: true,
        })
        .await
        .expect("list users")
    }
}

/// A cloud user for seeded AD user `prefix.NNNNN`.
pub(crate) fn cloud_user(prefix: &str, i: usize, domain: &str, mailbox: bool) -> UserSpec {
    UserSpec {
        id: format!("00000000-0000-4000-a000-{i:012}"),
        upn: format!("{prefix}.{i:05}@{domain}"),
        mail: Some(format!("{prefix}.{i:05}@{domain}")),
        display_name: format!("{prefix} {i}"),
        mailbox,
        mail_nickname: None,
    }
}

fn graph_client(emu: &Emulator) -> GraphClient {
    let mut cfg = GraphConfig::with_urls(emu.base_url(), emu.graph_url());
    cfg.timeout = Duration::from_secs(20);
    GraphClient::new(cfg, secret_creds()).expect("client")
}

fn counts(r: &SyncReport) -> [usize; 7] {
    let s = &r.summary;
    [
        s.written,
        s.would_write,
        s.unchanged,
        s.no_cloud_photo,
        s.no_mailbox,
        s.not_in_cloud,
        s.failed,
    ]
}

/// A JPEG-looking body no decoder accepts.
fn corrupt_jpeg() -> Vec<u8> {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
    b.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_hd_to_ad_writes_cloud_photos_skips_the_rest_and_a_rerun_writes_nothing() {
    let samba = Samba::from_env();
    let domain = samba.domain();
    let dir = samba.fresh_ou("SyncHd", 12).await;
    // 1-6 and 12: cloud photos; 7: a corrupt cloud photo; 8, 9: no photo; 10: no mailbox;
    // 11: not in the tenant.
    let mut cfg = Config::with_users(0);
    cfg.users = (1..=12)
        .filter(|&i| i != 11)
        .map(|i| cloud_user("synchd", i, &domain, i != 10))
        .collect();
    let emu = Emulator::start(cfg).await.expect("emulator");
    for i in (1..=6).chain([12]) {
        let id = cloud_user("synchd", i, &domain, true).id;
        emu.seed_photo(&id, &jpeg(648, 648, i as u8), 648, 648);
    }
    emu.seed_photo(
        &cloud_user("synchd", 7, &domain, true).id,
        &corrupt_jpeg(),
        648,
        648,
    );
    let graph = graph_client(&emu);
    let tmp = tempfile::tempdir().expect("tmp");
    let backups = BackupStore::open(tmp.path().join("backups")).expect("backups");
    let journal = Arc::new(SyncJournal::open(tmp.path().join("sync-hd.jsonl")).expect("journal"));
    let scope = SyncScope::Under {
        base: Some(format!("OU=SyncHd,{}", samba.base)),
    };
    let mut opts = SyncHdOptions::new(WriteOptions::backup_to(backups.clone()));
    opts.journal = Some(journal.clone());
    let seen = Mutex::new(0usize);
    let progress = |_: &photobulk_engine::sync_hd::SyncItem| {
        *seen.lock().expect("seen") += 1;
    };

    let first = sync_hd_to_ad(&dir, &graph, &scope, &opts, &progress)
        .await
        .expect("first run");
    assert_eq!(*seen.lock().expect("seen"), 12);
    assert_eq!(first.summary.total, 12, "{first:#?}");
    assert_eq!(counts(&first), [7, 0, 0, 2, 1, 1, 1], "{first:#?}");
    let by_id = |r: &SyncReport, i: usize| {
        r.items
            .iter()
            .find(|it| it.identity.eq_ignore_ascii_case(&format!("synchd.{i:05}")))
            .cloned()
            .unwrap_or_else(|| panic!("no item for synchd.{i:05}"))
    };
    let bad = by_id(&first, 7);
    assert_eq!(bad.status, SyncStatus::Failed);
    assert_eq!(bad.error.as_ref().map(|e| e.kind.as_str()), Some("image"));
    assert_eq!(by_id(&first, 8).status, SyncStatus::NoCloudPhoto);
    assert_eq!(by_id(&first, 10).status, SyncStatus::NoMailbox);
    assert_eq!(by_id(&first, 11).status, SyncStatus::NotInCloud);

    // AD now holds 96x96 JPEGs <= 10,240 bytes for exactly the users with a readable cloud photo.
    for u in samba.users(&dir, "SyncHd").await {
        let n: usize = u
            .sam_account_name
            .as_deref()
            .and_then(|s| s.rsplit('.').next())
            .and_then(|s| s.parse().ok())
            .expect("seed number");
        match (&u.photo, (1..=6).contains(&n) || n == 12) {
            (Some(p), true) => {
                assert!(p.len() <= 10_240, "{n}: {} bytes", p.len());
                let img = image::load_from_memory_with_format(p, image::ImageFormat::Jpeg)
                    .expect("a JPEG in AD");
                assert_eq!((img.width(), img.height()), (96, 96));
                let item = by_id(&first, n);
                assert_eq!(item.status, SyncStatus::Written);
                assert_eq!(
                    item.written_sha256.as_deref(),
                    Some(photobulk_graph::sha256_hex(p).as_str())
                );
                let cloud = emu
                    .photo(&cloud_user("synchd", n, &domain, true).id)
                    .expect("cloud");
                assert_eq!(
                    item.source_sha256.as_deref(),
                    Some(photobulk_graph::sha256_hex(&cloud).as_str())
                );
            }
            (None, false) => {}
            (p, _) => panic!("synchd.{n:05}: photo {:?}", p.as_ref().map(Vec::len)),
        }
    }
    // Every write was backed up first (the users had no photo), and journaled.
    let recs = backups.records().expect("backups");
    assert_eq!(recs.len(), 7);
    assert!(recs.iter().all(|r| !r.had_photo));
    assert_eq!(journal.records().expect("journal").len(), 7);

    // Same cloud photos: nothing converted or written.
    let again = sync_hd_to_ad(&dir, &graph, &scope, &opts, &progress)
        .await
        .expect("second run");
    assert_eq!(counts(&again), [0, 0, 7, 2, 1, 1, 1], "{again:#?}");
    assert_eq!(backups.records().expect("backups").len(), 7);
    assert_eq!(journal.records().expect("journal").len(), 7);

    // Without the journal, the same answer by converting again and comparing bytes.
    let mut no_journal = opts.clone();
    no_journal.journal = None;
    let third = sync_hd_to_ad(&dir, &graph, &scope, &no_journal, &progress)
        .await
        .expect("third run");
    assert_eq!(counts(&third), [0, 0, 7, 2, 1, 1, 1], "{third:#?}");
    assert_eq!(backups.records().expect("backups").len(), 7);

    // A new cloud photo for one user: that user only, backed up first (had a photo now).
    emu.seed_photo(
        &cloud_user("synchd", 3, &domain, true).id,
        &jpeg(648, 648, 200),
        648,
        648,
    );
    let mut dry = opts.clone();
    dry.dry_run = true;
    let planned = sync_hd_to_ad(&dir, &graph, &scope, &dry, &progress)
        .await
        .expect("dry run");
    assert_eq!(counts(&planned), [0, 1, 6, 2, 1, 1, 1], "{planned:#?}");
    assert_eq!(backups.records().expect("backups").len(), 7);
    let fourth = sync_hd_to_ad(&dir, &graph, &scope, &opts, &progress)
        .await
        .expect("fourth run");
    assert_eq!(counts(&fourth), [1, 0, 6, 2, 1, 1, 1], "{fourth:#?}");
    assert_eq!(by_id(&fourth, 3).status, SyncStatus::Written);
    let recs = backups.records().expect("backups");
    assert_eq!(recs.len(), 8);
    assert!(recs[7].had_photo);

    // A list of identities instead of a base; one unknown identity is an item error.
    let scope = SyncScope::Identities {
        by: photobulk_directory::Lookup::SamAccountName,
        values: vec!["synchd.00001".into(), "synchd.99999".into()],
    };
    let listed = sync_hd_to_ad(&dir, &graph, &scope, &opts, &progress)
        .await
        .expect("identities");
    assert_eq!(counts(&listed), [0, 0, 1, 0, 0, 0, 1], "{listed:#?}");
    assert_eq!(listed.items[1].identity, "synchd.99999");
    // The directory's own kind (typed, issue 18), no longer a generic "directory".
    assert_eq!(
        listed.items[1].error.as_ref().map(|e| e.kind.as_str()),
        Some("user_not_found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sync_hd_to_ad_takes_secrets_from_the_environment_and_reruns_unchanged() {
    let samba = Samba::from_env();
    let domain = samba.domain();
    let dir = samba.fresh_ou("SyncCli", 3).await;
    let mut cfg = Config::with_users(0);
    cfg.users = (1..=3)
        .map(|i| cloud_user("synccli", i, &domain, true))
        .collect();
    let emu = Emulator::start(cfg).await.expect("emulator");
    for i in 1..=2 {
        let id = cloud_user("synccli", i, &domain, true).id;
        emu.seed_photo(&id, &jpeg(648, 648, 40 + i as u8), 648, 648);
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
            .arg("sync-hd-to-ad")
            .args(["--server", &samba.url, "--ca-file", &samba.ca])
            .args(["--bind", &samba.bind])
            .args(["--base", &format!("OU=SyncCli,{}", samba.base)])
            .arg("--backup-dir")
            .arg(tmp.path().join("backups"))
            .args([
                "--authority-url",
                &emu.base_url(),
                "--graph-url",
                &emu.graph_url(),
            ])
            .args(["--tenant", TEST_TENANT, "--client-id", TEST_CLIENT_ID])
            .arg("--json")
            .args(extra)
            .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
            .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
            .output()
            .expect("run photobulk");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), report)
    };
    // --dry-run before anything was written: says who would be written, creates nothing.
    let (code, r) = run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["summary"]["would_write"], 2, "{r:#}");
    assert_eq!(r["summary"]["written"], 0, "{r:#}");
    assert!(
        !tmp.path().join("backups").exists(),
        "--dry-run created {:?}",
        listing(tmp.path())
    );
    let (code, r) = run(&[]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["summary"]["written"], 2, "{r:#}");
    assert_eq!(r["summary"]["no_cloud_photo"], 1, "{r:#}");
    assert!(tmp.path().join("backups/sync-hd.jsonl").exists());
    let (code, r) = run(&[]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["summary"]["unchanged"], 2, "{r:#}");
    assert_eq!(r["summary"]["written"], 0, "{r:#}");
    // A new cloud photo for user 3, then --dry-run with a journal and backups in place: the
    // folder (journal, backups, index) is identical afterwards, byte for byte.
    emu.seed_photo(
        &cloud_user("synccli", 3, &domain, true).id,
        &jpeg(648, 648, 90),
        648,
        648,
    );
    let before = listing(tmp.path());
    let (code, r) = run(&["--dry-run"]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["summary"]["would_write"], 1, "{r:#}");
    assert_eq!(r["summary"]["unchanged"], 2, "{r:#}");
    assert_eq!(
        listing(tmp.path()),
        before,
        "--dry-run changed the state folder"
    );
    let written = samba
        .users(&dir, "SyncCli")
        .await
        .into_iter()
        .filter(|u| u.photo.is_some())
        .count();
    assert_eq!(written, 2);
    assert_eq!(
        BackupStore::open(tmp.path().join("backups"))
            .expect("backups")
            .records()
            .expect("records")
            .len(),
        2
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_on_premises_cloud_hybrid_or_none() {
    let samba = Samba::from_env();
    let emu = Emulator::start(Config::with_users(3))
        .await
        .expect("emulator");
    let graph = graph_client(&emu);
    let dead = closed_port();
    let mut dead_graph_cfg = GraphConfig::with_urls(
        format!("http://127.0.0.1:{dead}"),
        format!("http://127.0.0.1:{dead}/v1.0"),
    );
    dead_graph_cfg.retry.max_attempts = 2;
    let dead_graph = GraphClient::new(dead_graph_cfg, secret_creds()).expect("client");
    let ad = samba.settings();
    let mut dead_ad = samba.settings();
    dead_ad.connect.url = format!("ldaps://127.0.0.1:{dead}");
    let limit = Duration::from_secs(5);

    let r = detect(Some(&ad), Some(&graph), limit).await;
    assert_eq!(r.environment, Environment::Hybrid, "{r:#?}");
    assert!(
        r.on_premises.detail.starts_with("LDAP bind ok to ldaps://"),
        "{r:#?}"
    );
    assert_eq!(r.on_premises.server_kind.as_deref(), Some("samba"));
    assert_eq!(
        r.on_premises.naming_context.as_deref(),
        Some(samba.base.as_str())
    );
    assert_eq!(r.cloud.detail, "Graph token ok, tenant has 3 users");
    assert_eq!(r.cloud.users, Some(3));

    let r = detect(Some(&ad), Some(&dead_graph), limit).await;
    assert_eq!(r.environment, Environment::OnPremises, "{r:#?}");
    assert!(r.cloud.configured && !r.cloud.ok);
    assert!(r.cloud.detail.starts_with("Graph: "), "{r:#?}");

    let r = detect(Some(&dead_ad), Some(&graph), limit).await;
    assert_eq!(r.environment, Environment::Cloud, "{r:#?}");
    assert!(
        r.on_premises.detail.contains(&format!("127.0.0.1:{dead}")),
        "{r:#?}"
    );

    let r = detect(Some(&dead_ad), Some(&dead_graph), limit).await;
    assert_eq!(r.environment, Environment::None, "{r:#?}");
    assert!(!r.on_premises.ok && !r.cloud.ok);

    // A wrong password is a reason, not a crash.
    let mut wrong = samba.settings();
    wrong.credentials = LdapCredentials::Simple {
        bind: samba.bind.clone(),
        password: Password::new("not-the-password"),
    };
    let r = detect(Some(&wrong), None, limit).await;
    assert_eq!(r.environment, Environment::None, "{r:#?}");
    assert!(r.on_premises.detail.starts_with("LDAP: "), "{r:#?}");
    assert_eq!(r.cloud.detail, "Graph: not configured");

    // The CLI says the same, as JSON.
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .arg("env")
        .args(["--server", &samba.url, "--ca-file", &samba.ca])
        .args(["--bind", &samba.bind])
        .args([
            "--authority-url",
            &emu.base_url(),
            "--graph-url",
            &emu.graph_url(),
        ])
        .args(["--tenant", TEST_TENANT, "--client-id", TEST_CLIENT_ID])
        .arg("--json")
        .env("PHOTOBULK_LDAP_PASSWORD", &samba.password)
        .env("PHOTOBULK_GRAPH_CLIENT_SECRET", TEST_SECRET)
        .output()
        .expect("run photobulk env");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(v["environment"], "hybrid", "{v:#}");
    assert_eq!(v["cloud"]["users"], 3, "{v:#}");
}
