//! The photo report: for every user in scope, the AD `thumbnailPhoto` next to the cloud photo
//! (Exchange Online / Entra ID through Microsoft Graph, when connected) and, for a run on a
//! photo folder, the file a run would use — with the flags an administrator acts on.
//!
//! One implementation for every door: the CLI (`photobulk report`) and the sidecar
//! (`report.run`, behind `Get-PhotoReport`) both call [`run`] and write with [`Writers`]; they
//! only translate arguments and rows.
//!
//! # Streaming
//! Nothing holds every user or every photo: a whole directory is read with one paged search
//! (photos included, one page in memory), users named one by one are looked up a few at a
//! time, cloud photos are read at most [`CLOUD_IN_FLIGHT`] at once (the Graph client's own
//! throttling rules apply on top), and each [`Item`] is handed to the caller through a bounded
//! channel as soon as it is complete, in scope order. The CSV is written as rows arrive; the
//! contact sheet ([`sheet`]) keeps its cards in a side file until the counts are known.
//!
//! # Flags
//! [`Flag`] has a stable snake_case code (CSV, JSON, the sidecar) and plain words (the sheet).
//! "Problem" flags count a user as flagged; the others only inform.

pub mod sheet;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt};
use photobulk_directory::{
    sha256_hex, Directory, DirectoryError, ListOptions, Lookup, LookupBatcher, User,
};
use photobulk_graph::{GraphClient, GraphError, UserIndex};
use photobulk_imaging::{fingerprint, Fingerprint};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::import::Cancel;
use crate::journal::Journal;
use crate::sync_hd::CloudMatch;
use crate::EngineError;

/// Exchange Online takes an AD photo only up to this many bytes (Entra Connect's limit).
pub const EXO_LIMIT: usize = 10_240;
/// Cloud photo reads in flight.
pub const CLOUD_IN_FLIGHT: usize = 4;
/// Users looked up at once when they are named one by one.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// What the report says about one user. `#[non_exhaustive]`: new flags may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Flag {
    /// No photo in AD, and none in the cloud (or the cloud was not asked).
    NoPhoto,
    /// A photo in AD, none in the cloud.
    AdOnly,
    /// A photo in the cloud, none in AD.
    CloudOnly,
    /// Over 10,240 bytes: Entra Connect will not carry it to Exchange Online.
    #[serde(rename = "over_10kb")]
    Over10Kb,
    /// AD and cloud photos show different pictures (compared decoded, at 16x16: stale).
    Differs,
    NotSquare,
    #[serde(rename = "under_96px")]
    Under96Px,
    NotJpeg,
    /// EXIF with a GPS block: a location stored in the directory.
    GpsExif,
    /// EXIF or XMP without GPS (camera, dates, sometimes names): personal data to strip.
    ExifData,
    /// AD bytes that are not a recognised image.
    Unreadable,
    /// The cloud photo could not be read or decoded.
    CloudUnreadable,
    /// The AD photo is what a PhotoBulk run wrote (run id and time in the row).
    ByPhotobulk,
    /// PhotoBulk wrote a photo to this user, and something else has replaced it since.
    ChangedSincePhotobulk,
    /// The AD photo was not written by PhotoBulk (per the journal).
    NotByPhotobulk,
    /// The photo folder has a file for this user and it differs from the AD photo (or there
    /// is none): a run would write it.
    WouldChange,
    /// The user could not be looked up or read.
    Error,
}

