//! `photobulk graph`: Exchange Online / Entra ID photos through Microsoft Graph.
//!
//! A thin layer over `photobulk_graph`: parse arguments, get the credentials safely, convert
//! images to the 648x648 HD JPEG through `photobulk_imaging` (unless `--raw`), print results.
//! Every user is handled on its own; the exit code is 1 when any item failed.
//!
//! # Credentials (never from a command-line value)
//! - Access token handed in by the caller: `PHOTOBULK_GRAPH_ACCESS_TOKEN`, `--access-token-file`,
//!   or `--access-token-stdin` (first line). Used as is; not refreshed.
//! - Certificate: `--certificate CERT.pem` and `--certificate-key KEY.pem` (RSA; may be one file).
//! - Client secret: `PHOTOBULK_GRAPH_CLIENT_SECRET` or `--client-secret-file` (first line).
//!
//! The tenant and client id come from `--tenant`/`--client-id` or `PHOTOBULK_GRAPH_TENANT`/
//! `PHOTOBULK_GRAPH_CLIENT_ID` (not secrets). `--cloud` picks a national cloud;
//! `--authority-url`/`--graph-url` override both URLs (the test emulator).
//!
//! # Backups
//! `photo set`, `photo remove` and `upload` save the current cloud photo first, to
//! `--backup-dir` (default `$PHOTOBULK_BACKUP_DIR/graph`, else `STATE/graph-backups`, where
//! STATE is `PHOTOBULK_STATE_DIR`, else `%LOCALAPPDATA%\PhotoBulk` on Windows,
//! `~/Library/Application Support/PhotoBulk` on macOS, `~/.local/state/photobulk` elsewhere;
//! see [`photobulk_engine::locations`]),
//! unless `--no-backup`. `photo restore` puts the latest backup back, or the photo the user had
//! before run `--run RUN`, or backup `--id`.
//!
//! # Bulk uploads and the journal
//! `upload FILES-OR-FOLDERS…` maps each file to a user by the file-name rule (the account is the
//! name up to the first space; in the cloud a full UPN, mail or object id, else the alias
//! `mailNickname`, the UPN prefix or the mail prefix — [`photobulk_graph::UserIndex`]; a name two
//! users answer to is refused), converts, and uploads with at most `--concurrency` (4) photo
//! requests in flight. Each upload is a step of a **run** in `--journal` (default
//! `BACKUP_DIR/upload-journal.jsonl`): an intent naming the pre-run backup before it, a done
//! line after Graph confirmed it. Running the same command again uploads only what is left or
//! changed ("unchanged" means the journal holds the same bytes for that user) and, until the
//! run has ended complete, continues the same run without backing anyone up twice; `graph
//! restore --run RUN` puts every user of the run back as it was before. `--plan` shows who each
//! file matches and whether it would be set, replaced or left unchanged, and writes nothing.
//!
//! # JSON output (`--json`)
//! One array, one object per item: `{"user":…,"ok":true,"status":"uploaded","upn":…,"id":…,
//! "bytes":…,"sha256":…,"backup_id":…,"file":…,"run":…}` or `{"user":…,"ok":false,"file":…,
//! "error":{"kind":…,"retryable":…,"message":…}}` (`file` on every upload item, failed or not;
//! the kinds of `photobulk import`: `image` for a file that cannot be converted — its message
//! says "empty" for a zero-byte file —, `no_account`, `unreadable`, `superseded` (a newer file
//! names the same account), `user_not_found`, `ambiguous`, `duplicate`, Graph's own). With
//! `--plan`, `status` is `set`, `replace`, `unchanged`, `failed` or `skipped`. The job itself is
//! the engine's ([`photobulk_engine::cloud`], shared with the sidecar's `ExchangeOnline` target):
//! files are converted and uploaded as a stream, a few at a time, so memory stays bounded
//! however many photos there are; Ctrl+C stops conversions and lets uploads in flight finish.

use photobulk_kind::{ErrorKind, ItemError};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Subcommand, ValueEnum};
use photobulk_engine::cloud::{CloudAction, CloudItem, CloudJob, CloudReport};
use photobulk_engine::Cancel;
use photobulk_graph::{
    sha256_hex, CertificateCredential, Cloud, CloudBackupStore, Credentials, GraphClient,
    GraphConfig, GraphError, Lookup, RestoreFrom, Secret, UploadJournal, WriteOptions,
};
use serde::Serialize;

