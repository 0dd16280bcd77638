//! `photobulk-directory` and `photobulk ad` against real directory servers on loopback: a Samba
//! AD DC (`scripts/samba-dc`) and the AD-like OpenLDAP profile with the 1000-entry limit
//! (`scripts/slapd-ad`). Settings come from the `PB_SAMBA_*` / `PB_SLAPD_*` variables those
//! scripts print; without them these tests FAIL (they are not skipped) and say how to start the
//! servers. Both must be seeded with at least 2,500 users (`scripts/samba-dc seed 2500`).
//!
//! Each test that writes photos uses its own users, so the tests run in parallel:
//! john.smith (library round trip, both servers), jane.doe (CLI round trip), seed.02001–02300
//! (connection cut), seed.02301–02310 (server freeze), seed.02401–02405 (bulk mix),
//! seed.02490 (CLI conversion), seed.02499 (rights: never actually written).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use photobulk_directory::{
    BackupStore, ConnectOptions, Credentials, Directory, DirectoryError, ListOptions, Lookup,
    LookupBatcher, Password, PhotoItem, RestoreFrom, ServerKind, User, WriteOptions,
};

// ---------------------------------------------------------------------------------------------
// Servers

#[derive(Debug, Clone)]
struct Server {
    name: &'static str,
    url: String,
    starttls_url: String,
    base: String,
    bind: String,
    password: String,
    ca: String,
    limited_bind: String,
    limited_password: String,
}

fn env_server(prefix: &str, name: &'static str, script: &str) -> Server {
    let get = |k: &str| {
        let var = format!("{prefix}_{k}");
        std::env::var(&var).unwrap_or_else(|_| {
            panic!(
                "{var} is not set: these tests need a real {name} server. Run \
                 `eval \"$(scripts/{script} start)\" && scripts/{script} seed 2500` (or scripts/test, \
                 which starts both servers), then run the tests in that shell"
            )
        })
    };
    Server {
        name,
        url: get("URL"),
        starttls_url: get("STARTTLS_URL"),
        base: get("BASE"),
        bind: get("BIND"),
        password: get("PASSWORD"),
        ca: get("CA"),
        limited_bind: get("LIMITED_BIND"),
        limited_password: get("LIMITED_PASSWORD"),
    }
}

fn samba() -> Server {
    env_server("PB_SAMBA", "Samba AD DC", "samba-dc")
}

fn slapd() -> Server {
    env_server("PB_SLAPD", "OpenLDAP (AD-like profile)", "slapd-ad")
}

impl Server {
    fn opts(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.url.clone());
        o.ca_file = Some(self.ca.clone().into());
        o.timeout = Duration::from_secs(30);
        o
    }
    fn creds(&self) -> Credentials {
        Credentials::Simple {
            bind: self.bind.clone(),
            password: Password::new(self.password.clone()),
        }
    }
    async fn connect(&self) -> Directory {
        Directory::connect(&self.opts(), &self.creds())
            .await
            .unwrap_or_else(|e| panic!("connecting to {} at {}: {e}", self.name, self.url))
    }
    /// `photobulk.test` from `DC=photobulk,DC=test`.
    fn domain(&self) -> String {
        self.base
            .split(',')
            .filter_map(|p| p.trim().split_once('=').map(|(_, v)| v))
            .collect::<Vec<_>>()
            .join(".")
    }
    /// host:port of the LDAPS URL.
    fn ldaps_addr(&self) -> SocketAddr {
        let hostport = self
            .url
            .split("://")
            .nth(1)
            .expect("url")
            .trim_end_matches('/');
        hostport
            .parse()
            .unwrap_or_else(|_| format!("{hostport}:636").parse().expect("host:port"))
    }
}

async fn dn_of(dir: &Directory, sam: &str) -> String {
    dir.find_user(&Lookup::SamAccountName, sam, false)
        .await
        .unwrap_or_else(|e| panic!("finding {sam}: {e}"))
        .dn
}

/// Deterministic JPEG-looking bytes (SOI, APP0, noise, EOI) of exactly `len` bytes.
fn photo(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = vec![0xff, 0xd8, 0xff, 0xe0];
    while v.len() < len - 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 24) as u8);
    }
    v.extend_from_slice(&[0xff, 0xd9]);
    v.truncate(len);
    v
}

// ---------------------------------------------------------------------------------------------
// A tiny TCP proxy on loopback that tests can cut or freeze mid-run.