impl Flag {
    /// Every flag, in the order a reader sees them.
    pub const ALL: &'static [Flag] = &[
        Flag::Error,
        Flag::NoPhoto,
        Flag::AdOnly,
        Flag::CloudOnly,
        Flag::Over10Kb,
        Flag::Differs,
        Flag::NotSquare,
        Flag::Under96Px,
        Flag::NotJpeg,
        Flag::GpsExif,
        Flag::ExifData,
        Flag::Unreadable,
        Flag::CloudUnreadable,
        Flag::ChangedSincePhotobulk,
        Flag::WouldChange,
        Flag::ByPhotobulk,
        Flag::NotByPhotobulk,
    ];

    /// The stable code (CSV, JSON, protocol).
    pub fn code(self) -> &'static str {
        match self {
            Flag::NoPhoto => "no_photo",
            Flag::AdOnly => "ad_only",
            Flag::CloudOnly => "cloud_only",
            Flag::Over10Kb => "over_10kb",
            Flag::Differs => "differs",
            Flag::NotSquare => "not_square",
            Flag::Under96Px => "under_96px",
            Flag::NotJpeg => "not_jpeg",
            Flag::GpsExif => "gps_exif",
            Flag::ExifData => "exif_data",
            Flag::Unreadable => "unreadable",
            Flag::CloudUnreadable => "cloud_unreadable",
            Flag::ByPhotobulk => "by_photobulk",
            Flag::ChangedSincePhotobulk => "changed_since_photobulk",
            Flag::NotByPhotobulk => "not_by_photobulk",
            Flag::WouldChange => "would_change",
            Flag::Error => "error",
        }
    }

    /// Plain words for the sheet.
    pub fn words(self) -> &'static str {
        match self {
            Flag::NoPhoto => "no photo anywhere",
            Flag::AdOnly => "AD only (none in the cloud)",
            Flag::CloudOnly => "cloud only (none in AD)",
            Flag::Over10Kb => "over 10 KB (will not reach Exchange Online)",
            Flag::Differs => "AD and cloud differ",
            Flag::NotSquare => "not square",
            Flag::Under96Px => "under 96 px",
            Flag::NotJpeg => "not JPEG",
            Flag::GpsExif => "GPS location in EXIF",
            Flag::ExifData => "EXIF/XMP personal data",
            Flag::Unreadable => "unreadable AD photo",
            Flag::CloudUnreadable => "unreadable cloud photo",
            Flag::ByPhotobulk => "written by PhotoBulk",
            Flag::ChangedSincePhotobulk => "changed since PhotoBulk wrote it",
            Flag::NotByPhotobulk => "not written by PhotoBulk",
            Flag::WouldChange => "a run would change it",
            Flag::Error => "lookup failed",
        }
    }

    /// Whether the flag makes the user count as flagged (the rest only inform).
    pub fn is_problem(self) -> bool {
        !matches!(
            self,
            Flag::ByPhotobulk | Flag::NotByPhotobulk | Flag::WouldChange
        )
    }

    /// The flag with this code.
    pub fn from_code(code: &str) -> Option<Flag> {
        Flag::ALL.iter().copied().find(|f| f.code() == code)
    }
}

/// Facts about one stored photo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PhotoFacts {
    pub bytes: usize,
    /// "jpeg", "png", … ; `None` when unreadable.
    pub format: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sha256: String,
}

/// The cloud side of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CloudSide {
    /// Graph was not connected.
    #[default]
    NotChecked,
    /// No cloud user matches the AD user.
    NotInCloud {
        reason: String,
    },
    /// The cloud user (UPN) has no photo.
    NoPhoto {
        user: String,
    },
    Photo {
        user: String,
        photo: PhotoFacts,
    },
    /// Reading the cloud photo failed.
    Failed {
        user: String,
        message: String,
    },
}

/// Who last wrote the AD photo, per the import journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub run: String,
    pub time: Option<String>,
}

/// Why a user has no row data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub kind: RowErrorKind,
    pub message: String,
    /// Trying again may work (a server busy or gone).
    pub retryable: bool,
}

/// The kinds of [`RowError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RowErrorKind {
    UserNotFound,
    Ambiguous,
    /// Any other directory error (the message says which).
    Directory,
}

/// One user of the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The name asked for, or sAMAccountName (UPN, DN) when listing.
    pub identity: String,
    pub dn: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub ad: Option<PhotoFacts>,
    pub cloud: CloudSide,
    /// The file in the photo folder for this user (`--photos`).
    pub file: Option<PathBuf>,
    /// The last PhotoBulk write of the AD photo, when it is still what AD holds.
    pub written: Option<Written>,
    pub flags: Vec<Flag>,
    pub error: Option<RowError>,
}

impl Row {
    pub fn has(&self, f: Flag) -> bool {
        self.flags.contains(&f)
    }
    /// Any problem flag.
    pub fn flagged(&self) -> bool {
        self.flags.iter().any(|f| f.is_problem())
    }
}

