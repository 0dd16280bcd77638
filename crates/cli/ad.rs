//! `photobulk ad`: read, write, back up and restore AD thumbnailPhoto over LDAP.
//!
//! A thin layer over `photobulk_directory`: parse arguments, get the password safely, convert
//! images through `photobulk_imaging`, print results. Every user is handled on its own: one
//! failure is reported and the rest go on; the exit code is 1 when any item failed.
//!
//! # Signing in
//! `--auth auto` (the default) signs in as the current user with Kerberos when no `--bind` is
//! given — the ticket of `kinit` on Linux/macOS, the logon session on Windows — as
//! `Set-ADUser` does; with `--bind NAME` it is a simple bind with a password over TLS.
//! `--auth kerberos|simple|anonymous` forces one.
//!
//! # Finding the domain controller
//! Without `--server`, the DCs of `--domain` (else `USERDNSDOMAIN`, the Kerberos ticket's
//! realm, the DNS search domain) are looked up in DNS (`_ldap._tcp.dc._msdcs.<domain>`,
//! `--dns-server IP[:PORT]` to ask a given DNS server) and tried in priority and weight order;
//! the one used is named on stderr. `photobulk ad whoami` shows the DC, who we are bound as
//! and how.
//!
//! # Password
//! From `PHOTOBULK_LDAP_PASSWORD`, `--password-file PATH` (first line), or a prompt with echo
//! off when stdin is a terminal. Never from a command-line value, never printed. Only read for
//! a simple bind.
//!
//! # JSON output (`--json`)
//! Every subcommand prints one JSON array, one object per user, in the order asked:
//!
//! ```json
//! [{"user":"john.smith","ok":true,"dn":"CN=John Smith,OU=People,DC=photobulk,DC=test",
//!   "bytes":8123,"sha256":"…","backup_id":"20261122T…-000001","file":"john.jpg"},
//!  {"user":"nobody","ok":false,"error":{"kind":"user_not_found","retryable":false,
//!   "message":"no user with sAMAccountName=\"nobody\""}}]
//! ```
//!
//! Fields beyond `user`/`ok`/`error` appear when they apply: `dn`, `bytes`, `sha256`,
//! `backup_id` (backup taken before the write), `restored_id` (backup put back), `file`
//! (`get --out`), and for `list`: `sam_account_name`, `user_principal_name`, `mail`,
//! `has_photo`, `format`, `width`, `height` (from `photobulk_imaging::probe`; absent when the
//! bytes are not a recognised image).

use photobulk_kind::{ErrorKind, ItemError};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use photobulk_directory::{
    check_photo_size, kerberos, locate, sha256_hex, AuthMethod, BackupStore, ConnectOptions,
    Credentials, Directory, DirectoryError, ListOptions, Locator, Lookup, Password, RestoreFrom,
    User, WriteOptions,
};
use serde::Serialize;

/// Read, write, back up and restore AD thumbnailPhoto over LDAP.
#[derive(clap::Args, Debug)]
pub struct AdArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: AdCommand,
}