struct Proxy {
    addr: SocketAddr,
    /// Bytes forwarded client → server.
    up: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    freeze: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listen on the server's own IP (its certificate names that IP) and forward to `target`.
    /// With `cut_after_up`, every connection is cut once that many bytes went up.
    fn start(target: SocketAddr, cut_after_up: Option<u64>) -> Proxy {
        let listener = TcpListener::bind(SocketAddr::new(target.ip(), 0)).expect("proxy bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let p = Proxy {
            addr,
            up: Arc::new(AtomicU64::new(0)),
            cut: Arc::new(AtomicBool::new(false)),
            freeze: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        let (up, cut, freeze, stop, conns) = (
            p.up.clone(),
            p.cut.clone(),
            p.freeze.clone(),
            p.stop.clone(),
            p.conns.clone(),
        );
        thread::spawn(move || {
            // Bounded: the accept loop ends when the proxy is dropped, or after 5 minutes.
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                if cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                {
                    let mut c = conns.lock().expect("conns");
                    c.push(client.try_clone().expect("clone"));
                    c.push(server.try_clone().expect("clone"));
                }
                let pump =
                    |mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>| {
                        let (cut, freeze, conns) = (cut.clone(), freeze.clone(), conns.clone());
                        thread::spawn(move || {
                            let mut buf = vec![0u8; 16 * 1024];
                            loop {
                                let n = match from.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => n,
                                };
                                while freeze.load(Ordering::SeqCst) && !cut.load(Ordering::SeqCst) {
                                    thread::sleep(Duration::from_millis(5));
                                }
                                if cut.load(Ordering::SeqCst) {
                                    break;
                                }
                                if let Some(c) = &count {
                                    let total = c.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                                    if cut_after_up.is_some_and(|limit| total >= limit) {
                                        // Cut before this chunk reaches the server: the server sees a
                                        // connection drop in the middle of the stream of modifies.
                                        cut.store(true, Ordering::SeqCst);
                                        for s in conns.lock().expect("conns").iter() {
                                            let _ = s.shutdown(Shutdown::Both);
                                        }
                                        break;
                                    }
                                }
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            let _ = to.shutdown(Shutdown::Write);
                        });
                    };
                pump(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                    Some(up.clone()),
                );
                pump(server, client, None);
            }
        });
        p
    }

    fn cut_now(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.conns.lock().expect("conns").iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut_now();
    }
}

// ---------------------------------------------------------------------------------------------
// Library: write, read back, remove, restore — both servers.