/// A row and the photos it was made from (for the sheet; dropped after writing).
#[derive(Debug, Clone, Default)]
pub struct Item {
    pub row: Row,
    pub ad_photo: Option<Vec<u8>>,
    pub cloud_photo: Option<Vec<u8>>,
    /// The AD photo a run would write from `row.file` (96x96 JPEG).
    pub file_photo: Option<Vec<u8>>,
}

/// Which users.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every user under `base` (the naming context when `None`).
    Under {
        base: Option<String>,
        only_with_photo: bool,
    },
    /// These users, found by `by`.
    Identities { by: Lookup, values: Vec<String> },
}

/// The cloud to compare with.
#[derive(Debug, Clone, Copy)]
pub struct Cloud<'a> {
    pub graph: &'a GraphClient,
    pub match_by: CloudMatch,
}

/// How a report runs.
#[derive(Debug, Clone)]
pub struct ReportOptions<'a> {
    pub scope: Scope,
    pub cloud: Option<Cloud<'a>>,
    /// The import journal, for "written by PhotoBulk" (a missing file is an empty journal).
    pub journal: Option<&'a Journal>,
    /// A photo folder: show what a run on it would change.
    pub photos: Option<PathBuf>,
    pub cancel: Option<Cancel>,
}

/// Counts for the whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    pub total: usize,
    pub with_ad_photo: usize,
    pub with_cloud_photo: usize,
    /// Users with at least one problem flag.
    pub flagged: usize,
    /// Users per flag code.
    pub counts: BTreeMap<&'static str, usize>,
    pub cloud_checked: bool,
    pub cancelled: bool,
}

impl ReportSummary {
    fn add(&mut self, row: &Row) {
        self.total += 1;
        self.with_ad_photo += usize::from(row.ad.is_some());
        self.with_cloud_photo += usize::from(matches!(row.cloud, CloudSide::Photo { .. }));
        self.flagged += usize::from(row.flagged());
        for f in &row.flags {
            *self.counts.entry(f.code()).or_default() += 1;
        }
    }
    /// Users with `f`.
    pub fn count(&self, f: Flag) -> usize {
        self.counts.get(f.code()).copied().unwrap_or(0)
    }
}

/// A report that could not run (connection, listing, the photo folder); problems with one
/// user are in its row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Run the report, sending each [`Item`] to `out` in scope order as soon as it is complete
/// (the channel's bound is the backpressure: a slow writer slows the reads). Returns the
/// counts; a dropped receiver ends the report early.
pub async fn run(
    dir: &Directory,
    opts: &ReportOptions<'_>,
    out: mpsc::Sender<Item>,
) -> Result<ReportSummary, ReportError> {
    let index = match opts.cloud {
        Some(c) if c.match_by != CloudMatch::Upn => {
            Some(UserIndex::new(c.graph.list_users().await?))
        }
        _ => None,
    };
    let folder = match &opts.photos {
        Some(p) => Some(PhotoFolder::read(p)?),
        None => None,
    };
    let ctx = Ctx {
        cloud: opts.cloud,
        index: index.as_ref(),
        journal: opts.journal,
        folder: folder.as_ref(),
    };
    let mut summary = ReportSummary {
        cloud_checked: opts.cloud.is_some(),
        ..Default::default()
    };
    let cancelled = || opts.cancel.as_ref().is_some_and(Cancel::is_cancelled);
    match &opts.scope {
        Scope::Under {
            base,
            only_with_photo,
        } => {
            let mut users = dir
                .stream_users(&ListOptions {
                    base: base.clone(),
                    only_with_photo: *only_with_photo,
                    fetch_photo: true,
                })
                .await?;
            // Pull users as the cloud window frees up: a stream over the paged search.
            let source = stream::unfold(Some(&mut users), |st| async move {
                let users = st?;
                match users.next().await {
                    Ok(Some(u)) => Some((Ok(u), Some(users))),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), None)),
                }
            });
            let mut rows: std::pin::Pin<
                Box<dyn futures_util::Stream<Item = Result<Item, DirectoryError>> + Send + '_>,
            > = Box::pin(
                source
                    .map(|u| {
                        let ctx = &ctx;
                        async move {
                            match u {
                                Ok(u) => Ok(ctx.item(None, Ok(u)).await),
                                Err(e) => Err(e),
                            }
                        }
                    })
                    .buffered(CLOUD_IN_FLIGHT),
            );
            while let Some(item) = rows.next().await {
                if cancelled() {
                    summary.cancelled = true;
                    break;
                }
                let item = item?;
                summary.add(&item.row);
                if out.send(item).await.is_err() {
                    summary.cancelled = true;
                    break;
                }
            }
        }
        Scope::Identities { by, values } => {
            // The lookups in flight wait together and go to the server together.
            let lookups = LookupBatcher::new();
            let mut rows: std::pin::Pin<Box<dyn futures_util::Stream<Item = Item> + Send + '_>> =
                Box::pin(
                    stream::iter(values.iter())
                        .map(|v| {
                            let (ctx, lookups) = (&ctx, &lookups);
                            async move {
                                let found = lookups.find(dir, by, v, true).await;
                                ctx.item(Some(v.clone()), found).await
                            }
                        })
                        .buffered(LOOKUPS_IN_FLIGHT.max(CLOUD_IN_FLIGHT)),
                );
            while let Some(item) = rows.next().await {
                if cancelled() {
                    summary.cancelled = true;
                    break;
                }
                summary.add(&item.row);
                if out.send(item).await.is_err() {
                    summary.cancelled = true;
                    break;
                }
            }
        }
    }
    Ok(summary)
}

