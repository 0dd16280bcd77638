//! Every method: its name constant and its typed params and result.
//!
//! A request method implements [`Method`]; a notification implements [`Notify`]. Field names
//! are camelCase on the wire. Optional fields may be left out; `Option` results are left out
//! when empty. Paths are the sidecar machine's paths (the sidecar and the module run on the
//! same machine as the same user).
//!
//! | method | params | result | notes |
//! |---|---|---|---|
//! | `initialize` | [`InitializeParams`] | [`InitializeResult`] | first request; others before it get `not_initialized` |
//! | `image.prepare` | [`PrepareParams`] | [`PrepareResult`] | files → AD/HD JPEG files (or bytes, under 2 MB in all) |
//! | `directory.connect` | [`ConnectParams`] | [`ConnectResult`] | the password travels only here; none for Kerberos |
//! | `graph.connect` | [`GraphConnectParams`] | [`GraphConnectResult`] | secret, certificate or token travel only here |
//! | `photo.get` | [`PhotoGetParams`] | [`PhotoInfo`] | |
//! | `photo.set` | [`PhotoSetParams`] | [`PhotoWriteResult`] | old photo backed up first |
//! | `photo.remove` | [`PhotoRemoveParams`] | [`PhotoWriteResult`] | |
//! | `photo.restore` | [`PhotoRestoreParams`] | [`PhotoWriteResult`] | |
//! | `bulk.plan` | [`BulkParams`] | [`BulkPlanResult`] | no writes, nothing created; with `streamItems`, streams `bulk/progress`, `bulk/item` |
//! | `bulk.run` | [`BulkParams`] | [`BulkRunResult`] | streams `bulk/progress`, `bulk/item`; cancellable |
//! | `bulk.record` | [`BulkRecordParams`] | [`BulkRecordResult`] | the client's `Set-UserPhoto` outcomes into the run's journal |
//! | `report.run` | [`ReportParams`] | [`ReportResult`] | streams `report/row` |
//! | `environment.detect` | [`EnvironmentParams`] | [`EnvironmentInfo`] | probes the connected directory and Graph sign-in |
//! | `photo.syncHdToAd` | [`SyncHdParams`] | [`SyncHdResult`] | cloud HD photo → AD; streams `bulk/progress`, `syncHd/item`; cancellable |
//! | `shutdown` | none | `null` | finishes in-flight work, then the server exits |
//! | `exit` | none | — (notification) | exit now (in-flight writes still finish) |
//! | `$/cancelRequest` | [`CancelParams`] | — (notification) | the request answers `cancelled` |

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ItemError;

/// A request method.
pub trait Method {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned;
    type Result: Serialize + DeserializeOwned;
}

/// A notification method.
pub trait Notify {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned;
}

/// The protocol version `initialize` reports. Raised on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

macro_rules! method {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty, $result:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $ty {}
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
}
macro_rules! notify {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $ty {}
        impl Notify for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
        }
    };
}

method!(
    /// `initialize`: agree on the protocol version, learn capabilities.
    Initialize, "initialize", InitializeParams, InitializeResult);
method!(
    /// `image.prepare`: convert image files into AD/HD JPEGs.
    ImagePrepare, "image.prepare", PrepareParams, PrepareResult);
method!(
    /// `directory.connect`: bind to a directory for the `photo.*`, `bulk.*` and `report.run` methods.
    DirectoryConnect, "directory.connect", ConnectParams, ConnectResult);
method!(
    /// `graph.connect`: sign in to Microsoft Graph for the `ExchangeOnline` bulk target.
    GraphConnect, "graph.connect", GraphConnectParams, GraphConnectResult);
method!(
    /// `photo.get`: one user's current photo (facts, optionally saved to a file).
    PhotoGet, "photo.get", PhotoGetParams, PhotoInfo);
method!(
    /// `photo.set`: convert one image and write it to one user, backing up the old photo.
    PhotoSet, "photo.set", PhotoSetParams, PhotoWriteResult);