/// Connection and output options, accepted before or after the subcommand. Shared with
/// `photobulk import` and `photobulk restore` (crates/cli/import.rs).
#[derive(clap::Args, Debug)]
pub(crate) struct ConnArgs {
    /// Directory server: ldaps://host[:636], or ldap://host[:389] (with --starttls, or
    /// Kerberos). Without it a domain controller is found in DNS (see --domain).
    #[arg(long, global = true, env = "PHOTOBULK_LDAP_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,
    /// How to sign in: auto (Kerberos as the current user unless --bind is given, then a
    /// simple bind with the password), kerberos, simple, anonymous.
    #[arg(
        long,
        global = true,
        env = "PHOTOBULK_LDAP_AUTH",
        value_enum,
        default_value_t = AuthArg::Auto
    )]
    pub(crate) auth: AuthArg,
    /// AD domain whose DCs to find in DNS when no --server is given (default: USERDNSDOMAIN,
    /// else the Kerberos ticket's realm, else the DNS search domain).
    #[arg(long, global = true, env = "PHOTOBULK_DOMAIN", value_name = "DNS-NAME")]
    pub(crate) domain: Option<String>,
    /// Ask this DNS server for the DC records instead of the system's resolver.
    #[arg(
        long,
        global = true,
        env = "PHOTOBULK_DNS_SERVER",
        value_name = "IP[:PORT]"
    )]
    pub(crate) dns_server: Option<String>,
    /// Search base DN (default: the server's defaultNamingContext).
    #[arg(long, global = true, value_name = "DN")]
    pub(crate) base: Option<String>,
    /// Bind name for a simple bind: a DN, user@domain or DOMAIN\user (with a password).
    /// Without it, --auth auto signs in with Kerberos.
    #[arg(long, global = true, env = "PHOTOBULK_LDAP_BIND", value_name = "NAME")]
    pub(crate) bind: Option<String>,
    /// Read the bind password from the first line of this file (else PHOTOBULK_LDAP_PASSWORD,
    /// else a prompt when stdin is a terminal).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) password_file: Option<PathBuf>,
    /// Trust the certificates in this PEM file instead of the system roots.
    #[arg(long, global = true, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Do not verify the server certificate (tests only: anyone in the path can read the password).
    #[arg(long, global = true)]
    pub(crate) insecure_skip_verify: bool,
    /// Allow a simple bind without TLS (the password crosses the network in clear text).
    #[arg(long, global = true)]
    pub(crate) allow_plaintext_bind: bool,
    /// Upgrade an ldap:// connection with StartTLS.
    #[arg(long, global = true)]
    pub(crate) starttls: bool,
    /// Backup folder (default: PHOTOBULK_BACKUP_DIR, else STATE/ad-backups; STATE is
    /// PHOTOBULK_STATE_DIR, else ~/.local/state/photobulk, %LOCALAPPDATA%\PhotoBulk on Windows).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) backup_dir: Option<PathBuf>,
    /// Which attribute --user names: samaccountname, upn, mail, employeeid, or an attribute name.
    #[arg(
        long,
        global = true,
        default_value = "samaccountname",
        value_name = "ATTR"
    )]
    pub(crate) by: String,
    /// Seconds allowed for each LDAP operation.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) timeout: u64,
    /// Print JSON (one array, an object per user) instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuthArg {
    /// Kerberos without --bind, a simple bind with it
    Auto,
    /// Kerberos (SASL GSSAPI) as the current user: kinit's ticket, the Windows logon session
    Kerberos,
    /// A simple bind: --bind and a password, over TLS
    Simple,
    /// No bind (rootDSE only)
    Anonymous,
}