/// Exchange Online / Entra ID photos through Microsoft Graph.
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    conn: GraphConnArgs,
    /// Trust this PEM CA bundle instead of the system roots
    #[arg(long, global = true, value_name = "PATH")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: GraphCommand,
    /// Print results as JSON
    #[arg(long, global = true)]
    json: bool,
    /// How converted photos become square (`photo set`, `upload`; not with --raw)
    #[arg(long, global = true, value_enum, default_value_t = crate::CropArg::Face)]
    crop: crate::CropArg,
}

/// How to reach and sign in to Graph; shared by `photobulk graph`, `sync-hd-to-ad` and `env`
/// (the CA file is not in here: those commands also talk LDAP, whose `--ca-file` it would clash
/// with).
#[derive(clap::Args, Debug)]
pub(crate) struct GraphConnArgs {
    /// Tenant id or domain (e.g. contoso.onmicrosoft.com)
    #[arg(long, global = true, env = "PHOTOBULK_GRAPH_TENANT")]
    tenant: Option<String>,
    /// Application (client) id of the app registration
    #[arg(long, global = true, env = "PHOTOBULK_GRAPH_CLIENT_ID")]
    client_id: Option<String>,
    /// National cloud
    #[arg(long, global = true, value_enum, default_value_t = CloudArg::Global)]
    cloud: CloudArg,
    /// Sign-in authority URL (overrides --cloud)
    #[arg(long, global = true, value_name = "URL")]
    authority_url: Option<String>,
    /// Graph URL with version, e.g. https://graph.microsoft.com/v1.0 (overrides --cloud)
    #[arg(long, global = true, value_name = "URL")]
    graph_url: Option<String>,
    /// Read the client secret from the first line of this file (else PHOTOBULK_GRAPH_CLIENT_SECRET)
    #[arg(long, global = true, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
    /// Certificate (PEM) of the app registration; sign in with a signed assertion
    #[arg(long, global = true, value_name = "PATH", requires = "certificate_key")]
    certificate: Option<PathBuf>,
    /// RSA private key (PEM) of --certificate
    #[arg(long, global = true, value_name = "PATH")]
    certificate_key: Option<PathBuf>,
    /// Read an access token from the first line of this file (else PHOTOBULK_GRAPH_ACCESS_TOKEN)
    #[arg(long, global = true, value_name = "PATH")]
    access_token_file: Option<PathBuf>,
    /// Read an access token from the first line of stdin
    #[arg(long, global = true)]
    access_token_stdin: bool,
    /// Photo requests in flight (Graph allows 4 per app)
    #[arg(long, global = true, default_value_t = photobulk_graph::DEFAULT_PHOTO_CONCURRENCY)]
    concurrency: usize,
    /// Attempts per request (throttling, 503/504, resets, timeouts)
    #[arg(long, global = true, default_value_t = 8)]
    max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CloudArg {
    Global,
    UsGov,
    UsGovDod,
    China,
}

#[derive(Subcommand, Debug)]
enum GraphCommand {
    /// List users (id, UPN, mail, display name)
    Users,
    /// Show one user (by id, UPN, mail or alias)
    User { user: String },
    /// Read, write, remove and restore one user's photo
    #[command(subcommand)]
    Photo(PhotoCommand),
    /// Upload a folder of photos (file name = alias up to the first space), resumable
    Upload(UploadArgs),
    /// Undo a bulk upload: every user of run RUN back to its photo from before the run (or none)
    Restore {
        /// The run id (`photobulk runs`, or the `run:` line of `graph upload`)
        #[arg(long, value_name = "RUN")]
        run: String,
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        /// The upload journal (default BACKUP_DIR/upload-journal.jsonl)
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct BackupArgs {
    /// Backup folder (default: PHOTOBULK_BACKUP_DIR/graph, else STATE/graph-backups; STATE is
    /// PHOTOBULK_STATE_DIR, else ~/.local/state/photobulk, %LOCALAPPDATA%\PhotoBulk on Windows)
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// Write without backing up the current photo
    #[arg(long, conflicts_with = "backup_dir")]
    no_backup: bool,
}

#[derive(Subcommand, Debug)]
enum PhotoCommand {
    /// Photo metadata, and the photo itself with --out
    Get {
        user: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace the photo (converted to 648x648 unless --raw)
    Set {
        user: String,
        file: PathBuf,
        /// Upload the file as is (must be a JPEG of at most 4 MB)
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        backup: BackupArgs,
    },
    /// Remove the photo
    Remove {
        user: String,
        #[command(flatten)]
        backup: BackupArgs,
    },
    /// Put a backup back: the latest before a replace/remove, the photo from before run --run,
    /// or backup --id
    Restore {
        user: String,
        #[arg(long, conflicts_with = "run")]
        id: Option<String>,
        /// Put back the photo (or no photo) the user had before this run
        #[arg(long, value_name = "RUN")]
        run: Option<String>,
        #[arg(long, value_name = "DIR")]
        backup_dir: Option<PathBuf>,
        /// The upload journal, for --run (default BACKUP_DIR/upload-journal.jsonl)
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct UploadArgs {
    /// Photo files and/or folders
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Take photos from sub-folders too
    #[arg(long)]
    recurse: bool,
    /// Upload files as they are (JPEGs of at most 4 MB) instead of converting to 648x648
    #[arg(long)]
    raw: bool,
    /// The upload journal (default BACKUP_DIR/upload-journal.jsonl)
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Upload even users the journal records with the same photo
    #[arg(long)]
    force: bool,
    /// Show who each file matches and whether it would be set, replaced or left unchanged;
    /// write nothing (no backup, no journal)
    #[arg(long, alias = "dry-run")]
    plan: bool,
    #[command(flatten)]
    backup: BackupArgs,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Serialize)]
struct Item {
    user: String,
    ok: bool,
    status: Option<&'static str>,
    id: Option<String>,
    upn: Option<String>,
    mail: Option<String>,
    display_name: Option<String>,
    has_photo: Option<bool>,
    width: Option<u32>,
    height: Option<u32>,
    bytes: Option<usize>,
    sha256: Option<String>,
    backup_id: Option<String>,
    restored_id: Option<String>,
    file: Option<String>,
    /// The run (bulk uploads and restores): `graph restore --run` undoes it.
    run: Option<String>,
    error: Option<ItemError>,
}

impl Item {
    fn failed(user: &str, e: &GraphError) -> Self {
        Item {
            user: user.to_string(),
            error: Some(ItemError::with(e.kind(), e.is_retryable(), e.to_string())),
            ..Item::default()
        }
    }
    fn other(user: &str, kind: ErrorKind, message: String) -> Self {
        Item {
            user: user.to_string(),
            error: Some(ItemError::new(kind, message)),
            ..Item::default()
        }
    }
    fn of_user(key: &str, u: &photobulk_graph::User) -> Self {
        Item {
            user: key.to_string(),
            ok: true,
            id: Some(u.id.clone()),
            upn: Some(u.user_principal_name.clone()),
            mail: u.mail.clone(),
            display_name: u.display_name.clone(),
            ..Item::default()
        }
    }
}

pub async fn run(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let graph = connect(&args.conn, args.ca_file.as_deref())?;
    let json = args.json;
    let crop = args.crop.to_crop();
    let items = match args.command {
        GraphCommand::Users => {
            let users = graph.list_users().await?;
            users
                .iter()
                .map(|u| Item::of_user(&u.user_principal_name, u))
                .collect()
        }
        GraphCommand::User { user } => vec![match graph.find_user(Lookup::Auto, &user).await {
            Ok(u) => Item::of_user(&user, &u),
            Err(e) => Item::failed(&user, &e),
        }],
        GraphCommand::Photo(cmd) => vec![photo(&graph, cmd, crop).await],
        GraphCommand::Upload(a) => return upload(&graph, a, json, crop).await,
        GraphCommand::Restore {
            run,
            backup_dir: d,
            journal,
        } => return restore_run(&graph, &run, d.as_deref(), journal.as_deref(), json).await,
    };
    print_items(&items, json)?;
    Ok(if items.iter().all(|i| i.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn first_line(text: &str, what: &str) -> anyhow::Result<Secret> {
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        bail!("{what} is empty");
    }
    Ok(Secret::new(line))
}

fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    first_line(&text, &format!("{what} {}", path.display()))
}

fn credentials(conn: &GraphConnArgs) -> anyhow::Result<Credentials> {
    let token = if conn.access_token_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the access token from stdin")?;
        Some(first_line(&s, "the access token on stdin")?)
    } else if let Some(p) = &conn.access_token_file {
        Some(read_secret_file(p, "--access-token-file")?)
    } else {
        std::env::var("PHOTOBULK_GRAPH_ACCESS_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Secret::new(t.trim()))
    };
    if let Some(t) = token {
        return Ok(Credentials::AccessToken(t));
    }
    let tenant = conn
        .tenant
        .clone()
        .context("no --tenant (or PHOTOBULK_GRAPH_TENANT)")?;
    let client_id = conn
        .client_id
        .clone()
        .context("no --client-id (or PHOTOBULK_GRAPH_CLIENT_ID)")?;
    if let (Some(cert), Some(key)) = (&conn.certificate, &conn.certificate_key) {
        let c = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        let k = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
        return Ok(Credentials::Certificate {
            tenant,
            client_id,
            certificate: CertificateCredential::from_pem(&c, &k)?,
        });
    }
    let secret = match &conn.client_secret_file {
        Some(p) => read_secret_file(p, "--client-secret-file")?,
        None => match std::env::var("PHOTOBULK_GRAPH_CLIENT_SECRET") {
            Ok(s) if !s.trim().is_empty() => Secret::new(s.trim()),
            _ => bail!(
                "no credentials: set PHOTOBULK_GRAPH_CLIENT_SECRET or give --client-secret-file, \
                 --certificate/--certificate-key, or an access token (PHOTOBULK_GRAPH_ACCESS_TOKEN, \
                 --access-token-file, --access-token-stdin)"
            ),
        },
    };
    Ok(Credentials::ClientSecret {
        tenant,
        client_id,
        secret,
    })
}

impl GraphConnArgs {
    /// Whether any Graph sign-in was asked for: a tenant, or an access token (file, stdin or
    /// PHOTOBULK_GRAPH_ACCESS_TOKEN).
    pub(crate) fn configured(&self) -> bool {
        self.tenant.is_some()
            || self.access_token_file.is_some()
            || self.access_token_stdin
            || std::env::var("PHOTOBULK_GRAPH_ACCESS_TOKEN").is_ok_and(|t| !t.trim().is_empty())
    }
}

/// A client for `conn` (credentials from env vars, files or stdin, never argv).
pub(crate) fn connect(conn: &GraphConnArgs, ca_file: Option<&Path>) -> anyhow::Result<GraphClient> {
    let mut cfg = GraphConfig::for_cloud(match conn.cloud {
        CloudArg::Global => Cloud::Global,
        CloudArg::UsGov => Cloud::UsGov,
        CloudArg::UsGovDod => Cloud::UsGovDod,
        CloudArg::China => Cloud::China,
    });
    if let Some(a) = &conn.authority_url {
        cfg.authority_url = a.clone();
    }
    if let Some(g) = &conn.graph_url {
        cfg.graph_url = g.clone();
    }
    cfg.ca_file = ca_file.map(Path::to_path_buf);
    cfg.photo_concurrency = conn.concurrency.max(1);
    cfg.retry.max_attempts = conn.max_attempts.max(1);
    Ok(GraphClient::new(cfg, credentials(conn)?)?)
}

/// `PHOTOBULK_BACKUP_DIR/graph`, else `STATE/graph-backups` ([`photobulk_engine::locations`]).
fn default_backup_dir() -> Option<PathBuf> {
    photobulk_engine::locations::graph_backup_dir(None, None)
}

fn backup_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(d) => Ok(d.to_path_buf()),
        None => default_backup_dir()
            .context("no backup folder: give --backup-dir (or set PHOTOBULK_BACKUP_DIR or HOME)"),
    }
}

fn write_options(b: &BackupArgs) -> anyhow::Result<WriteOptions> {
    if b.no_backup {
        return Ok(WriteOptions::no_backup());
    }
    let dir = backup_dir(b.backup_dir.as_deref())?;
    Ok(WriteOptions::backup_to(CloudBackupStore::open(&dir)?))
}

async fn photo(graph: &GraphClient, cmd: PhotoCommand, crop: photobulk_imaging::Crop) -> Item {
    let key = match &cmd {
        PhotoCommand::Get { user, .. }
        | PhotoCommand::Set { user, .. }
        | PhotoCommand::Remove { user, .. }
        | PhotoCommand::Restore { user, .. } => user.clone(),
    };
    let user = match graph.find_user(Lookup::Auto, &key).await {
        Ok(u) => u,
        Err(e) => return Item::failed(&key, &e),
    };
    let mut item = Item::of_user(&key, &user);
    let result: anyhow::Result<()> = async {
        match cmd {
            PhotoCommand::Get { out, .. } => {
                let meta = graph.photo_meta(&user.id).await?;
                item.has_photo = Some(meta.is_some());
                if let Some(m) = &meta {
                    item.width = m.width;
                    item.height = m.height;
                }
                if let (Some(path), true) = (out, meta.is_some()) {
                    if let Some(bytes) = graph.get_photo(&user.id).await? {
                        std::fs::write(&path, &bytes)
                            .with_context(|| format!("writing {}", path.display()))?;
                        item.bytes = Some(bytes.len());
                        item.sha256 = Some(sha256_hex(&bytes));
                        item.file = Some(path.display().to_string());
                    }
                }
            }
            PhotoCommand::Set {
                file, raw, backup, ..
            } => {
                let opts = write_options(&backup)?;
                let (jpeg, _) = photobulk_engine::hd::make_hd(&file, &key, crop, raw, None)
                    .map_err(|(_, message)| anyhow!(message))?;
                item.bytes = Some(jpeg.len());
                item.sha256 = Some(sha256_hex(&jpeg));
                item.file = Some(file.display().to_string());
                let out = graph.set_photo(&user, jpeg.into(), &opts).await?;
                item.backup_id = out.backup.map(|b| b.id);
                item.status = Some("uploaded");
            }
            PhotoCommand::Remove { backup, .. } => {
                let opts = write_options(&backup)?;
                let out = graph.remove_photo(&user, &opts).await?;
                item.backup_id = out.backup.map(|b| b.id);
                item.has_photo = out.had_photo;
                item.status = Some("removed");
            }
            PhotoCommand::Restore {
                id,
                run,
                backup_dir: d,
                journal,
                ..
            } => {
                let dir = backup_dir(d.as_deref())?;
                let store = CloudBackupStore::open(&dir)?;
                let from = match (id, run) {
                    (Some(id), _) => RestoreFrom::Id(id),
                    (None, Some(run)) => {
                        let jpath = journal.unwrap_or_else(|| {
                            dir.join(photobulk_engine::locations::UPLOAD_JOURNAL)
                        });
                        let j = UploadJournal::read_only(&jpath)?;
                        if !j.has_run(&run) {
                            bail!("no run {run} in {}", jpath.display());
                        }
                        let first = j.first_intent(&run, &user.id).with_context(|| {
                            format!("run {run} did not write to {}", user.user_principal_name)
                        })?;
                        RestoreFrom::Id(first.backup_id.with_context(|| {
                            format!("run {run} wrote this user without a backup (--no-backup)")
                        })?)
                    }
                    (None, None) => RestoreFrom::Latest,
                };
                let opts = WriteOptions::backup_to(store.clone());
                let (rec, out) = graph.restore_photo(&user, &store, &from, &opts).await?;
                item.restored_id = Some(rec.id);
                item.backup_id = out.backup.map(|b| b.id);
                item.status = Some("restored");
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => item,
        Err(e) => match e.downcast_ref::<GraphError>() {
            Some(g) => Item::failed(&key, g),
            None => Item::other(&key, ErrorKind::Io, format!("{e:#}")),
        },
    }
}

async fn upload(
    graph: &GraphClient,
    a: UploadArgs,
    json: bool,
    crop: photobulk_imaging::Crop,
) -> anyhow::Result<ExitCode> {
    let journal_path = match &a.journal {
        Some(p) => p.clone(),
        None => backup_dir(a.backup.backup_dir.as_deref())?
            .join(photobulk_engine::locations::UPLOAD_JOURNAL),
    };
    // A plan opens nothing for writing: no backup folder, no journal file.
    let write = if a.plan {
        WriteOptions::no_backup()
    } else {
        write_options(&a.backup)?
    };
    let journal = Arc::new(if a.plan {
        UploadJournal::read_only(&journal_path)?
    } else {
        UploadJournal::open(&journal_path)?
    });
    let inputs = photobulk_engine::collect(&a.inputs, a.recurse)?;
    let mut keys = photobulk_engine::import::input_keys(&a.inputs);
    keys.push(format!("recurse={}", a.recurse));
    let job_key =
        photobulk_engine::cloud::job_key(&graph.config_graph_url(), &keys, crop, a.raw, a.force);
    let mut job = CloudJob::new(write, journal.clone(), job_key);
    job.crop = crop;
    job.raw = a.raw;
    job.force = a.force;
    let started = std::time::Instant::now();
    let quiet = json || !std::io::stderr().is_terminal();
    let bar = if quiet {
        None
    } else {
        crate::progress::bar(inputs.items.len())
    };
    let on_item = |it: &CloudItem| {
        let line = it.error.as_ref().map(|e| {
            format!(
                "error: {}: {}",
                shown(it.account.as_deref().unwrap_or("")),
                shown(&e.message)
            )
        });
        let label = it.account.as_deref().map(shown);
        crate::progress::item(&bar, label.as_deref(), line, quiet);
    };
    if a.plan {
        let report = job.plan(graph, inputs.items, &on_item).await?;
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        return upload_plan(&report, json);
    }
    let cancel = Cancel::new();
    cancel.on_ctrl_c(|| {
        eprintln!(
            "photobulk: Ctrl+C: finishing the uploads in flight, then stopping \
             (Ctrl+C again quits at once)"
        )
    });
    let report = job.run(graph, inputs.items, &cancel, &on_item).await?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let run = report.run.clone().unwrap_or_default();
    let elapsed = started.elapsed();
    let out: Vec<Item> = report
        .items
        .iter()
        .map(|i| {
            let mut item = cloud_item(i);
            item.run = Some(run.clone());
            item
        })
        .collect();
    let s = &report.summary;
    let failed = out.iter().filter(|i| !i.ok).count();
    if json {
        print_items(&out, true)?;
    } else {
        if quiet {
            for i in out.iter().filter(|i| !i.ok) {
                if let Some(e) = &i.error {
                    eprintln!("error: {}: {}", shown(&i.user), shown(&e.message));
                }
            }
        }
        let st = graph.stats();
        println!(
            "{} photos: {} uploaded, {} unchanged, {failed} failed in {:.1} s \
             ({} requests, {} throttled, {} unavailable, {} network errors, {} token fetches){}",
            out.len(),
            s.uploaded,
            s.unchanged,
            elapsed.as_secs_f64(),
            st.requests,
            st.throttled,
            st.unavailable,
            st.network_errors,
            st.token_fetches,
            if report.cancelled {
                "; cancelled: run the same command again to finish"
            } else {
                ""
            }
        );
        println!("journal: {}", journal.path().display());
        println!(
            "run: {run}{}  (undo with: photobulk graph restore --run {run})",
            if report.resumed { ", resumed" } else { "" }
        );
    }
    Ok(if failed == 0 && !report.cancelled {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A file name or message for the terminal: control characters (NUL, ESC, newlines…) escaped,
/// so a hostile name cannot hide, reorder or forge output lines.
pub(crate) fn shown(s: &str) -> String {
    photobulk_engine::naming::escape_control(s)
}

/// One item of the cloud job as the CLI prints it.
fn cloud_item(it: &CloudItem) -> Item {
    let key = it
        .account
        .clone()
        .unwrap_or_else(|| it.file.display().to_string());
    let mut item = match &it.user {
        Some(u) => Item::of_user(&key, u),
        None => Item {
            user: key,
            ..Item::default()
        },
    };
    item.ok = it.error.is_none();
    item.status = Some(match it.action {
        CloudAction::Uploaded => "uploaded",
        CloudAction::Unchanged => "unchanged",
        CloudAction::WouldSet => "set",
        CloudAction::WouldReplace => "replace",
        CloudAction::Failed => "failed",
        CloudAction::Skipped => "skipped",
    });
    item.has_photo = match it.action {
        CloudAction::WouldSet => Some(false),
        CloudAction::WouldReplace => Some(true),
        _ => None,
    };
    item.bytes = it.hd.as_ref().map(|h| h.bytes);
    item.sha256 = it.hd.as_ref().map(|h| h.sha256.clone());
    item.backup_id = it.backup_id.clone();
    item.file = Some(it.file.display().to_string());
    item.error = it.error.clone();
    item
}

/// `graph upload --plan`: who each file matches and what would happen, nothing written.
fn upload_plan(report: &CloudReport, json: bool) -> anyhow::Result<ExitCode> {
    let out: Vec<Item> = report.items.iter().map(cloud_item).collect();
    let failed = out.iter().filter(|i| !i.ok).count();
    if json {
        print_items(&out, true)?;
    } else {
        for i in &out {
            let file = i.file.as_deref().map(shown).unwrap_or_default();
            match &i.error {
                Some(e) => println!(
                    "{file}\t{}\tFAILED ({}): {}",
                    shown(&i.user),
                    e.kind,
                    shown(&e.message)
                ),
                None => println!(
                    "{file}\t{}\t{}",
                    i.upn.as_deref().unwrap_or(""),
                    i.status.unwrap_or("")
                ),
            }
        }
        let s = &report.summary;
        println!(
            "plan: {} set, {} replace, {} unchanged, {failed} failed; nothing was written",
            s.would_set, s.would_replace, s.unchanged
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `graph restore --run RUN`.
async fn restore_run(
    graph: &GraphClient,
    run: &str,
    dir: Option<&Path>,
    journal: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = backup_dir(dir)?;
    let jpath = journal
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(photobulk_engine::locations::UPLOAD_JOURNAL));
    if !jpath.exists() {
        bail!("no upload journal at {}", jpath.display());
    }
    let journal = UploadJournal::open(&jpath)?;
    if !journal.has_run(run) {
        bail!("no run {run} in {}", jpath.display());
    }
    let store = CloudBackupStore::open(&dir)?;
    let report = photobulk_graph::restore_run(graph, &journal, &store, run, &|_| {}).await?;
    let items: Vec<Item> = report
        .users
        .iter()
        .map(|u| {
            let mut i = Item {
                user: u.upn.clone(),
                ok: u.error.is_none(),
                id: Some(u.user_id.clone()),
                upn: Some(u.upn.clone()),
                status: Some(match (&u.error, u.had_photo) {
                    (Some(_), _) => "failed",
                    (None, Some(false)) => "removed",
                    (None, _) => "restored",
                }),
                restored_id: u.restored_id.clone(),
                backup_id: u.backup_id.clone(),
                has_photo: u.had_photo,
                run: Some(report.run.clone()),
                ..Item::default()
            };
            if let Some(e) = &u.error {
                i.error = Some(ItemError::new(
                    u.error_kind.unwrap_or(ErrorKind::Write),
                    e.clone(),
                ));
            }
            i
        })
        .collect();
    print_items(&items, json)?;
    if !json {
        println!(
            "restore of run {run}: {} restored, {} failed (restore run {}; undo it with \
             photobulk graph restore --run {})",
            report.restored, report.failed, report.run, report.run
        );
    }
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_items(items: &[Item], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(items)?);
        return Ok(());
    }
    for i in items {
        match &i.error {
            Some(e) => println!("{}: FAILED ({}): {}", i.user, e.kind, e.message),
            None => {
                let mut parts = vec![i.user.clone()];
                if let Some(s) = i.status {
                    parts.push(s.to_string());
                }
                if let Some(u) = &i.upn {
                    if *u != i.user {
                        parts.push(u.clone());
                    }
                }
                if let Some(h) = i.has_photo {
                    parts.push(if h {
                        "has a photo".into()
                    } else {
                        "no photo".into()
                    });
                }
                if let (Some(w), Some(h)) = (i.width, i.height) {
                    parts.push(format!("{w}x{h}"));
                }
                if let Some(f) = &i.file {
                    parts.push(f.clone());
                }
                if let Some(b) = &i.backup_id {
                    parts.push(format!("backup {b}"));
                }
                if let Some(r) = &i.restored_id {
                    parts.push(format!("restored {r}"));
                }
                println!("{}", parts.join("  "));
            }
        }
    }
    Ok(())
}