/// The photo folder of `--photos`: account (lower case) → file.
#[derive(Debug, Default)]
struct PhotoFolder {
    files: HashMap<String, PathBuf>,
}

impl PhotoFolder {
    fn read(path: &Path) -> Result<PhotoFolder, EngineError> {
        let inputs = crate::inputs::collect(&[path.to_path_buf()], false)?;
        let files = inputs
            .items
            .into_iter()
            .filter(|i| i.take == crate::inputs::Take::Yes)
            .filter_map(|i| Some((crate::naming::account_key(&i.account?), i.path)))
            .collect();
        Ok(PhotoFolder { files })
    }
}

struct Ctx<'a> {
    cloud: Option<Cloud<'a>>,
    index: Option<&'a UserIndex>,
    journal: Option<&'a Journal>,
    folder: Option<&'a PhotoFolder>,
}

impl Ctx<'_> {
    async fn item(&self, asked: Option<String>, found: Result<User, DirectoryError>) -> Item {
        let mut u = match found {
            Ok(u) => u,
            Err(e) => {
                let kind = match &e {
                    DirectoryError::UserNotFound { .. } | DirectoryError::NoSuchObject { .. } => {
                        RowErrorKind::UserNotFound
                    }
                    DirectoryError::Ambiguous { .. } => RowErrorKind::Ambiguous,
                    _ => RowErrorKind::Directory,
                };
                let row = Row {
                    identity: asked.unwrap_or_default(),
                    error: Some(RowError {
                        kind,
                        message: e.to_string(),
                        retryable: e.is_retryable(),
                    }),
                    flags: vec![Flag::Error],
                    ..Default::default()
                };
                return Item {
                    row,
                    ..Default::default()
                };
            }
        };
        let identity = asked.unwrap_or_else(|| {
            u.sam_account_name
                .clone()
                .or_else(|| u.user_principal_name.clone())
                .unwrap_or_else(|| u.dn.clone())
        });
        let ad_photo = u.photo.take();
        let mut row = Row {
            identity,
            dn: Some(u.dn.clone()),
            user_principal_name: u.user_principal_name.clone(),
            mail: u.mail.clone(),
            display_name: u.display_name.clone(),
            ad: ad_photo.as_deref().map(facts),
            ..Default::default()
        };
        let mut cloud_photo = None;
        if let Some(c) = self.cloud {
            let (side, bytes) = self.cloud_side(c, &u).await;
            row.cloud = side;
            cloud_photo = bytes;
        }
        let mut file_photo = None;
        if let Some(folder) = self.folder {
            let key = u
                .sam_account_name
                .as_deref()
                .map(crate::naming::account_key);
            if let Some(path) = key.and_then(|k| folder.files.get(&k)) {
                row.file = Some(path.clone());
                file_photo = would_write(path);
            }
        }
        row.flags = flags(
            &row,
            ad_photo.as_deref(),
            cloud_photo.as_deref(),
            file_photo.as_deref(),
        );
        if let (Some(j), Some(ad)) = (self.journal, &row.ad) {
            match j.last_write("ad", &u.dn) {
                Some(w) if w.sha256.as_deref() == Some(ad.sha256.as_str()) => {
                    row.written = Some(Written {
                        run: w.run.clone(),
                        time: w.time.clone(),
                    });
                    row.flags.push(Flag::ByPhotobulk);
                }
                Some(_) => row.flags.push(Flag::ChangedSincePhotobulk),
                None => row.flags.push(Flag::NotByPhotobulk),
            }
            row.flags.sort();
        }
        Item {
            row,
            ad_photo,
            cloud_photo,
            file_photo,
        }
    }

    async fn cloud_side(&self, c: Cloud<'_>, u: &User) -> (CloudSide, Option<Vec<u8>>) {
        let key = match crate::sync_hd::cloud_key(c.match_by, self.index, u) {
            Ok((key, _upn)) => key,
            Err(e) => {
                return (
                    CloudSide::NotInCloud {
                        reason: e.to_string(),
                    },
                    None,
                )
            }
        };
        let shown = match (c.match_by, self.index) {
            (CloudMatch::Upn, _) | (_, None) => key.clone(),
            (_, Some(ix)) => ix
                .find(&key)
                .map(|x| x.user_principal_name.clone())
                .unwrap_or_else(|_| key.clone()),
        };
        match c.graph.get_photo(&key).await {
            Ok(Some(bytes)) => (
                CloudSide::Photo {
                    user: shown,
                    photo: facts(&bytes),
                },
                Some(bytes),
            ),
            Ok(None) => (CloudSide::NoPhoto { user: shown }, None),
            Err(GraphError::UserNotFound(_)) => (
                CloudSide::NotInCloud {
                    reason: format!("no cloud user {shown}"),
                },
                None,
            ),
            Err(e) => (
                CloudSide::Failed {
                    user: shown,
                    message: e.to_string(),
                },
                None,
            ),
        }
    }
}