method!(
    /// `photo.remove`: remove one user's photo, backing it up first.
    PhotoRemove, "photo.remove", PhotoRemoveParams, PhotoWriteResult);
method!(
    /// `photo.restore`: put a backup back (the user's latest, or one by id).
    PhotoRestore, "photo.restore", PhotoRestoreParams, PhotoWriteResult);
method!(
    /// `bulk.plan`: what `bulk.run` would do with the same params, without writing.
    BulkPlan, "bulk.plan", BulkParams, BulkPlanResult);
method!(
    /// `bulk.run`: prepare and write many photos; progress and items arrive as notifications.
    BulkRun, "bulk.run", BulkParams, BulkRunResult);
method!(
    /// `bulk.record`: what the client did with the `ExchangeOnPrem` items of a `bulk.run`
    /// (its own `Set-UserPhoto` calls), written to that run's journal.
    BulkRecord, "bulk.record", BulkRecordParams, BulkRecordResult);
method!(
    /// `report.run`: the state of users' photos; one `report/row` notification per user.
    ReportRun, "report.run", ReportParams, ReportResult);
method!(
    /// `environment.detect`: which photo stores this connection reaches (on-premises, cloud,
    /// hybrid, none), probing the `directory.connect` settings and the `graph.connect` sign-in.
    EnvironmentDetect, "environment.detect", EnvironmentParams, EnvironmentInfo);
method!(
    /// `photo.syncHdToAd`: "use existing HD" — each user's cloud HD photo (Graph) written to AD
    /// thumbnailPhoto as 96x96 ≤ 10,240 bytes; needs both `directory.connect` and `graph.connect`.
    SyncHdToAd, "photo.syncHdToAd", SyncHdParams, SyncHdResult);
method!(
    /// `shutdown`: stop taking work, finish what is in flight, exit.
    Shutdown, "shutdown", Empty, ());
notify!(
    /// `exit`: exit now (in-flight writes still finish). Also accepted as a request.
    Exit, "exit", Empty);
notify!(
    /// `$/cancelRequest`: cancel a running request (LSP's name and shape).
    CancelRequest, "$/cancelRequest", CancelParams);
notify!(
    /// `bulk/progress` (server → client) during `bulk.run`.
    BulkProgress, "bulk/progress", BulkProgressParams);
notify!(
    /// `bulk/item` (server → client): one finished item of `bulk.run`.
    BulkItemNotice, "bulk/item", BulkItemParams);
notify!(
    /// `syncHd/item` (server → client): one finished user of `photo.syncHdToAd`.
    SyncHdItemNotice, "syncHd/item", SyncHdItemParams);
notify!(
    /// `report/row` (server → client): one user of `report.run`.
    ReportRowNotice, "report/row", ReportRowParams);

/// Every request and notification name a client may send, for capabilities and docs.
pub const CLIENT_METHODS: &[&str] = &[
    Initialize::NAME,
    ImagePrepare::NAME,
    DirectoryConnect::NAME,
    GraphConnect::NAME,
    PhotoGet::NAME,
    PhotoSet::NAME,
    PhotoRemove::NAME,
    PhotoRestore::NAME,
    BulkPlan::NAME,
    BulkRun::NAME,
    BulkRecord::NAME,
    ReportRun::NAME,
    EnvironmentDetect::NAME,
    SyncHdToAd::NAME,
    Shutdown::NAME,
    Exit::NAME,
    CancelRequest::NAME,
];

/// Every notification the server sends.
pub const SERVER_NOTIFICATIONS: &[&str] = &[
    BulkProgress::NAME,
    BulkItemNotice::NAME,
    ReportRowNotice::NAME,
    SyncHdItemNotice::NAME,
];