impl AuthArg {
    fn method(self) -> AuthMethod {
        match self {
            AuthArg::Auto => AuthMethod::Auto,
            AuthArg::Kerberos => AuthMethod::Kerberos,
            AuthArg::Simple => AuthMethod::Simple,
            AuthArg::Anonymous => AuthMethod::Anonymous,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
enum AdCommand {
    /// Who we are bound as, how, and to which DC (and how it was found).
    Whoami,
    /// Save a user's current photo to a file, byte for byte.
    Get {
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Where to write the bytes.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Set a user's photo from an image file (converted to 96x96 JPEG <= 10 KB unless --raw).
    /// The old photo is backed up first.
    Set {
        #[arg(long, value_name = "NAME")]
        user: String,
        /// The image.
        file: PathBuf,
        /// Send the file's bytes as they are (still refused over 102,400 bytes).
        #[arg(long)]
        raw: bool,
        /// Do not back up the old photo (it is lost).
        #[arg(long)]
        no_backup: bool,
    },
    /// Remove users' photos (backed up first).
    Remove {
        #[arg(long, value_name = "NAME", required = true)]
        user: Vec<String>,
        /// Do not back up the old photo (it is lost).
        #[arg(long)]
        no_backup: bool,
    },
    /// Put photos back from the backup folder: each user's latest backup, the photo from
    /// before an import run (--run), or one backup by id.
    Restore {
        #[arg(long, value_name = "NAME", required_unless_present = "backup")]
        user: Vec<String>,
        /// Backup id (from the index or an earlier run's output).
        #[arg(long, value_name = "ID", conflicts_with = "run")]
        backup: Option<String>,
        /// Put back what each --user had before this import run (`photobulk runs`)
        #[arg(long, value_name = "RUN", requires = "user")]
        run: Option<String>,
        /// State folder holding the import journal, for --run (default as for `import`)
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Do not back up the photo being replaced by the restore.
        #[arg(long)]
        no_backup: bool,
    },
    /// List users with a photo: bytes and dimensions. --all includes users without one.
    List {
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        user: Vec<String>,
        /// Every user, with or without a photo.
        #[arg(long)]
        all: bool,
    },
}

/// One line of output (see the module docs for the JSON form).
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Serialize)]
struct Item {
    user: String,
    ok: bool,
    dn: Option<String>,
    sam_account_name: Option<String>,
    user_principal_name: Option<String>,
    mail: Option<String>,
    has_photo: Option<bool>,
    bytes: Option<usize>,
    sha256: Option<String>,
    format: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    backup_id: Option<String>,
    restored_id: Option<String>,
    file: Option<String>,
    note: Option<String>,
    error: Option<ItemError>,
}

impl Item {
    fn ok(user: &str) -> Self {
        Item {
            user: user.to_string(),
            ok: true,
            ..Default::default()
        }
    }
    fn failed(user: &str, err: &DirectoryError) -> Self {
        Item {
            user: user.to_string(),
            ok: false,
            error: Some(ItemError::with(
                err.kind(),
                err.is_retryable(),
                err.to_string(),
            )),
            ..Default::default()
        }
    }
    fn failed_other(user: &str, kind: ErrorKind, message: String) -> Self {
        Item {
            user: user.to_string(),
            ok: false,
            error: Some(ItemError::new(kind, message)),
            ..Default::default()
        }
    }
}

/// Run `photobulk ad ...`. Returns exit code 1 when any user failed.
pub async fn run(args: AdArgs) -> anyhow::Result<ExitCode> {
    let AdArgs { conn, command } = args;
    let lookup = Lookup::parse(&conn.by).map_err(|e| anyhow!("--by: {e}"))?;

    // Everything that can be refused without the network is refused before connecting.
    let prepared_photo = match &command {
        AdCommand::Set { file, raw, .. } => Some(prepare_photo(file, *raw)?),
        _ => None,
    };
    let store = match &command {
        AdCommand::Set {
            no_backup: false, ..
        }
        | AdCommand::Remove {
            no_backup: false, ..
        }
        | AdCommand::Restore { .. } => Some(open_backup_dir(conn.backup_dir.as_deref())?),
        _ => None,
    };

    let dir = connect(&conn).await?;
    let mut items = Vec::new();
    match command {
        AdCommand::Whoami => {
            let code = whoami(&dir, conn.json).await?;
            let _ = dir.unbind().await;
            return Ok(code);
        }
        AdCommand::Get { user, out } => {
            items.push(match get(&dir, &lookup, &user, &out).await {
                Ok(item) => item,
                Err(e) => Item::failed(&user, &e),
            });
        }
        AdCommand::Set {
            user, no_backup, ..
        } => {
            let photo = prepared_photo.unwrap_or_default();
            let opts = write_options(store, no_backup)?;
            items.push(match set(&dir, &lookup, &user, &photo, &opts).await {
                Ok(item) => item,
                Err(e) => Item::failed(&user, &e),
            });
        }
        AdCommand::Remove { user, no_backup } => {
            let opts = write_options(store, no_backup)?;
            for u in user {
                items.push(match remove(&dir, &lookup, &u, &opts).await {
                    Ok(item) => item,
                    Err(e) => Item::failed(&u, &e),
                });
            }
        }
        AdCommand::Restore {
            user,
            backup,
            run,
            state_dir,
            no_backup,
        } => {
            let store = store.ok_or_else(|| anyhow!("restore needs a backup folder"))?;
            let opts = if no_backup {
                WriteOptions::without_backup()
            } else {
                WriteOptions::backup_to(store.clone())
            };
            if user.is_empty() {
                let id = backup.unwrap_or_default();
                items.push(match restore_by_id(&dir, &store, &id, &opts).await {
                    Ok(item) => item,
                    Err(e) => Item::failed(&id, &e),
                });
            } else {
                if backup.is_some() && user.len() > 1 {
                    bail!("--backup ID restores one user: give a single --user");
                }
                let before_run = match &run {
                    Some(run) => Some(run_intents(state_dir.as_deref(), run)?),
                    None => None,
                };
                for u in user {
                    let from = match (&backup, &before_run) {
                        (Some(id), _) => RestoreFrom::Id(id.clone()),
                        (None, Some(intents)) => {
                            match before_run_backup(&dir, &lookup, &u, intents).await {
                                Ok(id) => RestoreFrom::Id(id),
                                Err(e) => {
                                    items.push(Item::failed(&u, &e));
                                    continue;
                                }
                            }
                        }
                        (None, None) => RestoreFrom::Latest,
                    };
                    items.push(
                        match restore(&dir, &lookup, &u, &store, &from, &opts).await {
                            Ok(item) => item,
                            Err(e) => Item::failed(&u, &e),
                        },
                    );
                }
            }
        }
        AdCommand::List { user, all } => {
            if user.is_empty() {
                let users = dir
                    .list_users(&ListOptions {
                        base: None,
                        only_with_photo: !all,
                        fetch_photo: true,
                    })
                    .await
                    .context("listing users")?;
                let mut users = users;
                users.sort_by_key(|u| label(u).to_lowercase());
                items.extend(users.iter().map(list_item));
            } else {
                for u in user {
                    items.push(match dir.find_user(&lookup, &u, true).await {
                        Ok(found) => list_item(&found),
                        Err(e) => Item::failed(&u, &e),
                    });
                }
            }
        }
    }
    let _ = dir.unbind().await;
    print_items(&items, conn.json, is_list(&items))?;
    Ok(if items.iter().all(|i| i.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn is_list(items: &[Item]) -> bool {
    items.iter().any(|i| i.has_photo.is_some())
}

fn label(u: &User) -> String {
    u.sam_account_name
        .clone()
        .or_else(|| u.user_principal_name.clone())
        .unwrap_or_else(|| u.dn.clone())
}

fn list_item(u: &User) -> Item {
    let mut item = Item::ok(&label(u));
    item.dn = Some(u.dn.clone());
    item.sam_account_name = u.sam_account_name.clone();
    item.user_principal_name = u.user_principal_name.clone();
    item.mail = u.mail.clone();
    item.has_photo = Some(u.photo.is_some());
    if let Some(p) = &u.photo {
        item.bytes = Some(p.len());
        item.sha256 = Some(sha256_hex(p));
        match photobulk_imaging::probe(p) {
            Ok(info) => {
                item.format = Some(info.format);
                item.width = Some(info.width);
                item.height = Some(info.height);
            }
            Err(e) => item.note = Some(format!("not a recognised image: {e}")),
        }
    }
    item
}

fn prepare_photo(file: &Path, raw: bool) -> anyhow::Result<Vec<u8>> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if raw {
        check_photo_size(&data).with_context(|| format!("{}", file.display()))?;
        return Ok(data);
    }
    let opts = photobulk_imaging::Options {
        targets: vec![photobulk_imaging::Target::ad()],
        ..Default::default()
    };
    let conv = photobulk_imaging::convert(&data, &opts)
        .with_context(|| format!("converting {}", file.display()))?;
    let out = conv
        .outputs
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("converting {}: no output", file.display()))?;
    check_photo_size(&out.jpeg)?;
    Ok(out.jpeg)
}

/// `PHOTOBULK_BACKUP_DIR`, else `STATE/ad-backups` ([`photobulk_engine::locations`]).
pub(crate) fn default_backup_dir() -> Option<PathBuf> {
    photobulk_engine::locations::ad_backup_dir(None, None)
}

pub(crate) fn open_backup_dir(dir: Option<&Path>) -> anyhow::Result<BackupStore> {
    let dir = dir.map(Path::to_path_buf).or_else(default_backup_dir).ok_or_else(|| {
        anyhow!("no backup folder: give --backup-dir DIR (or PHOTOBULK_BACKUP_DIR), or --no-backup to write without one")
    })?;
    Ok(BackupStore::open(&dir)?)
}

fn write_options(store: Option<BackupStore>, no_backup: bool) -> anyhow::Result<WriteOptions> {
    Ok(match (store, no_backup) {
        (_, true) => WriteOptions::without_backup(),
        (Some(s), false) => WriteOptions::backup_to(s),
        (None, false) => bail!("no backup folder"),
    })
}

fn read_password(conn: &ConnArgs) -> anyhow::Result<Password> {
    if let Some(path) = &conn.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --password-file {}", path.display()))?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            bail!("--password-file {} is empty", path.display());
        }
        return Ok(Password::new(line));
    }
    if let Ok(p) = std::env::var("PHOTOBULK_LDAP_PASSWORD") {
        if !p.is_empty() {
            return Ok(Password::new(p));
        }
    }
    if std::io::stdin().is_terminal() {
        return prompt_password(conn.bind.as_deref().unwrap_or(""));
    }
    bail!("no password: set PHOTOBULK_LDAP_PASSWORD or give --password-file (stdin is not a terminal, so no prompt)")
}

/// Prompt on the terminal with echo off. The workspace forbids `unsafe` (no termios calls), so
/// echo is switched with `stty` on `/dev/tty`; if that is not possible the prompt is refused
/// rather than showing the password.
fn prompt_password(bind: &str) -> anyhow::Result<Password> {
    use std::process::{Command, Stdio};
    let tty =
        std::fs::File::open("/dev/tty").context("opening the terminal for the password prompt")?;
    let stty = |arg: &str, tty: &std::fs::File| -> anyhow::Result<()> {
        let ok = Command::new("stty")
            .arg(arg)
            .stdin(Stdio::from(tty.try_clone()?))
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("cannot turn terminal echo {arg:?} for the password prompt: set PHOTOBULK_LDAP_PASSWORD or give --password-file");
        }
        Ok(())
    };
    stty("-echo", &tty)?;
    eprint!("LDAP password for {bind}: ");
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    let restored = stty("echo", &tty);
    eprintln!();
    read.context("reading the password")?;
    restored?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        bail!("empty password");
    }
    Ok(Password::new(pw))
}