/// The AD photo a run would write from `path` (default options), or `None` when the file
/// does not convert.
fn would_write(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let opts = photobulk_imaging::Options {
        targets: vec![photobulk_imaging::Target::ad()],
        ..Default::default()
    };
    let c = photobulk_imaging::convert(&bytes, &opts).ok()?;
    c.outputs.into_iter().next().map(|o| o.jpeg)
}

/// Facts of stored photo bytes.
pub fn facts(photo: &[u8]) -> PhotoFacts {
    let info = photobulk_imaging::probe(photo).ok();
    PhotoFacts {
        bytes: photo.len(),
        format: info.as_ref().map(|i| i.format.clone()),
        width: info.as_ref().map(|i| i.width),
        height: info.as_ref().map(|i| i.height),
        sha256: sha256_hex(photo),
    }
}

fn print(p: Option<&[u8]>) -> Option<Fingerprint> {
    p.and_then(|b| fingerprint(b).ok())
}

/// The flags of a row (journal flags are added by the caller).
fn flags(row: &Row, ad: Option<&[u8]>, cloud: Option<&[u8]>, file: Option<&[u8]>) -> Vec<Flag> {
    let mut f = Vec::new();
    let cloud_checked = !matches!(row.cloud, CloudSide::NotChecked);
    let cloud_has = matches!(row.cloud, CloudSide::Photo { .. });
    let cloud_user = matches!(
        row.cloud,
        CloudSide::Photo { .. } | CloudSide::NoPhoto { .. }
    );
    match (ad.is_some(), cloud_has) {
        (false, false) => f.push(Flag::NoPhoto),
        (true, false) if cloud_checked && cloud_user => f.push(Flag::AdOnly),
        (false, true) => f.push(Flag::CloudOnly),
        _ => {}
    }
    if let (Some(ad), Some(facts)) = (ad, &row.ad) {
        if ad.len() > EXO_LIMIT {
            f.push(Flag::Over10Kb);
        }
        match (facts.width, facts.height, facts.format.as_deref()) {
            (Some(w), Some(h), Some(fmt)) => {
                if w != h {
                    f.push(Flag::NotSquare);
                }
                if w.min(h) < 96 {
                    f.push(Flag::Under96Px);
                }
                if fmt != "jpeg" {
                    f.push(Flag::NotJpeg);
                }
            }
            _ => f.push(Flag::Unreadable),
        }
        let meta = photobulk_imaging::metadata::scan(ad);
        if meta.has_gps {
            f.push(Flag::GpsExif);
        } else if meta.has_exif || meta.has_xmp {
            f.push(Flag::ExifData);
        }
    }
    if let Some(c) = cloud {
        match (print(ad), print(Some(c))) {
            (Some(a), Some(b)) if !a.same_photo(&b) => f.push(Flag::Differs),
            (_, None) => f.push(Flag::CloudUnreadable),
            _ => {}
        }
    }
    if matches!(row.cloud, CloudSide::Failed { .. }) {
        f.push(Flag::CloudUnreadable);
    }
    if row.file.is_some() {
        match (print(ad), print(file)) {
            (Some(a), Some(b)) if a.same_photo(&b) => {}
            (_, Some(_)) => f.push(Flag::WouldChange),
            // The file does not convert: a run would report it, not write it.
            (_, None) => {}
        }
    }
    f.sort();
    f.dedup();
    f
}

