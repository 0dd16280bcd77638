//! Issue 16: signing in as the current user with Kerberos and finding the DC in DNS, against
//! the real Samba AD DC of `scripts/samba-dc` — its KDC, and its internal DNS with the SRV
//! records AD clients use (plus the test records `scripts/samba-dc` adds: a failover domain
//! whose first DC is dead, a domain whose DC name has no service principal, one whose DCs all
//! refuse). Settings come from its `PB_SAMBA_*` exports; without them these tests FAIL.
//!
//! Every test gets its own ticket cache (`kinit` with the test admin's password on stdin, a
//! private `KRB5CCNAME`) and a `KRB5_CONFIG` that points at the test KDC only; the machine's
//! krb5.conf and resolver settings are never used or changed. The binary is run with no
//! `--bind` and no password anywhere in its environment.
//!
//! Users written: seed.02450–02459 (this module only). Read only: seed.01301–01600.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::Samba;

/// The Kerberos / DNS side of the test DC.
#[derive(Debug, Clone)]
struct Kdc {
    samba: Samba,
    realm: String,
    domain: String,
    dc_host: String,
    dns: String,
    krb5_config: String,
    failover_domain: String,
    nospn_domain: String,
    dead_domain: String,
    other_principal: String,
    other_keytab: String,
}

fn kdc() -> Kdc {
    let get = |k: &str| {
        std::env::var(format!("PB_SAMBA_{k}")).unwrap_or_else(|_| {
            panic!(
                "PB_SAMBA_{k} is not set: these tests need the Samba AD DC of scripts/samba-dc \
                 (with its KDC and DNS). Run `eval \"$(scripts/samba-dc start)\"` (or scripts/test)"
            )
        })
    };
    Kdc {
        samba: Samba::from_env(),
        realm: get("REALM"),
        domain: get("DOMAIN"),
        dc_host: get("DC_HOST"),
        dns: get("DNS"),
        krb5_config: get("KRB5_CONFIG"),
        failover_domain: get("FAILOVER_DOMAIN"),
        nospn_domain: get("NOSPN_DOMAIN"),
        dead_domain: get("DEAD_DOMAIN"),
        other_principal: get("OTHER_PRINCIPAL"),
        other_keytab: get("OTHER_KEYTAB"),
    }
}

/// A private ticket cache in a temp dir, and the folders a run writes to.
struct Session {
    kdc: Kdc,
    dir: tempfile::TempDir,
    ccache: PathBuf,
}

impl Session {
    /// No ticket at all (the cache file does not exist).
    fn without_ticket() -> Session {
        let dir = tempfile::tempdir().expect("tempdir");
        let ccache = dir.path().join("krb5cc");
        Session {
            kdc: kdc(),
            dir,
            ccache,
        }
    }

