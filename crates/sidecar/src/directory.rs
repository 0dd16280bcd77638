//! `directory.connect` and the single-user photo methods (`photo.get`, `photo.set`,
//! `photo.remove`, `photo.restore`) over `photobulk_directory`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use photobulk_directory::{
    check_photo_size, sha256_hex, AuthMethod, BackupStore, ConnectOptions, Credentials, Directory,
    Locator, Password, RestoreFrom, WriteOptions,
};
use photobulk_imaging::{Options, Target};
use photobulk_protocol::methods as m;
use photobulk_protocol::{ErrorCode, ResponseError};

use crate::common::{crop, lookup, to_value, write_options, Outcome};
use crate::ctx::Ctx;
use crate::map;
use crate::session::Bound;

pub(crate) async fn connect(p: m::ConnectParams, ctx: &Ctx) -> Outcome {
    let invalid = |msg: &str| ResponseError::new(ErrorCode::InvalidParams, msg.to_string());
    let asked = match p.auth.as_deref() {
        None => AuthMethod::Auto,
        Some(a) => AuthMethod::parse(a)
            .ok_or_else(|| invalid("auth must be auto, kerberos, simple or anonymous"))?,
    };
    let method = asked.resolve(p.bind.is_some());
    let creds = match method {
        AuthMethod::Simple => match (&p.bind, &p.password) {
            (Some(bind), Some(pw)) => Credentials::Simple {
                bind: bind.clone(),
                password: Password::new(pw.clone()),
            },
            (Some(_), None) => return Err(invalid("bind given without password")),
            (None, _) => return Err(invalid("auth simple needs bind and password")),
        },
        AuthMethod::Kerberos => {
            if p.bind.is_some() {
                return Err(invalid(
                    "bind is for a simple bind: Kerberos signs in as the current user (leave bind and password out)",
                ));
            }
            Credentials::Kerberos { spn_host: None }
        }
        _ => Credentials::Anonymous,
    };
    let mut opts = ConnectOptions::new(photobulk_directory::server_url(&p.server, method));
    opts.starttls = p.starttls;
    opts.ca_file = p.ca_file.as_ref().map(PathBuf::from);
    opts.insecure_skip_verify = p.insecure_skip_verify;
    opts.allow_plaintext_bind = p.allow_plaintext_bind;
    opts.base_dn = p.base.clone();
    if let Some(t) = p.timeout_seconds {
        opts.timeout = Duration::from_secs(t.max(1));
        opts.connect_timeout = opts.connect_timeout.min(opts.timeout);
    }
    let backup_dir = p
        .backup_dir
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| ctx.session.default_backup_dir().map(Path::to_path_buf));
    let backup = match &backup_dir {
        Some(d) => Some(BackupStore::open(d).map_err(|e| map::directory(&e))?),
        None => None,
    };
    photobulk_directory::install_crypto_provider();
    let dir = if p.server.trim().is_empty() {
        let locator = Locator {
            dns_server: match p.dns_server.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    photobulk_directory::locate::parse_dns_server(s)
                        .ok_or_else(|| invalid("dnsServer must be IP or IP:PORT"))?,
                ),
                None => None,
            },
            timeout: Some(opts.connect_timeout.min(Duration::from_secs(5))),
        };
        let domain = match p.domain.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => d.to_string(),
            None => {
                let ticket = match creds {
                    Credentials::Kerberos { .. } => photobulk_directory::kerberos::current_ticket()
                        .map_err(|e| map::directory(&e))?,
                    _ => photobulk_directory::kerberos::current_ticket()
                        .ok()
                        .flatten(),
                };
                photobulk_directory::locate::default_domain(ticket.as_ref().and_then(|t| t.realm()))
                    .map(|(d, _)| d)
                    .ok_or_else(|| map::directory(&photobulk_directory::DirectoryError::NoDomain))?
            }
        };
        Directory::connect_located(&domain, &locator, &opts, &creds).await
    } else {
        Directory::connect(&opts, &creds).await
    }
    .map_err(|e| map::directory(&e))?;
    // The method and the DC, never the ticket or the password.
    ctx.server.log(format_args!(
        "connected to {} ({:?}), signed in with {}",
        dir.url(),
        dir.server().kind,
        dir.signed_in().method
    ));
    // environment.detect probes this very DC again.
    opts.url = dir.url().to_string();
    opts.address = dir.located().and_then(|l| l.address);
    let sign_in = dir.signed_in().clone();
    let bound_as = match &sign_in.principal {
        Some(p) => Some(p.clone()),
        None => dir.whoami().await.ok().flatten(),
    };
    let settings = std::sync::Arc::new(photobulk_engine::environment::DirectorySettings {
        connect: opts,
        credentials: creds,
    });
    let result = m::ConnectResult {
        server_kind: serde_json::to_value(dir.server().kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "generic".into()),
        server: Some(dir.url().to_string()),
        auth: Some(sign_in.method.to_string()),
        bound_as,
        protection: serde_json::to_value(sign_in.protection)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
        dc: dir.located().map(|l| l.dc.host.clone()),
        vendor_name: dir.server().vendor_name.clone(),
        base: dir.base().ok().map(str::to_string),
        backup_dir: backup_dir.as_ref().map(|d| d.display().to_string()),
    };
    let old = ctx
        .session
        .bind(Bound {
            dir,
            backup,
            backup_dir,
            settings,
        })
        .await;
    if let Some(old) = old {
        let _ = old.dir.unbind().await;
    }
    to_value(&result)
}