/// No params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InitializeParams {
    /// The version the client speaks; a different major version is refused (`invalid_params`).
    pub protocol_version: Option<u32>,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    pub protocol_version: u32,
    pub server_name: String,
    pub server_version: String,
    pub capabilities: Capabilities,
    /// Which photo stores are reachable. `initialize` is the first request of a connection, so
    /// nothing is connected yet and this server leaves it out; it is here for clients (and
    /// servers) that know their settings up front. After `directory.connect` / `graph.connect`
    /// ask `environment.detect`, which returns the same shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Input formats `image.prepare` reads (`"jpeg"`, `"png"`, … `"heic"` when built in).
    pub formats: Vec<String>,
    /// Output targets.
    pub targets: Vec<TargetInfo>,
    pub methods: Vec<String>,
    pub notifications: Vec<String>,
    /// `"ndjson"`, `"content-length"`.
    pub framings: Vec<String>,
    pub max_message_bytes: usize,
    /// Results stay under this many bytes (bytes in `image.prepare` are dropped beyond it).
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    /// `"ad"` (thumbnailPhoto) or `"hd"` (Exchange HD photo).
    pub name: String,
    pub size: u32,
    pub max_bytes: usize,
}

/// How non-square photos become square: `"face"` (the default: head and shoulders around
/// the main face, like an ID photo; no face found: as `"top"`, with a `no_face` warning),
/// `"center"` (what Exchange does), `"top"` (portraits keep their top third), `"pad"`
/// (letterbox, nothing cut off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crop {
    #[default]
    Face,
    Center,
    Top,
    Pad,
}

/// The square kept from a photo, in upright source pixels (`x`/`y` may be negative for `pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropRect {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
}

/// The face a `face` crop was framed on, in upright source pixels; `score` is the
/// detector's confidence (2 is its threshold; higher is surer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaceRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
}

// The score is a detector's finite output, never NaN: equality stays reflexive.
impl Eq for FaceRect {}

/// A non-fatal note about a converted photo: `kind` is `no_face`, `several_faces`,
/// `small_face`, `upscaled` or `icc_profile_ignored`; `message` says it in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageWarning {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrepareParams {
    /// Image files and/or folders (a folder's images are taken; file name = account).
    pub paths: Vec<String>,
    /// `"ad"`, `"hd"`; both when empty.
    pub targets: Vec<String>,
    pub crop: Crop,
    /// Where `ad/<account>.jpg`, `hd/<account>.jpg` go; a fresh folder under the system
    /// temporary folder when absent.
    pub out_dir: Option<String>,
    /// Also return each JPEG base64-encoded in `data` (for `Set-UserPhoto -PictureData`)
    /// while the response stays under the limit; later outputs then carry only a path and
    /// `dataOmitted: true`.
    pub include_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepareResult {
    pub out_dir: String,
    pub items: Vec<PreparedItem>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedItem {
    pub path: String,
    pub account: Option<String>,
    pub ok: bool,
    #[serde(default)]
    pub outputs: Vec<PreparedOutput>,
    pub error: Option<ItemError>,
    /// The square kept and the face it was framed on.
    pub crop: Option<CropRect>,
    pub face: Option<FaceRect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ImageWarning>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedOutput {
    pub target: String,
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    pub sha256: String,
    /// Base64 JPEG, when asked for and within the response limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_omitted: bool,
}

/// `directory.connect` params. `password` is a secret: it comes only over the pipe, is
/// never logged, never echoed, and `Debug` prints it redacted.
///
/// Signing in as the current user (what `Set-PhotoBulk` without `-Credential` sends) is just
/// `{}` — or `{"server":"dc1.corp.example"}` / `{"domain":"corp.example"}`: no `bind`, no
/// `password`, `auth` left at `auto`, so the sidecar binds with Kerberos (the logon session
/// through SSPI on Windows, the ticket cache on Unix) and, with no `server`, finds a DC in DNS.
/// `-Credential` sends `bind` and `password` as before.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConnectParams {
    /// `ldaps://host[:636]`, `ldap://host[:389]` (with `starttls`, or Kerberos, whose SASL
    /// layer signs and seals), or a bare host name (`ldap://` for Kerberos, `ldaps://` for a
    /// simple bind). Empty or absent: find a DC of `domain` in DNS.
    pub server: String,
    /// `auto` (default: Kerberos without `bind`, simple bind with it), `kerberos`, `simple`,
    /// `anonymous`.
    pub auth: Option<String>,
    /// The AD domain whose DCs to look up (SRV `_ldap._tcp.dc._msdcs.<domain>`) when there is
    /// no `server`; default: `USERDNSDOMAIN`, the Kerberos ticket's realm, the DNS search domain.
    pub domain: Option<String>,
    /// Ask this DNS server (`IP` or `IP:PORT`) instead of the system's for the DC lookup.
    pub dns_server: Option<String>,
    pub base: Option<String>,
    /// Bind name (DN, `user@domain`, `DOMAIN\user`) for a simple bind, with `password`.
    pub bind: Option<String>,
    pub password: Option<String>,
    pub ca_file: Option<String>,
    pub starttls: bool,
    pub insecure_skip_verify: bool,
    pub allow_plaintext_bind: bool,
    pub timeout_seconds: Option<u64>,
    /// Backups of replaced photos; the sidecar's default folder when absent.
    pub backup_dir: Option<String>,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("server", &self.server)
            .field("auth", &self.auth)
            .field("domain", &self.domain)
            .field("dns_server", &self.dns_server)
            .field("base", &self.base)
            .field("bind", &self.bind)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("starttls", &self.starttls)
            .finish_non_exhaustive()
    }
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectResult {
    /// `"active_directory"`, `"samba"`, `"open_ldap"`, `"generic"`.
    pub server_kind: String,
    /// The URL connected to (the DC found in DNS when no `server` was given).
    pub server: Option<String>,
    /// How the connection signed in: `kerberos`, `simple` or `anonymous`.
    pub auth: Option<String>,
    /// Who: the Kerberos principal (Unix; the server's "who am I" answer otherwise, e.g.
    /// `u:CORP\\jsmith`) or the bind name.
    pub bound_as: Option<String>,
    /// `tls`, `sasl_sealing` (Kerberos over plain LDAP: signed and encrypted) or `none`.
    pub protection: Option<String>,
    /// The DC's host name when it was found in DNS.
    pub dc: Option<String>,
    pub vendor_name: Option<String>,
    pub base: Option<String>,
    pub backup_dir: Option<String>,
}

/// Which Microsoft cloud `graph.connect` signs in to (sets both URLs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphCloud {
    #[default]
    Global,
    UsGov,
    UsGovDod,
    China,
}