// ---------------------------------------------------------------------------------------------
// Output

/// The report's files: CSV (rows as they arrive) and the HTML contact sheet.
#[derive(Debug)]
pub struct Writers {
    csv: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    sheet: Option<sheet::Sheet>,
}

/// The CSV header; one line per [`Row`] follows ([`csv_line`]).
pub const CSV_HEADER: &str = "Identity,DistinguishedName,UserPrincipalName,Mail,HasPhoto,Bytes,Width,Height,Format,CloudUser,CloudPhoto,CloudBytes,CloudWidth,CloudHeight,File,WrittenByRun,WrittenAt,Flags,Error";

impl Writers {
    /// Create the files asked for. `inline_photos`: photos as `data:` URIs in the sheet (a
    /// single file to mail); otherwise in a folder beside it (`NAME_photos/`), which keeps the
    /// page small at any number of users.
    pub fn create(
        csv: Option<&Path>,
        html: Option<&Path>,
        inline_photos: bool,
    ) -> Result<Writers, EngineError> {
        let csv = match csv {
            Some(p) => {
                let f = std::fs::File::create(p).map_err(|e| EngineError::io(p, e))?;
                let mut w = std::io::BufWriter::new(f);
                writeln!(w, "{CSV_HEADER}").map_err(|e| EngineError::io(p, e))?;
                Some((p.to_path_buf(), w))
            }
            None => None,
        };
        let sheet = match html {
            Some(p) => Some(sheet::Sheet::create(p, inline_photos)?),
            None => None,
        };
        Ok(Writers { csv, sheet })
    }

    /// Write one item.
    pub fn item(&mut self, item: &Item) -> Result<(), EngineError> {
        if let Some((p, w)) = &mut self.csv {
            writeln!(w, "{}", csv_line(&item.row)).map_err(|e| EngineError::io(p, e))?;
        }
        if let Some(s) = &mut self.sheet {
            s.card(item)?;
        }
        Ok(())
    }

    /// Finish the files (the sheet's counts go on top now).
    pub fn finish(self, summary: &ReportSummary) -> Result<(), EngineError> {
        if let Some((p, mut w)) = self.csv {
            w.flush().map_err(|e| EngineError::io(&p, e))?;
        }
        if let Some(s) = self.sheet {
            s.finish(summary)?;
        }
        Ok(())
    }
}