pub(crate) async fn photo_get(p: m::PhotoGetParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let u = b
        .dir
        .find_user(&by, &p.identity, true)
        .await
        .map_err(|e| map::directory(&e))?;
    let mut info = m::PhotoInfo {
        identity: p.identity.clone(),
        dn: u.dn.clone(),
        has_photo: u.photo.is_some(),
        ..Default::default()
    };
    if let Some(photo) = &u.photo {
        info.bytes = Some(photo.len());
        info.sha256 = Some(sha256_hex(photo));
        if let Ok(s) = photobulk_imaging::probe(photo) {
            info.format = Some(s.format);
            info.width = Some(s.width);
            info.height = Some(s.height);
        }
        if let Some(out) = &p.out {
            std::fs::write(out, photo).map_err(|e| map::io(out, &e))?;
            info.file = Some(out.clone());
        }
    }
    to_value(&info)
}

pub(crate) async fn photo_set(p: m::PhotoSetParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let wo = write_options(&b, p.no_backup)?;
    let path = PathBuf::from(&p.path);
    let (raw, crop_) = (p.raw, crop(p.crop));
    let photo = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ResponseError> {
        let data = std::fs::read(&path).map_err(|e| map::io(path.display(), &e))?;
        if raw {
            return Ok(data);
        }
        let opts = Options {
            crop: crop_,
            targets: vec![Target::ad()],
            ..Options::default()
        };
        let conv = photobulk_imaging::convert(&data, &opts).map_err(|e| map::imaging(&e))?;
        Ok(conv
            .outputs
            .into_iter()
            .next()
            .map(|o| o.jpeg)
            .unwrap_or_default())
    })
    .await
    .map_err(|e| ResponseError::new(ErrorCode::InternalError, e.to_string()))??;
    check_photo_size(&photo).map_err(|e| map::directory(&e))?;
    let u = find(&b, &by, &p.identity).await?;
    let o = b
        .dir
        .set_photo(&u.dn, &photo, &wo)
        .await
        .map_err(|e| map::directory(&e))?;
    to_value(&m::PhotoWriteResult {
        identity: p.identity,
        dn: o.dn,
        bytes: o.bytes,
        sha256: Some(sha256_hex(&photo)),
        backup_id: o.backup.map(|r| r.id),
        restored_id: None,
    })
}

pub(crate) async fn photo_remove(p: m::PhotoRemoveParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let wo = write_options(&b, p.no_backup)?;
    let u = find(&b, &by, &p.identity).await?;
    let o = b
        .dir
        .remove_photo(&u.dn, &wo)
        .await
        .map_err(|e| map::directory(&e))?;
    to_value(&m::PhotoWriteResult {
        identity: p.identity,
        dn: o.dn,
        bytes: 0,
        backup_id: o.backup.map(|r| r.id),
        ..Default::default()
    })
}

pub(crate) async fn photo_restore(p: m::PhotoRestoreParams, ctx: &Ctx) -> Outcome {
    let b = ctx.session.bound().await?;
    let by = lookup(&p.match_by)?;
    let store = b
        .backup
        .clone()
        .ok_or_else(|| map::directory(&photobulk_directory::DirectoryError::BackupRequired))?;
    let wo = if p.no_backup {
        WriteOptions::without_backup()
    } else {
        WriteOptions::backup_to(store.clone())
    };
    let u = find(&b, &by, &p.identity).await?;
    let from = p
        .backup_id
        .clone()
        .map(RestoreFrom::Id)
        .unwrap_or(RestoreFrom::Latest);
    let o = b
        .dir
        .restore_photo(&u, &store, &from, &wo)
        .await
        .map_err(|e| map::directory(&e))?;
    to_value(&m::PhotoWriteResult {
        identity: p.identity,
        dn: o.dn,
        bytes: o.restored.bytes,
        sha256: o.restored.sha256.clone(),
        backup_id: o.backup.map(|r| r.id),
        restored_id: Some(o.restored.id),
    })
}

/// The bound directory's user named `identity`, or the protocol's error.
async fn find(
    b: &Bound,
    by: &photobulk_directory::Lookup,
    identity: &str,
) -> Result<photobulk_directory::User, ResponseError> {
    b.dir
        .find_user(by, identity, false)
        .await
        .map_err(|e| map::directory(&e))
}