/// `graph.connect` params. Give one of: `accessToken`; `tenant` + `clientId` + `clientSecret`;
/// `tenant` + `clientId` + `certificateFile` (PEM, with `certificateKeyFile` when the key is in
/// another file). `clientSecret` and `accessToken` are secrets: they come only over the pipe,
/// are never logged, never echoed, and `Debug` prints them redacted.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GraphConnectParams {
    /// Tenant id or domain (`contoso.onmicrosoft.com`).
    pub tenant: Option<String>,
    /// The app registration's application (client) id.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// PEM file with the certificate (and the RSA private key, unless `certificateKeyFile`).
    pub certificate_file: Option<String>,
    pub certificate_key_file: Option<String>,
    /// A bearer token for Graph the caller already has (e.g. from `Connect-MgGraph`); it is
    /// used as is and cannot be refreshed.
    pub access_token: Option<String>,
    pub cloud: GraphCloud,
    /// Override the sign-in authority (national clouds, a test emulator).
    pub authority_url: Option<String>,
    /// Override the Graph root including the version (`https://graph.microsoft.com/v1.0`).
    pub graph_url: Option<String>,
    /// Trust this PEM CA bundle instead of the system roots.
    pub ca_file: Option<String>,
    /// Photo requests in flight (Graph documents 4 per app, the default).
    pub photo_concurrency: Option<usize>,
    /// Backups of replaced cloud photos, and the upload journal (`upload-journal.jsonl`) that
    /// makes a re-run skip users already uploaded; the sidecar's default folder + `/graph` when
    /// absent.
    pub backup_dir: Option<String>,
}