    /// `kinit Administrator@REALM` (password on stdin) into this session's cache.
    fn kinit(lifetime: Option<&str>) -> Session {
        let s = Session::without_ticket();
        let mut cmd = Command::new("kinit");
        if let Some(l) = lifetime {
            cmd.args(["-l", l]);
        }
        let mut child = cmd
            .arg("-c")
            .arg(format!("FILE:{}", s.ccache.display()))
            .arg(format!("Administrator@{}", s.kdc.realm))
            .env("KRB5_CONFIG", &s.kdc.krb5_config)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kinit (Debian krb5-user)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{}\n", s.kdc.samba.password).as_bytes())
            .expect("password to kinit");
        let out = child.wait_with_output().expect("kinit");
        assert!(
            out.status.success(),
            "kinit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    /// A ticket from the other realm's KDC (`kinit -k` with its keytab): valid, wrong realm.
    fn kinit_other_realm() -> Session {
        let s = Session::without_ticket();
        let out = Command::new("kinit")
            .args(["-k", "-t", &s.kdc.other_keytab, "-c"])
            .arg(format!("FILE:{}", s.ccache.display()))
            .arg(&s.kdc.other_principal)
            .env("KRB5_CONFIG", &s.kdc.krb5_config)
            .stdin(Stdio::null())
            .output()
            .expect("kinit");
        assert!(
            out.status.success(),
            "kinit -k {}: {}",
            s.kdc.other_principal,
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    /// The real binary, as the current user: Kerberos settings only, no bind, no password.
    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_photobulk"));
        cmd.env("KRB5_CONFIG", &self.kdc.krb5_config)
            .env("KRB5CCNAME", format!("FILE:{}", self.ccache.display()))
            .env("PHOTOBULK_BACKUP_DIR", self.dir.path().join("backups"))
            .env("PHOTOBULK_STATE_DIR", self.dir.path().join("state"))
            .env_remove("PHOTOBULK_LDAP_PASSWORD")
            .env_remove("PHOTOBULK_LDAP_BIND")
            .env_remove("PHOTOBULK_LDAP_SERVER")
            .env_remove("PHOTOBULK_LDAP_AUTH")
            .env_remove("PHOTOBULK_DOMAIN")
            .env_remove("PHOTOBULK_DNS_SERVER")
            .env_remove("USERDNSDOMAIN")
            .stdin(Stdio::null());
        cmd
    }

    /// `photobulk ARGS... --domain DOMAIN --dns-server DNS` (DC found in the test DC's DNS).
    fn run_located(&self, domain: &str, args: &[&str]) -> Output {
        let out = self
            .command()
            .args(args)
            .args(["--domain", domain, "--dns-server", &self.kdc.dns])
            .output()
            .expect("run photobulk");
        no_secrets(&out, &self.kdc.samba.password);
        out
    }

    fn backups(&self) -> PathBuf {
        self.dir.path().join("backups")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn no_secrets(out: &Output, password: &str) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !text(stream).contains(password),
            "the password showed up in the output"
        );
    }
}

fn json_out(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON: {e}: {}", text(&out.stdout)))
}

/// The user's thumbnailPhoto read back independently: `ldapsearch` with a simple bind over
/// LDAPS as the test admin (password from the samba-dc file), raw bytes via `-tt`.
fn ldapsearch_photo(k: &Kdc, sam: &str) -> Option<Vec<u8>> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new("ldapsearch")
        .args(["-LLL", "-x", "-o", "ldif-wrap=no", "-tt", "-T"])
        .arg(tmp.path())
        .args(["-H", &k.samba.url, "-D", &k.samba.bind, "-y"])
        .arg(Path::new(&k.samba.dir).join("admin.password"))
        .args([
            "-b",
            &k.samba.base,
            &format!("(sAMAccountName={sam})"),
            "thumbnailPhoto",
        ])
        .env("LDAPTLS_CACERT", &k.samba.ca)
        .env("LDAPTLS_REQCERT", "demand")
        .output()
        .expect("ldapsearch (ldap-utils)");
    assert!(out.status.success(), "ldapsearch: {}", text(&out.stderr));
    let ldif = text(&out.stdout);
    assert!(ldif.contains("dn: "), "{sam} not found: {ldif}");
    let line = ldif
        .lines()
        .find(|l| l.starts_with("thumbnailPhoto:< file://"))?;
    let path = line.trim_start_matches("thumbnailPhoto:< file://");
    Some(std::fs::read(path).expect("ldapsearch value file"))
}

/// A real photo in the folder, named for `account`.
fn photo_file(dir: &Path, account: &str) -> PathBuf {
    let p = dir.join(format!("{account} portrait.jpg"));
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real/astronaut.jpg"
        ),
        &p,
    )
    .expect("fixture");
    p
}