/// The credentials `conn` asks for: Kerberos, a simple bind (reads the password), anonymous.
fn credentials(conn: &ConnArgs) -> anyhow::Result<Credentials> {
    Ok(match conn.auth.method().resolve(conn.bind.is_some()) {
        AuthMethod::Simple => {
            let bind = conn.bind.clone().ok_or_else(|| {
                anyhow!("--auth simple needs --bind NAME (and a password); without --bind, --auth auto signs in with Kerberos")
            })?;
            Credentials::Simple {
                bind,
                password: read_password(conn)?,
            }
        }
        AuthMethod::Kerberos => {
            if conn.bind.is_some() {
                bail!("--bind is for a simple bind: Kerberos signs in as the ticket's principal (drop --bind, or use --auth simple)");
            }
            Credentials::Kerberos { spn_host: None }
        }
        _ => Credentials::Anonymous,
    })
}

/// Connect as `conn` says: to --server, or to a DC of the domain found in DNS (named on
/// stderr, with any DC skipped on the way).
pub(crate) async fn connect(conn: &ConnArgs) -> anyhow::Result<Directory> {
    let creds = credentials(conn)?;
    let method = conn.auth.method().resolve(conn.bind.is_some());
    let mut opts = ConnectOptions::new(photobulk_directory::server_url(
        conn.server.as_deref().unwrap_or_default(),
        method,
    ));
    opts.starttls = conn.starttls;
    opts.ca_file = conn.ca_file.clone();
    opts.insecure_skip_verify = conn.insecure_skip_verify;
    opts.allow_plaintext_bind = conn.allow_plaintext_bind;
    opts.base_dn = conn.base.clone();
    opts.timeout = Duration::from_secs(conn.timeout.max(1));
    opts.connect_timeout = opts.connect_timeout.min(opts.timeout);
    if conn.server.is_some() {
        return Ok(Directory::connect(&opts, &creds).await?);
    }
    let locator = Locator {
        dns_server: match conn.dns_server.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(
                locate::parse_dns_server(s)
                    .ok_or_else(|| anyhow!("--dns-server {s:?}: expected IP or IP:PORT"))?,
            ),
            None => None,
        },
        timeout: Some(Duration::from_secs(conn.timeout.clamp(1, 5))),
    };
    let (domain, source) = match conn.domain.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => (d.trim_end_matches('.').to_ascii_lowercase(), "--domain"),
        None => {
            // Kerberos without a ticket says so before anything else; otherwise the ticket's
            // realm (if any) is one source of the domain.
            let ticket = match creds {
                Credentials::Kerberos { .. } => kerberos::current_ticket()?,
                _ => kerberos::current_ticket().ok().flatten(),
            };
            locate::default_domain(ticket.as_ref().and_then(|t| t.realm()))
                .ok_or(DirectoryError::NoDomain)?
        }
    };
    let dir = Directory::connect_located(&domain, &locator, &opts, &creds).await?;
    if let Some(l) = dir.located() {
        for s in &l.skipped {
            eprintln!("photobulk: skipped domain controller {s}");
        }
        eprintln!(
            "photobulk: using domain controller {} ({}) from DNS {} (domain from {source}); signed in as {}",
            l.dc.host,
            dir.url(),
            l.srv_name,
            dir.signed_in()
        );
    }
    Ok(dir)
}