impl std::fmt::Debug for GraphConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("GraphConnectParams")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("certificate_file", &self.certificate_file)
            .field("access_token", &redacted(&self.access_token))
            .field("cloud", &self.cloud)
            .field("graph_url", &self.graph_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphConnectResult {
    /// `"client_secret"`, `"certificate"` or `"access_token"`.
    pub auth: String,
    pub graph_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// The upload journal (JSON lines, one per completed upload).
    pub journal: String,
}

/// Which attribute an identity names: `samaccountname` (default), `upn`, `mail`,
/// `employeeid`, or an attribute name.
pub type MatchBy = Option<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhotoGetParams {
    pub identity: String,
    pub match_by: MatchBy,
    /// Save the bytes to this file.
    pub out: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoInfo {
    pub identity: String,
    pub dn: String,
    pub has_photo: bool,
    pub bytes: Option<usize>,
    pub sha256: Option<String>,
    pub format: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhotoSetParams {
    pub identity: String,
    pub match_by: MatchBy,
    /// The image file.
    pub path: String,
    pub crop: Crop,
    /// Send the file's bytes unconverted (still refused over 102,400 bytes).
    pub raw: bool,
    /// Write without backing up the old photo (it is lost).
    pub no_backup: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhotoRemoveParams {
    pub identity: String,
    pub match_by: MatchBy,
    pub no_backup: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhotoRestoreParams {
    pub identity: String,
    pub match_by: MatchBy,
    /// A backup id; the user's latest backup when absent.
    pub backup_id: Option<String>,
    pub no_backup: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhotoWriteResult {
    pub identity: String,
    pub dn: String,
    /// Bytes now stored (0 after a removal).
    pub bytes: usize,
    pub sha256: Option<String>,
    /// Backup of the value this write replaced (restore it to undo).
    pub backup_id: Option<String>,
    /// For `photo.restore`: the backup put back.
    pub restored_id: Option<String>,
}

/// Where a bulk run puts photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BulkTarget {
    /// AD `thumbnailPhoto` (96x96 ≤ 10 KB), written by the sidecar.
    ActiveDirectory,
    /// Exchange on-premises HD photo: the sidecar prepares the 648x648 JPEG (`hdPath`),
    /// the module calls `Set-UserPhoto` and reports back with `bulk.record`.
    ExchangeOnPrem,
    /// Exchange Online / Entra ID through Microsoft Graph (after `graph.connect`): the sidecar
    /// uploads the 648x648 JPEG itself.
    ExchangeOnline,
}

/// One input of a bulk run: a file, and whom it is for when the file name does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkInput {
    /// A file, or a folder (its images, each named after its account).
    pub path: String,
    /// The user; from the file name (up to the first space) when absent.
    pub identity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkParams {
    pub items: Vec<BulkInput>,
    pub match_by: MatchBy,
    pub targets: Vec<BulkTarget>,
    pub crop: Crop,
    /// Prepared JPEGs and the journal go here; a fresh temporary folder when absent.
    pub out_dir: Option<String>,
    /// The run journal of the ActiveDirectory and ExchangeOnPrem targets (`OUT/journal.jsonl`
    /// when absent). Keep one file across runs so "unchanged" and resume reach back further
    /// than one output folder.
    pub journal: Option<String>,
    pub no_backup: bool,
    /// Write even when the user's AD photo already has exactly these bytes.
    pub force: bool,
    /// Photos converted at once (0: one per core).
    pub throttle_limit: u32,
    /// `bulk.plan` only: send the planned items as `bulk/item` notifications (each target's
    /// items in identity order, with `bulk/progress` while planning) and leave the result's
    /// `items` empty, so a plan of any size stays under a client's message limit (Windows
    /// PowerShell 5.1's `ConvertFrom-Json` takes at most 2 MB).
    pub stream_items: bool,
}

impl Default for BulkParams {
    fn default() -> Self {
        BulkParams {
            items: Vec::new(),
            match_by: None,
            targets: vec![BulkTarget::ActiveDirectory],
            crop: Crop::Face,
            out_dir: None,
            journal: None,
            no_backup: false,
            force: false,
            throttle_limit: 0,
            stream_items: false,
        }
    }
}

/// What will happen (plan) or happened (run) to one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Plan: will be written.
    Ready,
    /// Run: written.
    Written,
    /// The user's photo already has these bytes (not written; `force` writes anyway).
    Unchanged,
    /// Left out (no account, duplicate, user not found …: see `error`).
    Skipped,
    Failed,
    /// The run was cancelled before this item.
    Cancelled,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkItem {
    /// Which target this item is for (a run with several targets sends one item per input
    /// and target).
    pub target: Option<BulkTarget>,
    pub path: String,
    pub identity: Option<String>,
    pub dn: Option<String>,
    pub status: ItemStatus,
    pub has_photo: Option<bool>,
    pub ad_path: Option<String>,
    pub ad_bytes: Option<usize>,
    pub ad_sha256: Option<String>,
    pub hd_path: Option<String>,
    pub hd_bytes: Option<usize>,
    pub hd_sha256: Option<String>,
    /// ExchangeOnline: the cloud user it matched.
    pub user_principal_name: Option<String>,
    pub backup_id: Option<String>,
    pub error: Option<ItemError>,
    /// The square kept and the face it was framed on (when converted this run).
    pub crop: Option<CropRect>,
    pub face: Option<FaceRect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ImageWarning>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSummary {
    pub total: usize,
    pub ready: usize,
    pub written: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub cancelled: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkPlanResult {
    pub items: Vec<BulkItem>,
    pub summary: BulkSummary,
    /// Where the photos would go: the connected sides probed as by `environment.detect`
    /// (on-premises, cloud, hybrid), so a `-WhatIf` says which kind of tenant it planned for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentInfo>,
}

/// `bulk.run`'s result. The items came as `bulk/item` notifications (a result with
/// thousands of items would pass PowerShell 5.1's `ConvertFrom-Json` limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkRunResult {
    pub summary: BulkSummary,
    /// The run stopped early (cancel, client gone, shutdown).
    pub cancelled: bool,
    pub out_dir: String,
    /// One JSON line per finished item, written as it finishes.
    pub journal: String,
}

/// One `Set-UserPhoto` outcome for `bulk.record`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedItem {
    /// As in the `bulk/item` it answers.
    pub identity: String,
    /// The `hdSha256` of the `bulk/item` (what was sent).
    pub hd_sha256: Option<String>,
    /// `written` or `failed` (anything but `written` counts as failed).
    pub status: Option<ItemStatus>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkRecordParams {
    /// The `journal` of the `bulk.run` result.
    pub journal: String,
    pub items: Vec<RecordedItem>,
    /// The client is done with this run: an `end` record is written.
    pub end: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkRecordResult {
    pub recorded: usize,
    /// Identities with no pending item in the run (not recorded).
    #[serde(default)]
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkProgressParams {
    /// The `bulk.run` request this belongs to.
    pub request_id: crate::RequestId,
    pub done: usize,
    pub total: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkItemParams {
    pub request_id: crate::RequestId,
    pub item: BulkItem,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReportParams {
    /// These users; every user under `searchBase` when empty.
    pub identities: Vec<String>,
    pub match_by: MatchBy,
    pub search_base: Option<String>,
    /// Only users that have a photo.
    pub only_with_photo: bool,
    /// Also write the rows as CSV to this file.
    pub csv_path: Option<String>,
    /// Also write an HTML contact sheet (no network; counts and a flag chart on top, the AD
    /// and cloud photos side by side, filter and search) to this file. Photos are inline for
    /// up to 1,000 named users, else in `STEM_photos/` beside the file.
    pub html_path: Option<String>,
    /// Compare with the cloud photo through this session's `graph.connect` (an error when
    /// Graph is not connected).
    pub cloud: bool,
    /// How an AD user is found in the tenant when `cloud` is set.
    pub cloud_match: CloudMatch,
    /// A photo folder (file name = account): flag the users whose photo a run would change.
    pub photos_path: Option<String>,
    /// The import journal that says which photos PhotoBulk wrote (default: the CLI's,
    /// `STATE/journal.jsonl`).
    pub journal_path: Option<String>,
}

/// Report flags, as sent in [`ReportRow::flags`] (the engine's `audit::Flag` codes; a test
/// keeps the two lists equal).
pub mod flags {
    /// No photo in AD, and none in the cloud (or the cloud was not asked).
    pub const NO_PHOTO: &str = "no_photo";
    /// A photo in AD, none in the cloud.
    pub const AD_ONLY: &str = "ad_only";
    /// A photo in the cloud, none in AD.
    pub const CLOUD_ONLY: &str = "cloud_only";
    /// Over 10,240 bytes: Entra Connect will not carry it to Exchange Online.
    pub const OVER_10KB: &str = "over_10kb";
    /// AD and cloud photos show different pictures (compared decoded at 16x16, not by bytes).
    pub const DIFFERS: &str = "differs";
    pub const NOT_SQUARE: &str = "not_square";
    pub const UNDER_96PX: &str = "under_96px";
    pub const NOT_JPEG: &str = "not_jpeg";
    /// EXIF with a GPS block (location leaks into the directory).
    pub const GPS_EXIF: &str = "gps_exif";
    /// EXIF or XMP without GPS (camera, dates, sometimes names).
    pub const EXIF_DATA: &str = "exif_data";
    /// Bytes that are not a recognised image.
    pub const UNREADABLE: &str = "unreadable";
    /// The cloud photo could not be read or decoded.
    pub const CLOUD_UNREADABLE: &str = "cloud_unreadable";
    /// The AD photo is what a PhotoBulk run wrote (`writtenByRun`, `writtenAt`).
    pub const BY_PHOTOBULK: &str = "by_photobulk";
    /// PhotoBulk wrote this user's photo, and something else has replaced it since.
    pub const CHANGED_SINCE_PHOTOBULK: &str = "changed_since_photobulk";
    /// The AD photo was not written by PhotoBulk (per the journal).
    pub const NOT_BY_PHOTOBULK: &str = "not_by_photobulk";
    /// With `photosPath`: the folder's photo for this user differs from AD (a run would write it).
    pub const WOULD_CHANGE: &str = "would_change";
    /// The user could not be looked up or read (`error` says why).
    pub const ERROR: &str = "error";
    pub const ALL: &[&str] = &[
        ERROR,
        NO_PHOTO,
        AD_ONLY,
        CLOUD_ONLY,
        OVER_10KB,
        DIFFERS,
        NOT_SQUARE,
        UNDER_96PX,
        NOT_JPEG,
        GPS_EXIF,
        EXIF_DATA,
        UNREADABLE,
        CLOUD_UNREADABLE,
        CHANGED_SINCE_PHOTOBULK,
        WOULD_CHANGE,
        BY_PHOTOBULK,
        NOT_BY_PHOTOBULK,
    ];
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub identity: String,
    pub dn: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    /// An AD thumbnailPhoto is present.
    pub has_photo: bool,
    pub bytes: Option<usize>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<String>,
    /// The cloud side: `notChecked` (no `cloud`), `notInCloud`, `noPhoto`, `photo`, `failed`.
    pub cloud_state: Option<String>,
    /// The cloud user compared with (UPN).
    pub cloud_user: Option<String>,
    pub cloud_bytes: Option<usize>,
    pub cloud_width: Option<u32>,
    pub cloud_height: Option<u32>,
    /// With `photosPath`: this user's file in the folder.
    pub file: Option<String>,
    /// The PhotoBulk run that wrote the AD photo (flag `by_photobulk`), and when.
    pub written_by_run: Option<String>,
    pub written_at: Option<String>,
    /// See [`flags`].
    #[serde(default)]
    pub flags: Vec<String>,
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRowParams {
    pub request_id: crate::RequestId,
    pub row: ReportRow,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    pub total: usize,
    pub with_photo: usize,
    /// Users with a cloud photo (0 without `cloud`).
    #[serde(default)]
    pub with_cloud_photo: usize,
    pub flagged: usize,
    pub csv_path: Option<String>,
    pub html_path: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelParams {
    pub id: crate::RequestId,
}

/// The server's start line on stdout (one JSON line before anything else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum StartLine {
    Started {
        /// The pipe name as given (`--pipe`).
        pipe: String,
        /// Where a client connects: `\\.\pipe\NAME` or the Unix socket path.
        path: String,
        version: String,
        pid: u32,
        #[serde(rename = "protocolVersion")]
        protocol_version: u32,
    },
    Failed {
        reason: String,
    },
}

/// `environment.detect` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvironmentParams {
    /// Time limit for each side's probe, in milliseconds (5,000 when absent; 100–60,000).
    pub timeout_ms: Option<u64>,
}

/// Where photos can be written: `on_premises`, `cloud`, `hybrid` (both) or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    OnPremises,
    Cloud,
    Hybrid,
    None,
}

/// The environment report (the wire form of `photobulk_engine::environment::EnvironmentReport`,
/// camelCase): `{"environment":"hybrid","onPremises":{…},"cloud":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentInfo {
    pub environment: EnvironmentKind,
    pub on_premises: SideProbeInfo,
    pub cloud: SideProbeInfo,
}

/// What probing one side found.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SideProbeInfo {
    /// This connection has settings for the side (`directory.connect` / `graph.connect`).
    pub configured: bool,
    /// It answered and accepted the credentials.
    pub ok: bool,
    /// Why, in words ("LDAP bind ok to ldaps://dc1 (active_directory, DC=corp,DC=example)").
    pub detail: String,
    pub elapsed_ms: u64,
    /// On-premises: what the rootDSE says the server is.
    pub server_kind: Option<String>,
    /// On-premises: the search base in use.
    pub naming_context: Option<String>,
    /// Cloud: users on the first page of `GET /users` (up to 999).
    pub users: Option<usize>,
}

/// How an AD user is found in the tenant for `photo.syncHdToAd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudMatch {
    /// AD userPrincipalName = cloud UPN (Entra Connect's default).
    #[default]
    Upn,
    /// AD mail = cloud mail.
    Mail,
    /// AD sAMAccountName = cloud UPN prefix.
    Alias,
}

/// `photo.syncHdToAd` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncHdParams {
    /// The AD users (found by `matchBy`); every user under `searchBase` when empty.
    pub identities: Vec<String>,
    pub match_by: MatchBy,
    pub search_base: Option<String>,
    pub cloud_match: CloudMatch,
    pub crop: Crop,
    /// Decide everything, write nothing (statuses `would_write` instead of `written`).
    pub dry_run: bool,
    /// Convert and compare even when the journal says this cloud photo was already synced.
    pub force: bool,
    pub no_backup: bool,
    /// The sync journal (`BACKUP/sync-hd.jsonl` when absent, the name the CLI uses too).
    pub journal: Option<String>,
}

/// What happened to one user of `photo.syncHdToAd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncHdStatus {
    Written,
    WouldWrite,
    Unchanged,
    NoCloudPhoto,
    NoMailbox,
    NotInCloud,
    Failed,
}

/// One user of `photo.syncHdToAd`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncHdItem {
    pub identity: String,
    pub dn: Option<String>,
    /// The cloud user's UPN (or the key it was looked up by).
    pub cloud_user: Option<String>,
    pub status: SyncHdStatus,
    pub source_sha256: Option<String>,
    pub source_bytes: Option<usize>,
    pub written_sha256: Option<String>,
    pub written_bytes: Option<usize>,
    pub backup_id: Option<String>,
    pub error: Option<ItemError>,
}

/// Counts by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncHdSummary {
    pub total: usize,
    pub written: usize,
    pub would_write: usize,
    pub unchanged: usize,
    pub no_cloud_photo: usize,
    pub no_mailbox: usize,
    pub not_in_cloud: usize,
    pub failed: usize,
}

/// `photo.syncHdToAd` result; the users arrive as `syncHd/item`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncHdResult {
    pub summary: SyncHdSummary,
    pub cancelled: bool,
    pub journal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncHdItemParams {
    pub request_id: crate::RequestId,
    pub item: SyncHdItem,
}