fn backup_files(dir: &Path) -> usize {
    let photos = dir.join("photos");
    let index = std::fs::read_to_string(dir.join("index.jsonl")).unwrap_or_default();
    index.lines().count() + std::fs::read_dir(photos).map(|d| d.count()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Signing in with Kerberos

#[test]
fn kerberos_ad_set_get_remove_restore_round_trip_without_password() {
    let s = Session::kinit(None);
    let user = "seed.02450";
    let work = s.dir.path();
    let before = ldapsearch_photo(&s.kdc, user);

    // set: converted to the AD photo, old value backed up, written as the ticket's user.
    let img = photo_file(work, user);
    let img_s = img.to_str().expect("path");
    let out = s.run_located(
        &s.kdc.domain,
        &["ad", "set", "--user", user, img_s, "--json"],
    );
    let set = json_out(&out);
    assert_eq!(set[0]["ok"], true, "{set}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("using domain controller {}", s.kdc.dc_host))
            && stderr.contains("Kerberos"),
        "the DC used and the sign-in are named: {stderr}"
    );
    let written = ldapsearch_photo(&s.kdc, user).expect("a photo after set");
    assert_eq!(
        written.len() as u64,
        set[0]["bytes"].as_u64().expect("bytes")
    );
    assert!(written.len() <= 10_240 && written.starts_with(&[0xff, 0xd8]));

    // get: byte for byte what ldapsearch reads.
    let got = work.join("got.jpg");
    let out = s.run_located(
        &s.kdc.domain,
        &[
            "ad",
            "get",
            "--user",
            user,
            "--out",
            got.to_str().expect("p"),
            "--json",
        ],
    );
    assert_eq!(json_out(&out)[0]["ok"], true);
    assert_eq!(std::fs::read(&got).expect("got"), written);

    // remove, then restore the photo that was there before the remove.
    let out = s.run_located(&s.kdc.domain, &["ad", "remove", "--user", user, "--json"]);
    assert_eq!(json_out(&out)[0]["ok"], true);
    assert_eq!(ldapsearch_photo(&s.kdc, user), None, "removed");
    let out = s.run_located(&s.kdc.domain, &["ad", "restore", "--user", user, "--json"]);
    let restored = json_out(&out);
    assert_eq!(restored[0]["ok"], true, "{restored}");
    assert_eq!(
        ldapsearch_photo(&s.kdc, user).as_deref(),
        Some(written.as_slice()),
        "restore puts the removed photo back byte for byte"
    );
    // And the very first value is still in the backups (set backed it up).
    let first_backup = set[0]["backup_id"].as_str().expect("backup id").to_string();
    let out = s.run_located(
        &s.kdc.domain,
        &[
            "ad",
            "restore",
            "--user",
            user,
            "--backup",
            &first_backup,
            "--json",
        ],
    );
    assert_eq!(json_out(&out)[0]["ok"], true);
    assert_eq!(ldapsearch_photo(&s.kdc, user), before);
}

#[test]
fn kerberos_by_ip_over_plain_ldap_is_sealed_and_says_who() {
    let s = Session::kinit(None);
    let url = format!("ldap://{}", s.kdc.dns);
    let out = s
        .command()
        .args(["ad", "whoami", "--server", &url, "--json"])
        .output()
        .expect("run");
    let v = json_out(&out);
    assert_eq!(v["sign_in"]["method"], "kerberos", "{v}");
    assert_eq!(v["sign_in"]["protection"], "sasl_sealing", "{v}");
    assert_eq!(
        v["sign_in"]["principal"],
        format!("Administrator@{}", s.kdc.realm)
    );
    // By IP: the service principal comes from the DC's own dnsHostName, with its realm.
    assert_eq!(
        v["sign_in"]["service_principal"],
        format!("ldap/{}@{}", s.kdc.dc_host, s.kdc.realm)
    );
    // Samba has no "Who am I?" operation (rc 2): the field is then null, not an error.
    assert!(v.get("authz_id").is_some(), "{v}");

    // (Kerberos over StartTLS is not checked here: ldap3 asks for no SASL layer inside TLS,
    // and Samba 4.17 refuses that with rc 8 "SASL:[GSSAPI]: Sign or Seal are required".)
}

/// Many lookups in flight on one sealed connection. The report looks up 300 seeded users with
/// its lookups overlapping, so Samba's sealed answers arrive several to a read. ldap3 0.12.1 as
/// published dropped the rest of a SASL buffer when another one followed it in the same read:
/// with that crate, four of five runs of this report lost 1–3 of the 300 users, each ending as
/// "find user timed out" after the whole timeout (see vendor/ldap3/PHOTOBULK-PATCH.md). Three
/// rounds here; every row must name its user's DN and carry no error. Read only:
/// seed.01301–01600, which no test writes.
#[test]
fn kerberos_sealed_connection_answers_every_overlapping_lookup() {
    let s = Session::kinit(None);
    let users = s.dir.path().join("users.txt");
    let names: Vec<String> = (1301..=1600).map(|i| format!("seed.{i:05}")).collect();
    std::fs::write(&users, names.join("\n")).expect("users file");
    let url = format!("ldap://{}", s.kdc.dns);
    for round in 0..3 {
        let started = Instant::now();
        let out = s
            .command()
            .args(["report", "--server", &url, "--json", "--timeout", "5"])
            .arg("--users")
            .arg(&users)
            .output()
            .expect("run");
        let v = json_out(&out);
        let rows = v["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), names.len(), "round {round}");
        let failed: Vec<String> = rows
            .iter()
            .filter(|r| !r["error"].is_null() || r["dn"].as_str().is_none())
            .map(|r| format!("{}: {}", r["identity"], r["error"]))
            .collect();
        assert!(
            failed.is_empty(),
            "round {round}, after {:?}: {failed:?}",
            started.elapsed()
        );
        for (r, name) in rows.iter().zip(&names) {
            assert_eq!(
                r["identity"],
                name.as_str(),
                "round {round}: rows in input order"
            );
        }
    }
}

#[test]
fn kerberos_import_of_a_folder_without_password() {
    let s = Session::kinit(None);
    let photos = s.dir.path().join("photos");
    std::fs::create_dir(&photos).expect("mkdir");
    let users = ["seed.02451", "seed.02452"];
    for u in users {
        photo_file(&photos, u);
    }
    let out = s.run_located(
        &s.kdc.domain,
        &["import", photos.to_str().expect("p"), "--json"],
    );
    assert!(
        out.status.success(),
        "import: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for u in users {
        let p = ldapsearch_photo(&s.kdc, u).unwrap_or_else(|| panic!("{u} has a photo"));
        assert!(p.len() <= 10_240 && p.starts_with(&[0xff, 0xd8]), "{u}");
    }
    // Same command again: nothing rewritten (the journal is keyed by domain, not by DC).
    let again = s.run_located(
        &s.kdc.domain,
        &["import", photos.to_str().expect("p"), "--json"],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let last = text(&again.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .expect("summary line");
    assert_eq!(
        last["summary"]["written"].as_u64().unwrap_or(0),
        0,
        "{last}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding the DC in DNS

#[test]
fn discovery_finds_the_test_dc_from_srv() {
    let s = Session::kinit(None);
    let out = s.run_located(&s.kdc.domain, &["ad", "whoami", "--json"]);
    let v = json_out(&out);
    assert_eq!(v["located"]["dc"]["host"], s.kdc.dc_host.as_str(), "{v}");
    assert_eq!(
        v["located"]["srv_name"],
        format!("_ldap._tcp.dc._msdcs.{}", s.kdc.domain)
    );
    assert_eq!(v["server"], format!("ldap://{}:389", s.kdc.dc_host));
    assert_eq!(v["located"]["skipped"], json!([]));
    // The domain can also come from the ticket's realm.
    let out = s
        .command()
        .args(["ad", "whoami", "--json", "--dns-server", &s.kdc.dns])
        .output()
        .expect("run");
    let v = json_out(&out);
    assert_eq!(v["located"]["domain"], s.kdc.domain.as_str(), "{v}");
    assert!(
        text(&out.stderr).contains("domain from the Kerberos ticket's realm"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn discovery_fails_over_when_the_first_dc_is_down() {
    let s = Session::kinit(None);
    let out = s.run_located(&s.kdc.failover_domain, &["ad", "whoami", "--json"]);
    let v = json_out(&out);
    assert_eq!(v["located"]["dc"]["host"], s.kdc.dc_host.as_str(), "{v}");
    assert_eq!(v["located"]["dc"]["priority"], 10);
    let skipped = v["located"]["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{v}");
    assert!(
        skipped[0].as_str().unwrap_or("").contains("dead.")
            && skipped[0].as_str().unwrap_or("").contains(":9"),
        "{v}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("skipped domain controller ldap://dead."),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Every error names what to do, and writes nothing

/// `ad set` that must fail with `expect` in its message, leaving `user`'s photo and the
/// backup folder as they were.
fn set_fails(s: &Session, domain: &str, user: &str, expect: &[&str]) -> String {
    let before = ldapsearch_photo(&s.kdc, user);
    let img = photo_file(s.dir.path(), user);
    let started = Instant::now();
    let out = s.run_located(
        domain,
        &["ad", "set", "--user", user, img.to_str().expect("p")],
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the failure took {:?}",
        started.elapsed()
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "expected {e:?} in: {stderr}");
    }
    assert_eq!(ldapsearch_photo(&s.kdc, user), before, "nothing written");
    assert_eq!(backup_files(&s.backups()), 0, "no backup taken");
    stderr
}

#[test]
fn no_ticket_and_no_password_is_a_clear_error() {
    let s = Session::without_ticket();
    set_fails(
        &s,
        &s.kdc.domain.clone(),
        "seed.02453",
        &["no Kerberos ticket and no password", "kinit", "--bind"],
    );
}

#[test]
fn expired_ticket_is_a_clear_error() {
    let s = Session::kinit(Some("3s"));
    std::thread::sleep(Duration::from_secs(4));
    set_fails(
        &s,
        &s.kdc.domain.clone(),
        "seed.02454",
        &["Kerberos ticket", "has expired", "kinit"],
    );
}

#[test]
fn spn_unknown_to_the_kdc_is_a_clear_error() {
    let s = Session::kinit(None);
    let spn = format!("ldap/alias.{}@{}", s.kdc.domain, s.kdc.realm);
    set_fails(
        &s,
        &s.kdc.nospn_domain.clone(),
        "seed.02455",
        &[
            "does not know the service principal",
            &spn,
            &format!("setspn -S ldap/alias.{} ", s.kdc.domain),
        ],
    );
}

#[test]
fn ticket_for_another_realm_is_a_clear_error() {
    let s = Session::kinit_other_realm();
    let realm = s.kdc.realm.clone();
    set_fails(
        &s,
        &s.kdc.domain.clone(),
        "seed.02459",
        &[
            "the Kerberos ticket is for admin@OTHER.TEST",
            &format!("in realm {realm}"),
            &format!("kinit USER@{realm}"),
        ],
    );
}

#[test]
fn no_srv_record_is_a_clear_error() {
    let s = Session::kinit(None);
    let domain = format!("nosrv.{}", s.kdc.domain);
    set_fails(
        &s,
        &domain,
        "seed.02456",
        &[
            &format!("DNS has no SRV record _ldap._tcp.dc._msdcs.{domain}"),
            "--server",
        ],
    );
}

#[test]
fn every_dc_refusing_is_a_clear_error() {
    let s = Session::kinit(None);
    let stderr = set_fails(
        &s,
        &s.kdc.dead_domain.clone(),
        "seed.02457",
        &[
            "no domain controller of",
            "could be reached",
            ":9",
            ":7",
            "--server",
        ],
    );
    assert!(
        stderr.contains("(retryable)") || stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn simple_bind_still_works_and_is_named() {
    // --bind keeps the old way: a simple bind over TLS, password from the environment.
    let s = Session::without_ticket();
    let out = s
        .command()
        .args(["ad", "whoami", "--json", "--server", &s.kdc.samba.url])
        .args(["--ca-file", &s.kdc.samba.ca, "--bind", &s.kdc.samba.bind])
        .env("PHOTOBULK_LDAP_PASSWORD", &s.kdc.samba.password)
        .output()
        .expect("run");
    no_secrets(&out, &s.kdc.samba.password);
    let v = json_out(&out);
    assert_eq!(v["sign_in"]["method"], "simple", "{v}");
    assert_eq!(v["sign_in"]["protection"], "tls", "{v}");
}

// ---------------------------------------------------------------------------------------------
// The sidecar: directory.connect without bind or password signs in with Kerberos

struct Serve {
    child: std::process::Child,
    path: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(s: &Session) -> Serve {
    let mut child = s
        .command()
        .args(["serve", "--pipe", "pbkrb", "--idle-timeout", "60"])
        .env("TMPDIR", s.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(s.dir.path().join("serve.log")).expect("log"),
        ))
        .spawn()
        .expect("photobulk serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("start line");
    let start: Value = serde_json::from_str(&line).expect("start JSON");
    assert_eq!(start["status"], "started", "{start}");
    Serve {
        child,
        path: PathBuf::from(start["path"].as_str().expect("path")),
    }
}

fn rpc(stream: &mut UnixStream, id: i64, method: &str, params: Value) -> Value {
    let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    stream
        .write_all(format!("{req}\n").as_bytes())
        .expect("send");
    let mut rd = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut l = String::new();
        rd.read_line(&mut l).expect("read");
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        if v.get("id") == Some(&json!(id)) {
            return v;
        }
    }
}

#[test]
fn sidecar_directory_connect_without_credentials_uses_kerberos() {
    let s = Session::kinit(None);
    let srv = serve(&s);
    let mut c = UnixStream::connect(&srv.path).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    assert!(rpc(&mut c, 1, "initialize", json!({}))
        .get("result")
        .is_some());
    // What Set-PhotoBulk without -Credential sends: no bind, no password.
    let r = rpc(
        &mut c,
        2,
        "directory.connect",
        json!({"domain": s.kdc.domain, "dnsServer": s.kdc.dns,
               "backupDir": s.backups()}),
    );
    let res = &r["result"];
    assert_eq!(res["auth"], "kerberos", "{r}");
    assert_eq!(res["dc"], s.kdc.dc_host.as_str(), "{r}");
    assert_eq!(res["protection"], "sasl_sealing", "{r}");
    assert_eq!(
        res["boundAs"],
        format!("Administrator@{}", s.kdc.realm),
        "{r}"
    );
    let user = "seed.02458";
    let img = photo_file(s.dir.path(), user);
    let r = rpc(
        &mut c,
        3,
        "photo.set",
        json!({"identity": user, "path": img}),
    );
    assert!(r.get("error").is_none(), "{r}");
    let written = ldapsearch_photo(&s.kdc, user).expect("written");
    assert_eq!(
        written.len() as u64,
        r["result"]["bytes"].as_u64().unwrap_or(0),
        "{r}"
    );
    let mut log = String::new();
    std::fs::File::open(s.dir.path().join("serve.log"))
        .and_then(|mut f| f.read_to_string(&mut log))
        .expect("log");
    assert!(!log.contains(&s.kdc.samba.password));
    assert!(
        !log.to_ascii_lowercase().contains("krb5cc"),
        "no ticket details logged: {log}"
    );
}

#[test]
fn sidecar_without_ticket_answers_what_to_do() {
    let s = Session::without_ticket();
    let srv = serve(&s);
    let mut c = UnixStream::connect(&srv.path).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    rpc(&mut c, 1, "initialize", json!({}));
    let r = rpc(
        &mut c,
        2,
        "directory.connect",
        json!({"domain": s.kdc.domain, "dnsServer": s.kdc.dns}),
    );
    assert_eq!(r["error"]["data"]["kind"], "invalid_credentials", "{r}");
    assert_eq!(r["error"]["data"]["detail"], "no_kerberos_ticket", "{r}");
    let msg = r["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("kinit") && msg.contains("-Credential"), "{r}");
}