/// A CSV cell: quoted when needed; a leading `=`, `+`, `-` or `@` (a spreadsheet formula) is
/// defused with a `'`.
pub fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@']);
    if s.contains([',', '"', '\n', '\r']) || formula {
        let s = if formula {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV line (no newline) in [`CSV_HEADER`]'s columns.
pub fn csv_line(r: &Row) -> String {
    let o = |v: Option<String>| v.unwrap_or_default();
    let n = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    let (cloud_user, cloud_photo) = match &r.cloud {
        CloudSide::NotChecked => (String::new(), None),
        CloudSide::NotInCloud { .. } => (String::new(), None),
        CloudSide::NoPhoto { user } | CloudSide::Failed { user, .. } => (user.clone(), None),
        CloudSide::Photo { user, photo } => (user.clone(), Some(photo)),
    };
    let cloud_state = match &r.cloud {
        CloudSide::NotChecked => "",
        CloudSide::NotInCloud { .. } => "not_in_cloud",
        CloudSide::NoPhoto { .. } => "false",
        CloudSide::Photo { .. } => "true",
        CloudSide::Failed { .. } => "failed",
    };
    let flags: Vec<&str> = r.flags.iter().map(|f| f.code()).collect();
    [
        csv_field(&r.identity),
        csv_field(&o(r.dn.clone())),
        csv_field(&o(r.user_principal_name.clone())),
        csv_field(&o(r.mail.clone())),
        r.ad.is_some().to_string(),
        o(r.ad.as_ref().map(|p| p.bytes.to_string())),
        n(r.ad.as_ref().and_then(|p| p.width)),
        n(r.ad.as_ref().and_then(|p| p.height)),
        o(r.ad.as_ref().and_then(|p| p.format.clone())),
        csv_field(&cloud_user),
        cloud_state.to_string(),
        o(cloud_photo.map(|p| p.bytes.to_string())),
        n(cloud_photo.and_then(|p| p.width)),
        n(cloud_photo.and_then(|p| p.height)),
        csv_field(&o(r.file.as_ref().map(|p| p.display().to_string()))),
        csv_field(&o(r.written.as_ref().map(|w| w.run.clone()))),
        o(r.written.as_ref().and_then(|w| w.time.clone())),
        flags.join(";"),
        csv_field(&o(r.error.as_ref().map(|e| e.message.clone()))),
    ]
    .join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_a_unique_code_and_words_and_round_trips() {
        let mut codes: Vec<&str> = Flag::ALL.iter().map(|f| f.code()).collect();
        for f in Flag::ALL {
            assert_eq!(Flag::from_code(f.code()), Some(*f));
            assert!(!f.words().is_empty());
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::String(f.code().into())
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Flag::ALL.len());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(csv_field("+1"), "\"'+1\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
        assert_eq!(csv_field("@x"), "\"'@x\"");
        assert_eq!(csv_field("plain"), "plain");
        let row = Row {
            identity: "=HYPERLINK(\"x\")".into(),
            flags: vec![Flag::NoPhoto],
            ..Default::default()
        };
        let line = csv_line(&row);
        assert!(line.starts_with("\"'=HYPERLINK(\"\"x\"\")\","), "{line}");
        assert_eq!(line.split(',').count(), CSV_HEADER.split(',').count());
    }

    #[test]
    fn no_photo_ad_only_and_cloud_only_follow_both_sides() {
        let none = Row::default();
        assert_eq!(flags(&none, None, None, None), vec![Flag::NoPhoto]);
        let ad = Row {
            ad: Some(PhotoFacts {
                bytes: 3,
                ..Default::default()
            }),
            cloud: CloudSide::NoPhoto { user: "u".into() },
            ..Default::default()
        };
        let f = flags(&ad, Some(b"abc"), None, None);
        assert!(
            f.contains(&Flag::AdOnly) && f.contains(&Flag::Unreadable),
            "{f:?}"
        );
        let cloud = Row {
            cloud: CloudSide::Photo {
                user: "u".into(),
                photo: PhotoFacts::default(),
            },
            ..Default::default()
        };
        let f = flags(&cloud, None, Some(b"zz"), None);
        assert!(f.contains(&Flag::CloudOnly), "{f:?}");
        assert!(f.contains(&Flag::CloudUnreadable), "{f:?}");
    }
}