async fn round_trip(server: &Server, sam: &str) {
    let dir = server.connect().await;
    let user = dir
        .find_user(&Lookup::SamAccountName, sam, false)
        .await
        .expect("find");
    let tmp = tempfile::tempdir().expect("tmp");
    let store = BackupStore::open(tmp.path()).expect("backup dir");
    let w = WriteOptions::backup_to(store.clone());

    // Known start: no photo (without a backup, explicitly).
    dir.remove_photo(&user.dn, &WriteOptions::without_backup())
        .await
        .expect("clear");
    assert_eq!(dir.read_photo(&user.dn).await.expect("read"), None);

    let a = photo(1, 8_000);
    let b = photo(2, 9_500);
    let first = dir.set_photo(&user.dn, &a, &w).await.expect("set a");
    let none_backup = first.backup.expect("backup taken");
    assert!(
        !none_backup.had_photo,
        "the first backup records that there was no photo"
    );
    assert_eq!(
        dir.read_photo(&user.dn).await.expect("read").as_deref(),
        Some(&a[..]),
        "{}: read back A",
        server.name
    );

    // Overwrite, then restore: A again, byte for byte.
    let second = dir.set_photo(&user.dn, &b, &w).await.expect("set b");
    let a_backup = second.backup.expect("backup");
    assert!(a_backup.had_photo);
    assert_eq!(
        a_backup.sha256.as_deref(),
        Some(photobulk_directory::sha256_hex(&a).as_str())
    );
    assert_eq!(a_backup.bytes, a.len());
    assert_eq!(a_backup.who.sam_account_name.as_deref(), Some(sam));
    assert_eq!(a_backup.who.object_guid, user.object_guid);
    assert!(
        a_backup.who.object_guid.is_some(),
        "{}: objectGUID/entryUUID recorded",
        server.name
    );
    assert_eq!(
        dir.read_photo(&user.dn).await.expect("read").as_deref(),
        Some(&b[..])
    );
    let r = dir
        .restore_photo(&user, &store, &RestoreFrom::Latest, &w)
        .await
        .expect("restore after overwrite");
    assert_eq!(r.restored.id, a_backup.id);
    assert_eq!(
        dir.read_photo(&user.dn).await.expect("read").as_deref(),
        Some(&a[..]),
        "{}: restored A",
        server.name
    );
    // Restoring again is idempotent (restore-made backups are not "latest").
    dir.restore_photo(&user, &store, &RestoreFrom::Latest, &w)
        .await
        .expect("restore twice");
    assert_eq!(
        dir.read_photo(&user.dn).await.expect("read").as_deref(),
        Some(&a[..])
    );

    // Remove, then restore: A again.
    let removed = dir.remove_photo(&user.dn, &w).await.expect("remove");
    assert_eq!(removed.backup.as_ref().map(|b| b.had_photo), Some(true));
    assert_eq!(
        dir.read_photo(&user.dn).await.expect("read"),
        None,
        "{}: removed",
        server.name
    );
    dir.restore_photo(&user, &store, &RestoreFrom::Latest, &w)
        .await
        .expect("restore after removal");
    assert_eq!(
        dir.read_photo(&user.dn).await.expect("read").as_deref(),
        Some(&a[..]),
        "{}: restored after removal",
        server.name
    );

    // Restore the very first backup by id: "there was no photo" → the photo is removed.
    dir.restore_photo(&user, &store, &RestoreFrom::Id(none_backup.id.clone()), &w)
        .await
        .expect("restore by id");
    assert_eq!(dir.read_photo(&user.dn).await.expect("read"), None);

    // Every write was preceded by a backup; the index holds them all, each with a time.
    let records = store.records().expect("records");
    assert_eq!(records.len(), 7, "{records:#?}");
    assert!(records
        .iter()
        .all(|r| r.time.ends_with('Z') && r.who.dn == user.dn));

    // Writing without a backup store and without saying so is refused.
    let err = dir
        .set_photo(
            &user.dn,
            &a,
            &WriteOptions {
                backup: None,
                no_backup: false,
            },
        )
        .await
        .expect_err("needs a backup choice");
    assert_eq!(err.kind(), "backup_required");
    assert_eq!(dir.read_photo(&user.dn).await.expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_write_read_remove_restore_byte_exact() {
    round_trip(&samba(), "john.smith").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_write_read_remove_restore_byte_exact() {
    round_trip(&slapd(), "john.smith").await;
}

// ---------------------------------------------------------------------------------------------
// rootDSE, StartTLS, certificate verification.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_root_dse_kind_and_default_base() {
    let s = samba();
    let dir = s.connect().await;
    assert_eq!(dir.server().kind, ServerKind::Samba, "{:?}", dir.server());
    assert!(dir.server().paged_results);
    assert!(
        dir.base().expect("base").eq_ignore_ascii_case(&s.base),
        "base from defaultNamingContext"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_root_dse_kind_and_base_from_naming_contexts() {
    let s = slapd();
    let dir = s.connect().await;
    assert_eq!(
        dir.server().kind,
        ServerKind::OpenLdap,
        "{:?}",
        dir.server()
    );
    assert!(dir.base().expect("base").eq_ignore_ascii_case(&s.base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_works_and_certificates_are_verified_by_default() {
    let s = samba();
    // ldap:// + StartTLS, verified against the test CA.
    let mut o = ConnectOptions::new(s.starttls_url.clone());
    o.starttls = true;
    o.ca_file = Some(s.ca.clone().into());
    let dir = Directory::connect(&o, &s.creds()).await.expect("StartTLS");
    dir.find_user(&Lookup::SamAccountName, "john.smith", false)
        .await
        .expect("search over StartTLS");

    // Without the CA file the test CA is not trusted: the handshake fails.
    let mut o = ConnectOptions::new(s.url.clone());
    o.timeout = Duration::from_secs(10);
    let err = Directory::connect(&o, &s.creds())
        .await
        .expect_err("untrusted certificate");
    // "tls" (handshake refused the certificate), or "tls_config" on a machine with no system
    // roots at all: either way nothing is sent to an unverified server.
    assert!(err.kind() == "tls" || err.kind() == "tls_config", "{err}");
    assert!(!err.is_retryable());

    // Only an explicit choice skips verification.
    o.insecure_skip_verify = true;
    Directory::connect(&o, &s.creds())
        .await
        .expect("insecure by choice");
}

// ---------------------------------------------------------------------------------------------
// Listings of any size: 2,500 seeded users, on Samba and on the 1000-limited slapd profile.

async fn lists_all_seeded(server: &Server) {
    let dir = server.connect().await;
    let first = dir
        .find_user(&Lookup::SamAccountName, "seed.00001", false)
        .await
        .expect("seed.00001");
    let ou = first.dn.split_once(',').expect("ou").1.to_string();
    let users = dir
        .list_users(&ListOptions {
            base: Some(ou.clone()),
            only_with_photo: false,
            fetch_photo: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: listing {ou}: {e}", server.name));
    let names: std::collections::HashSet<String> = users
        .iter()
        .filter_map(|u| u.sam_account_name.clone())
        .map(|s| s.to_lowercase())
        .collect();
    for n in 1..=2500 {
        let want = format!("seed.{n:05}");
        assert!(
            names.contains(&want),
            "{}: {want} missing from a listing of {} users",
            server.name,
            users.len()
        );
    }
    assert!(users.len() >= 2500);
    assert_eq!(
        names.len(),
        users.len(),
        "{}: no user listed twice",
        server.name
    );
    // The whole domain, from the root (Samba answers with referrals there, which are skipped).
    let all = dir
        .list_users(&ListOptions::default())
        .await
        .expect("list from the root");
    assert!(
        all.len() >= users.len() + 6,
        "{}: {} users from the root",
        server.name,
        all.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_lists_2500_seeded_users_completely() {
    lists_all_seeded(&samba()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_lists_2500_seeded_users_despite_the_1000_entry_limit() {
    let s = slapd();
    // Show the limit is real for this account: an unpaged search stops at 1000 (rc 4).
    let out = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &s.ca)
        .args([
            "-LLL",
            "-x",
            "-H",
            &s.url,
            "-D",
            &s.bind,
            "-y",
            "/dev/stdin",
            "-b",
            &s.base,
            "(objectClass=user)",
            "1.1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(s.password.as_bytes())?;
            c.wait_with_output()
        })
        .expect("ldapsearch (ldap-utils) runs");
    assert_eq!(
        out.status.code(),
        Some(4),
        "unpaged search should hit the size limit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count();
    assert_eq!(entries, 1000);
    lists_all_seeded(&s).await;
}

// ---------------------------------------------------------------------------------------------
// Names with filter metacharacters, NUL and non-ASCII match only themselves.

async fn names_match_only_themselves(server: &Server) {
    let dir = server.connect().await;
    let d = server.domain();
    let find = |by: Lookup, v: String| {
        let dir = dir.clone();
        async move { dir.find_user(&by, &v, false).await }
    };
    let cn_of = |dn: &str| {
        dn.split_once(',')
            .map(|(rdn, _)| rdn.to_string())
            .unwrap_or_default()
    };

    // `*` is literal: star*user@ must not also match the decoy starXuser@ (that would be Ambiguous).
    let u = find(Lookup::UserPrincipalName, format!("star*user@{d}"))
        .await
        .expect("star upn");
    assert_eq!(cn_of(&u.dn).to_lowercase(), "cn=star*user", "{}", u.dn);
    let u = find(Lookup::EmployeeId, "1003*".into())
        .await
        .expect("employeeID 1003*");
    assert_eq!(u.sam_account_name.as_deref(), Some("star.user"));
    let u = find(Lookup::Attribute("cn".into()), "star*user".into())
        .await
        .expect("cn");
    assert_eq!(u.sam_account_name.as_deref(), Some("star.user"));
    for pattern in ["*", "star*", "*user", "seed.0000*"] {
        let err = find(Lookup::SamAccountName, pattern.into())
            .await
            .expect_err("no wildcard");
        assert_eq!(
            err.kind(),
            "user_not_found",
            "{}: {pattern:?} → {err}",
            server.name
        );
    }
    // Parentheses and filter injection.
    let u = find(Lookup::SamAccountName, "paren(user)".into())
        .await
        .expect("paren");
    assert_eq!(u.employee_id.as_deref(), Some("(1004)"));
    let u = find(Lookup::UserPrincipalName, format!("paren(user)@{d}"))
        .await
        .expect("paren upn");
    assert_eq!(u.sam_account_name.as_deref(), Some("paren(user)"));
    let err = find(Lookup::SamAccountName, "x)(sAMAccountName=*".into())
        .await
        .expect_err("injection is literal");
    assert_eq!(err.kind(), "user_not_found");
    // Backslash.
    let u = find(Lookup::UserPrincipalName, format!("back\\slash@{d}"))
        .await
        .expect("backslash upn");
    assert_eq!(u.sam_account_name.as_deref(), Some("back.slash"));
    let u = find(Lookup::EmployeeId, "10\\05".into())
        .await
        .expect("backslash employeeID");
    assert_eq!(u.sam_account_name.as_deref(), Some("back.slash"));
    // Non-ASCII: zoë.müller is not the decoy zoe.muller, and vice versa.
    let z = find(Lookup::SamAccountName, "zoë.müller".into())
        .await
        .expect("zoë");
    let decoy = find(Lookup::SamAccountName, "zoe.muller".into())
        .await
        .expect("decoy");
    assert_ne!(z.dn, decoy.dn);
    assert_eq!(z.employee_id.as_deref(), Some("1006"));
    assert_eq!(decoy.employee_id.as_deref(), Some("1007"));
    let z2 = find(Lookup::UserPrincipalName, format!("zoë.müller@{d}"))
        .await
        .expect("zoë upn");
    assert_eq!(z2.dn, z.dn);
    // NUL: never matches (and is not an error beyond "not found").
    for v in ["john.smith\0", "john\0.smith", "\0"] {
        let err = find(Lookup::SamAccountName, v.into())
            .await
            .expect_err("NUL");
        assert_eq!(
            err.kind(),
            "user_not_found",
            "{}: {v:?} → {err}",
            server.name
        );
    }
    // Two matches are an error, never a silent pick (every seed user has givenName=Seed).
    let err = find(Lookup::Attribute("givenName".into()), "Seed".into())
        .await
        .expect_err("ambiguous");
    match err {
        DirectoryError::Ambiguous { dns, .. } => assert_eq!(dns.len(), 2),
        e => panic!("{}: expected Ambiguous, got {e}", server.name),
    }
    // A bad attribute name never reaches the server.
    assert!(Lookup::parse("cn)(x=*").is_err());
}

/// Issue 18: lookups sent together ([`Directory::find_users`], one OR search per 50 names, and
/// [`LookupBatcher`], which gathers concurrent lookups into such searches) answer exactly what
/// one `find_user` per name answers: the same DN, or the same error kind. The list has 120
/// seed users (three chunks), names in other case, unknown names, a wildcard and a filter
/// injection, parentheses, a backslash, non-ASCII names and their ASCII decoys, NUL, the same
/// name twice, and lookups by UPN, mail and employeeID.
async fn batched_lookups_answer_as_single_ones(server: &Server) {
    // Through a counting proxy: the batch must also be what goes over the wire.
    let proxy = Proxy::start(server.ldaps_addr(), None);
    let mut o = server.opts();
    o.url = format!("ldaps://{}", proxy.addr);
    let dir = Directory::connect(&o, &server.creds())
        .await
        .expect("connect via proxy");
    let d = server.domain();
    let up = || proxy.up.load(Ordering::SeqCst);
    let seeds: Vec<String> = (1..=120).map(|n| format!("seed.{n:05}")).collect();
    let before = up();
    for v in &seeds {
        dir.find_user(&Lookup::SamAccountName, v, false)
            .await
            .expect("seed user");
    }
    let one_by_one = up() - before;
    let before = up();
    let got = dir.find_users(&Lookup::SamAccountName, &seeds, false).await;
    let batched = up() - before;
    assert!(got.iter().all(Result::is_ok), "{}: {got:?}", server.name);
    eprintln!(
        "{}: 120 lookups sent {batched} bytes batched, {one_by_one} one by one",
        server.name
    );
    assert!(
        batched * 3 < one_by_one,
        "{}: 120 lookups sent {batched} bytes batched, {one_by_one} one by one",
        server.name
    );
    let mut asks: Vec<(Lookup, String)> = (1..=120)
        .map(|n| (Lookup::SamAccountName, format!("seed.{n:05}")))
        .collect();
    for v in [
        "SEED.00007",
        "Seed.00008",
        "seed.00007",
        "nobody.here",
        "seed.0000*",
        "*",
        "x)(sAMAccountName=*",
        "paren(user)",
        "zoë.müller",
        "zoe.muller",
        "ZOË.MÜLLER",
        "john.smith\0",
        "star*user",
    ] {
        asks.push((Lookup::SamAccountName, v.to_string()));
    }
    for v in [
        format!("star*user@{d}"),
        format!("back\\slash@{d}"),
        format!("zoë.müller@{d}"),
        format!("nobody@{d}"),
    ] {
        asks.push((Lookup::UserPrincipalName, v));
    }
    for v in ["1003*", "10\\05", "(1004)", "1006", "999999"] {
        asks.push((Lookup::EmployeeId, v.to_string()));
    }
    for n in [3, 4, 5] {
        asks.push((Lookup::Mail, format!("seed.{n:05}@{d}")));
    }
    let outcome = |r: &Result<User, DirectoryError>| match r {
        Ok(u) => u.dn.to_lowercase(),
        Err(e) => format!("error {}", e.kind()),
    };
    let mut single = Vec::new();
    for (by, v) in &asks {
        single.push(outcome(&dir.find_user(by, v, false).await));
    }
    assert!(
        single.iter().filter(|s| !s.starts_with("error")).count() >= 125,
        "{}: most names are found: {single:?}",
        server.name
    );
    // find_users, one kind of lookup at a time.
    for by in [
        Lookup::SamAccountName,
        Lookup::UserPrincipalName,
        Lookup::EmployeeId,
        Lookup::Mail,
    ] {
        let idx: Vec<usize> = (0..asks.len()).filter(|&i| asks[i].0 == by).collect();
        let values: Vec<String> = idx.iter().map(|&i| asks[i].1.clone()).collect();
        let got = dir.find_users(&by, &values, false).await;
        assert_eq!(got.len(), values.len());
        for (r, &i) in got.iter().zip(&idx) {
            assert_eq!(
                outcome(r),
                single[i],
                "{}: find_users {by} {:?}",
                server.name,
                asks[i].1
            );
        }
    }
    // The batcher, with every lookup waiting at once.
    let batcher = Arc::new(LookupBatcher::new());
    let tasks: Vec<_> = asks
        .iter()
        .cloned()
        .map(|(by, v)| {
            let (batcher, dir) = (batcher.clone(), dir.clone());
            tokio::spawn(async move { batcher.find(&dir, &by, &v, false).await })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("lookup task"));
    }
    for (i, r) in got.iter().enumerate() {
        assert_eq!(
            outcome(r),
            single[i],
            "{}: batched {} {:?}",
            server.name,
            asks[i].0,
            asks[i].1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_batched_lookups_answer_as_single_ones() {
    batched_lookups_answer_as_single_ones(&samba()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_batched_lookups_answer_as_single_ones() {
    batched_lookups_answer_as_single_ones(&slapd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba_names_with_metacharacters_match_only_themselves() {
    names_match_only_themselves(&samba()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_names_with_metacharacters_match_only_themselves() {
    names_match_only_themselves(&slapd()).await;
}

// ---------------------------------------------------------------------------------------------
// Refusals and clear errors.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_photo_is_refused_before_it_reaches_the_server() {
    let s = samba();
    let proxy = Proxy::start(s.ldaps_addr(), None);
    let mut o = s.opts();
    o.url = format!("ldaps://{}", proxy.addr);
    let dir = Directory::connect(&o, &s.creds())
        .await
        .expect("connect via proxy");
    let dn = dn_of(&dir, "seed.02499").await;
    let before = proxy.up.load(Ordering::SeqCst);
    let big = photo(7, 150 * 1024);
    let err = dir
        .set_photo(&dn, &big, &WriteOptions::without_backup())
        .await
        .expect_err("150 KB refused");
    assert!(
        matches!(
            err,
            DirectoryError::PhotoTooLarge {
                bytes: 153_600,
                limit: 102_400
            }
        ),
        "{err}"
    );
    // Nothing at all was sent for it (not even the backup read).
    let tmp = tempfile::tempdir().expect("tmp");
    let err = dir
        .set_photo(
            &dn,
            &big,
            &WriteOptions::backup_to(BackupStore::open(tmp.path()).expect("store")),
        )
        .await
        .expect_err("refused with backups on too");
    assert_eq!(err.kind(), "photo_too_large");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        proxy.up.load(Ordering::SeqCst),
        before,
        "no bytes went to the server"
    );
    assert!(BackupStore::open(tmp.path())
        .expect("store")
        .records()
        .expect("records")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_simple_bind_needs_an_explicit_opt_in() {
    let s = samba();
    let o = ConnectOptions::new(s.starttls_url.clone());
    let err = Directory::connect(&o, &s.creds())
        .await
        .expect_err("refused client-side");
    assert_eq!(err.kind(), "plaintext_bind_refused", "{err}");
    assert!(
        err.to_string().contains("--allow-plaintext-bind"),
        "the refusal names the flag: {err}"
    );
    // Opting in sends it; Samba itself then demands a protected connection (rc 8).
    let o = ConnectOptions {
        allow_plaintext_bind: true,
        ..o
    };
    let err = Directory::connect(&o, &s.creds())
        .await
        .expect_err("Samba wants TLS");
    assert_eq!(err.kind(), "strong_auth_required", "{err}");
    assert_eq!(err.ldap_rc(), Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_rc_49_error() {
    for s in [samba(), slapd()] {
        let creds = Credentials::Simple {
            bind: s.bind.clone(),
            password: Password::new("definitely-wrong"),
        };
        let err = Directory::connect(&s.opts(), &creds)
            .await
            .expect_err("bad password");
        assert_eq!(err.kind(), "invalid_credentials", "{}: {err}", s.name);
        assert_eq!(err.ldap_rc(), Some(49));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("invalid credentials"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_another_users_photo_without_rights_is_a_clear_rc_50_error() {
    for s in [samba(), slapd()] {
        let admin = s.connect().await;
        let dn = dn_of(&admin, "seed.02499").await;
        let before = admin.read_photo(&dn).await.expect("read");
        let creds = Credentials::Simple {
            bind: s.limited_bind.clone(),
            password: Password::new(s.limited_password.clone()),
        };
        let limited = Directory::connect(&s.opts(), &creds)
            .await
            .expect("limited bind");
        let err = limited
            .set_photo(&dn, &photo(9, 4000), &WriteOptions::without_backup())
            .await
            .expect_err("no rights");
        assert_eq!(err.kind(), "insufficient_rights", "{}: {err}", s.name);
        assert_eq!(err.ldap_rc(), Some(50));
        let err = limited
            .remove_photo(&dn, &WriteOptions::without_backup())
            .await
            .expect_err("no rights");
        assert_eq!(err.kind(), "insufficient_rights", "{}: {err}", s.name);
        assert_eq!(
            admin.read_photo(&dn).await.expect("read"),
            before,
            "{}: unchanged",
            s.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk writes: per-item results; a dying server gives clean retryable errors.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_writes_report_each_item_and_go_on_after_failures() {
    let s = samba();
    let dir = s.connect().await;
    let mut items = Vec::new();
    for n in 2401..=2405 {
        let dn = dn_of(&dir, &format!("seed.{n:05}")).await;
        items.push(PhotoItem {
            dn,
            photo: photo(n, 5000 + n as usize),
        });
    }
    items.insert(
        1,
        PhotoItem {
            dn: format!("CN=nobody-here,{}", s.base),
            photo: photo(1, 3000),
        },
    );
    items.insert(
        3,
        PhotoItem {
            dn: items[0].dn.clone(),
            photo: photo(1, 120_000),
        },
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let w = WriteOptions::backup_to(BackupStore::open(tmp.path()).expect("store"));
    let results = dir.set_photos(items.clone(), &w).await;
    assert_eq!(results.len(), 7);
    assert_eq!(
        results[1].as_ref().expect_err("no such user").kind(),
        "no_such_object"
    );
    assert_eq!(
        results[3].as_ref().expect_err("too big").kind(),
        "photo_too_large"
    );
    for i in [0usize, 2, 4, 5, 6] {
        let out = results[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("item {i}: {e}"));
        assert_eq!(out.dn, items[i].dn);
        assert!(out.backup.is_some());
        assert_eq!(
            dir.read_photo(&items[i].dn).await.expect("read").as_deref(),
            Some(&items[i].photo[..])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dying_mid_bulk_gives_clean_retryable_errors_and_no_half_written_state() {
    let s = samba();
    let admin = s.connect().await;
    let seed = admin
        .find_user(&Lookup::SamAccountName, "seed.02001", false)
        .await
        .expect("seed");
    let ou = seed.dn.split_once(',').expect("ou").1.to_string();
    let all = admin
        .list_users(&ListOptions {
            base: Some(ou),
            only_with_photo: false,
            fetch_photo: true,
        })
        .await
        .expect("list");
    let mut targets: Vec<_> = all
        .into_iter()
        .filter(|u| {
            let n: u32 = u
                .sam_account_name
                .as_deref()
                .and_then(|s| s.strip_prefix("seed."))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (2001..=2300).contains(&n)
        })
        .collect();
    targets.sort_by(|a, b| a.sam_account_name.cmp(&b.sam_account_name));
    assert_eq!(targets.len(), 300);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_nanos() as u64;
    let items: Vec<PhotoItem> = targets
        .iter()
        .enumerate()
        .map(|(i, u)| PhotoItem {
            dn: u.dn.clone(),
            photo: photo(run + i as u64, 6000),
        })
        .collect();

    // Cut the connection after ~120 photos' worth of bytes went up (the TLS handshake, bind and
    // rootDSE read are a few KB).
    let proxy = Proxy::start(s.ldaps_addr(), Some(120 * 6000));
    let mut o = s.opts();
    o.url = format!("ldaps://{}", proxy.addr);
    o.timeout = Duration::from_secs(20);
    let dir = Directory::connect(&o, &s.creds())
        .await
        .expect("connect via proxy");
    let tmp = tempfile::tempdir().expect("tmp");
    let store = BackupStore::open(tmp.path()).expect("store");
    let started = std::time::Instant::now();
    let results = tokio::time::timeout(
        Duration::from_secs(120),
        dir.set_photos(items.clone(), &WriteOptions::backup_to(store.clone())),
    )
    .await
    .expect("bulk call returns (no hang)");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failed fast enough: {:?}",
        started.elapsed()
    );
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let failed: Vec<&DirectoryError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!failed.is_empty(), "the cut must fail some items");
    assert!(ok > 0, "some items went through before the cut");
    for e in &failed {
        assert!(
            e.is_retryable(),
            "clean retryable error expected, got {} ({e})",
            e.kind()
        );
    }
    // The dead connection keeps answering with retryable errors, promptly.
    let err = dir
        .read_photo(&items[0].dn)
        .await
        .expect_err("connection is gone");
    assert!(err.is_retryable(), "{err}");

    // No half-written state: every user has either its old photo or the new one, whole; every
    // item reported OK has the new one, and every user whose photo changed has a backup.
    let backed_up: std::collections::HashSet<String> = store
        .records()
        .expect("records")
        .into_iter()
        .map(|r| r.who.dn)
        .collect();
    for ((item, before), result) in items.iter().zip(&targets).zip(&results) {
        let now = admin.read_photo(&item.dn).await.expect("read");
        let is_new = now.as_deref() == Some(&item.photo[..]);
        let is_old = now == before.photo;
        assert!(
            is_new || is_old,
            "{}: photo is neither the old nor the new value",
            item.dn
        );
        if result.is_ok() {
            assert!(is_new, "{}: reported OK but not written", item.dn);
        }
        if is_new {
            assert!(
                backed_up.contains(&item.dn),
                "{}: written without a backup",
                item.dn
            );
        }
    }
    eprintln!(
        "connection cut: {ok} ok, {} retryable failures",
        failed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_that_stops_answering_times_out_cleanly() {
    let s = samba();
    let proxy = Proxy::start(s.ldaps_addr(), None);
    let mut o = s.opts();
    o.url = format!("ldaps://{}", proxy.addr);
    o.timeout = Duration::from_secs(2);
    let dir = Directory::connect(&o, &s.creds())
        .await
        .expect("connect via proxy");
    let mut items = Vec::new();
    for n in 2301..=2310 {
        items.push(PhotoItem {
            dn: dn_of(&dir, &format!("seed.{n:05}")).await,
            photo: photo(n, 4000),
        });
    }
    proxy.freeze.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let results = dir.set_photos(items, &WriteOptions::without_backup()).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "timeouts bound the call: {:?}",
        started.elapsed()
    );
    for r in &results {
        let e = r.as_ref().expect_err("frozen server");
        assert_eq!(e.kind(), "timeout", "{e}");
        assert!(e.is_retryable());
    }
    proxy.cut_now();
}

// ---------------------------------------------------------------------------------------------
// The real binary.

fn photobulk(server: &Server, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_photobulk"));
    cmd.arg("ad")
        .args(args)
        .args([
            "--server",
            &server.url,
            "--ca-file",
            &server.ca,
            "--bind",
            &server.bind,
        ])
        .env("PHOTOBULK_LDAP_PASSWORD", &server.password)
        .env_remove("PHOTOBULK_LDAP_SERVER")
        .env_remove("PHOTOBULK_BACKUP_DIR")
        .stdin(std::process::Stdio::null());
    cmd.output().expect("run photobulk")
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON output: {e}\n{}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn cli_set_get_remove_restore_byte_exact() {
    let s = samba();
    let tmp = tempfile::tempdir().expect("tmp");
    let backups = tmp.path().join("backups");
    let bd = backups.to_str().expect("utf8");
    let a = photo(11, 7_000);
    let b = photo(12, 9_000);
    std::fs::write(tmp.path().join("a.jpg"), &a).expect("write");
    std::fs::write(tmp.path().join("b.jpg"), &b).expect("write");
    let p = |name: &str| tmp.path().join(name).to_str().expect("utf8").to_string();
    let get = |name: &str| {
        let out = photobulk(&s, &["get", "--user", "jane.doe", "--out", &p(name)]);
        ok(&out, "get");
        std::fs::read(tmp.path().join(name)).expect("read out")
    };

    ok(
        &photobulk(
            &s,
            &[
                "set",
                "--raw",
                "--user",
                "jane.doe",
                &p("a.jpg"),
                "--backup-dir",
                bd,
            ],
        ),
        "set a",
    );
    assert_eq!(get("1.jpg"), a);
    let out = photobulk(
        &s,
        &[
            "set",
            "--raw",
            "--user",
            "jane.doe",
            &p("b.jpg"),
            "--backup-dir",
            bd,
            "--json",
        ],
    );
    ok(&out, "set b");
    let v = json(&out);
    assert_eq!(v[0]["ok"], true);
    assert_eq!(v[0]["bytes"], 9000);
    assert!(v[0]["backup_id"].is_string());
    assert_eq!(get("2.jpg"), b);

    ok(
        &photobulk(&s, &["restore", "--user", "jane.doe", "--backup-dir", bd]),
        "restore after overwrite",
    );
    assert_eq!(get("3.jpg"), a, "restored byte for byte");

    ok(
        &photobulk(&s, &["remove", "--user", "jane.doe", "--backup-dir", bd]),
        "remove",
    );
    let out = photobulk(
        &s,
        &["get", "--user", "jane.doe", "--out", &p("4.jpg"), "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "get of a removed photo fails");
    assert_eq!(json(&out)[0]["error"]["kind"], "no_photo");

    ok(
        &photobulk(&s, &["restore", "--user", "jane.doe", "--backup-dir", bd]),
        "restore after removal",
    );
    assert_eq!(get("5.jpg"), a);

    // list shows the user, its bytes; the index is JSON lines with the required fields.
    let out = photobulk(&s, &["list", "--user", "jane.doe", "--json"]);
    ok(&out, "list");
    let v = json(&out);
    assert_eq!(v[0]["has_photo"], true);
    assert_eq!(v[0]["bytes"], 7000);
    let index = std::fs::read_to_string(backups.join("index.jsonl")).expect("index");
    assert_eq!(index.lines().count(), 5);
    for line in index.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("json line");
        for k in [
            "id",
            "time",
            "dn",
            "object_guid",
            "sam_account_name",
            "sha256",
            "bytes",
            "had_photo",
            "reason",
        ] {
            assert!(r.get(k).is_some(), "index line lacks {k}: {line}");
        }
    }
    // The password never appears in any output.
    let out = photobulk(
        &s,
        &["list", "--user", "jane.doe", "--user", "nobody.at.all"],
    );
    assert_eq!(out.status.code(), Some(1), "one failed user → exit 1");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("jane.doe") && all.contains("nobody.at.all"),
        "{all}"
    );
    assert!(!all.contains(&s.password));
}

#[test]
fn cli_refuses_150kb_before_connecting_and_needs_a_password_source() {
    let s = samba();
    let tmp = tempfile::tempdir().expect("tmp");
    let big = tmp.path().join("big.jpg");
    std::fs::write(&big, photo(3, 150 * 1024)).expect("write");
    // Port 9 on loopback: nothing listens, so any attempt to connect would fail differently.
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args([
            "ad",
            "set",
            "--raw",
            "--user",
            "x",
            big.to_str().expect("utf8"),
            "--server",
            "ldaps://127.0.0.1:9",
            "--no-backup",
        ])
        .env("PHOTOBULK_LDAP_PASSWORD", "unused")
        .args(["--bind", "cn=x"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("153600 bytes") && err.contains("102400"),
        "{err}"
    );
    assert!(!err.contains("connect"), "refused before connecting: {err}");

    // No password anywhere and stdin not a terminal: a clear error, no prompt, no hang.
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args([
            "ad",
            "list",
            "--user",
            "john.smith",
            "--server",
            &s.url,
            "--ca-file",
            &s.ca,
            "--bind",
            &s.bind,
        ])
        .env_remove("PHOTOBULK_LDAP_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PHOTOBULK_LDAP_PASSWORD"));

    // --password-file works.
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{}\n", s.password)).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_photobulk"))
        .args([
            "ad",
            "list",
            "--user",
            "john.smith",
            "--json",
            "--server",
            &s.url,
            "--ca-file",
            &s.ca,
            "--bind",
            &s.bind,
        ])
        .args(["--password-file", pw.to_str().expect("utf8")])
        .env_remove("PHOTOBULK_LDAP_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    ok(&out, "list with --password-file");
    assert_eq!(json(&out)[0]["sam_account_name"], "john.smith");
}

#[test]
fn cli_set_converts_any_photo_to_an_ad_jpeg() {
    let s = samba();
    let tmp = tempfile::tempdir().expect("tmp");
    // A 300x200 PNG gradient: set (without --raw) must store a 96x96 JPEG of at most 10 KB.
    let img = image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let src = tmp.path().join("portrait.png");
    img.save(&src).expect("png");
    let bd = tmp.path().join("b");
    let out = photobulk(
        &s,
        &[
            "set",
            "--user",
            "seed.02490",
            src.to_str().expect("utf8"),
            "--backup-dir",
            bd.to_str().expect("utf8"),
        ],
    );
    ok(&out, "set with conversion");
    let got = tmp.path().join("got.jpg");
    ok(
        &photobulk(
            &s,
            &[
                "get",
                "--user",
                "seed.02490",
                "--out",
                got.to_str().expect("utf8"),
            ],
        ),
        "get",
    );
    let bytes = std::fs::read(&got).expect("read");
    assert!(bytes.len() <= 10_240, "{} bytes", bytes.len());
    let decoded =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).expect("a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (96, 96));
    let out = photobulk(&s, &["list", "--user", "seed.02490", "--json"]);
    ok(&out, "list");
    let v = json(&out);
    assert_eq!(
        (v[0]["width"].clone(), v[0]["height"].clone()),
        (serde_json::json!(96), serde_json::json!(96))
    );
}