/// `photobulk ad whoami`.
async fn whoami(dir: &Directory, json: bool) -> anyhow::Result<ExitCode> {
    let server_says = dir.whoami().await.unwrap_or(None);
    let sign_in = dir.signed_in();
    if json {
        let v = serde_json::json!({
            "server": dir.url(),
            "server_kind": dir.server().kind,
            "dns_host_name": dir.server().dns_host_name,
            "base": dir.base().ok(),
            "sign_in": sign_in,
            "authz_id": server_says,
            "located": dir.located(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("server:    {}", dir.url());
    if let Some(l) = dir.located() {
        let at = l.address.map(|a| format!(" at {a}")).unwrap_or_default();
        println!(
            "found:     {}{at} from DNS {} (priority {}, weight {})",
            l.dc.host, l.srv_name, l.dc.priority, l.dc.weight
        );
        for s in &l.skipped {
            println!("skipped:   {s}");
        }
    }
    println!("signed in: {sign_in}");
    if let Some(spn) = &sign_in.service_principal {
        println!("service:   {spn}");
    }
    if let Some(id) = server_says {
        println!("server says: {id}");
    }
    println!(
        "directory: {:?}, {}",
        dir.server().kind,
        dir.base().unwrap_or("(no base)")
    );
    Ok(ExitCode::SUCCESS)
}

async fn get(dir: &Directory, by: &Lookup, user: &str, out: &Path) -> Result<Item, DirectoryError> {
    let found = dir.find_user(by, user, true).await?;
    let mut item = Item::ok(user);
    item.dn = Some(found.dn.clone());
    let Some(photo) = found.photo else {
        let mut item = Item::failed_other(
            user,
            ErrorKind::NoPhoto,
            format!("{} has no thumbnailPhoto", found.dn),
        );
        item.dn = Some(found.dn);
        return Ok(item);
    };
    if let Err(e) = std::fs::write(out, &photo) {
        let mut item = Item::failed_other(
            user,
            ErrorKind::Io,
            format!("writing {}: {e}", out.display()),
        );
        item.dn = Some(found.dn);
        return Ok(item);
    }
    item.bytes = Some(photo.len());
    item.sha256 = Some(sha256_hex(&photo));
    item.file = Some(out.display().to_string());
    Ok(item)
}

async fn set(
    dir: &Directory,
    by: &Lookup,
    user: &str,
    photo: &[u8],
    opts: &WriteOptions,
) -> Result<Item, DirectoryError> {
    let found = dir.find_user(by, user, false).await?;
    let outcome = dir.set_photo(&found.dn, photo, opts).await?;
    let mut item = Item::ok(user);
    item.dn = Some(outcome.dn);
    item.bytes = Some(outcome.bytes);
    item.sha256 = Some(sha256_hex(photo));
    item.backup_id = outcome.backup.map(|b| b.id);
    Ok(item)
}

async fn remove(
    dir: &Directory,
    by: &Lookup,
    user: &str,
    opts: &WriteOptions,
) -> Result<Item, DirectoryError> {
    let found = dir.find_user(by, user, false).await?;
    let outcome = dir.remove_photo(&found.dn, opts).await?;
    let mut item = Item::ok(user);
    item.dn = Some(outcome.dn);
    item.backup_id = outcome.backup.map(|b| b.id);
    Ok(item)
}

async fn restore(
    dir: &Directory,
    by: &Lookup,
    user: &str,
    store: &BackupStore,
    from: &RestoreFrom,
    opts: &WriteOptions,
) -> Result<Item, DirectoryError> {
    let found = dir.find_user(by, user, false).await?;
    let outcome = dir.restore_photo(&found, store, from, opts).await?;
    let mut item = Item::ok(user);
    item.dn = Some(outcome.dn);
    item.bytes = Some(outcome.restored.bytes);
    item.sha256 = outcome.restored.sha256.clone();
    item.has_photo = None;
    item.restored_id = Some(outcome.restored.id);
    item.backup_id = outcome.backup.map(|b| b.id);
    if item.sha256.is_none() {
        item.note = Some("the backup had no photo: photo removed".into());
    }
    Ok(item)
}

/// The journal's first intents of import run `run` (their backups hold the pre-run photos).
fn run_intents(
    state_dir: Option<&Path>,
    run: &str,
) -> anyhow::Result<Vec<photobulk_engine::journal::Intent>> {
    let state = photobulk_engine::locations::state_dir(state_dir)
        .ok_or_else(|| anyhow!("no state folder: give --state-dir DIR (or PHOTOBULK_STATE_DIR)"))?;
    let path = state.join(photobulk_engine::locations::IMPORT_JOURNAL);
    photobulk_engine::Journal::read_only(&path)?
        .first_intents(run)
        .with_context(|| format!("in {}", path.display()))
}

async fn before_run_backup(
    dir: &Directory,
    by: &Lookup,
    user: &str,
    intents: &[photobulk_engine::journal::Intent],
) -> Result<String, DirectoryError> {
    let found = dir.find_user(by, user, false).await?;
    match intents
        .iter()
        .find(|i| i.is_for(&found))
        .and_then(|i| i.backup_id.clone())
    {
        Some(id) => Ok(id),
        None => Err(DirectoryError::BackupNotFound(format!(
            "{}: the run did not write this user (or wrote it without a backup)",
            found.dn
        ))),
    }
}

async fn restore_by_id(
    dir: &Directory,
    store: &BackupStore,
    id: &str,
    opts: &WriteOptions,
) -> Result<Item, DirectoryError> {
    let (user, outcome) = dir.restore_backup(store, id, opts).await?;
    let mut item = Item::ok(&label(&user));
    item.dn = Some(outcome.dn);
    item.bytes = Some(outcome.restored.bytes);
    item.sha256 = outcome.restored.sha256.clone();
    item.restored_id = Some(outcome.restored.id);
    item.backup_id = outcome.backup.map(|b| b.id);
    if item.sha256.is_none() {
        item.note = Some("the backup had no photo: photo removed".into());
    }
    Ok(item)
}

fn print_items(items: &[Item], json: bool, list: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, items)?;
        writeln!(out)?;
        return Ok(());
    }
    if list {
        writeln!(out, "{:<24} {:>7} {:>9}  DN", "USER", "BYTES", "SIZE")?;
        for i in items {
            if !i.ok {
                continue;
            }
            let bytes = i.bytes.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
            let dims = match (i.width, i.height) {
                (Some(w), Some(h)) => format!("{w}x{h}"),
                _ if i.bytes.is_some() => "?".into(),
                _ => "-".into(),
            };
            writeln!(
                out,
                "{:<24} {:>7} {:>9}  {}",
                i.user,
                bytes,
                dims,
                i.dn.as_deref().unwrap_or("")
            )?;
        }
        let with = items.iter().filter(|i| i.has_photo == Some(true)).count();
        writeln!(
            out,
            "{} users, {} with a photo",
            items.iter().filter(|i| i.ok).count(),
            with
        )?;
    } else {
        for i in items.iter().filter(|i| i.ok) {
            let mut line = format!("{}: ok", i.user);
            if let Some(f) = &i.file {
                line.push_str(&format!(", {} bytes written to {f}", i.bytes.unwrap_or(0)));
            } else if let Some(r) = &i.restored_id {
                line.push_str(&format!(", restored backup {r}"));
            } else if let Some(b) = i.bytes {
                line.push_str(&format!(", {b} bytes written"));
            } else {
                line.push_str(", photo removed");
            }
            if let Some(b) = &i.backup_id {
                line.push_str(&format!(" (previous value backed up as {b})"));
            }
            if let Some(n) = &i.note {
                line.push_str(&format!(" [{n}]"));
            }
            writeln!(out, "{line}")?;
        }
    }
    for i in items.iter().filter(|i| !i.ok) {
        if let Some(e) = &i.error {
            let retry = if e.retryable { " (retryable)" } else { "" };
            eprintln!("photobulk ad: {}: {}{retry}", i.user, e.message);
        }
    }
    Ok(())
}
