//! Directory: find users and read, write, back up and restore their AD `thumbnailPhoto` over
//! LDAP.
//!
//! # What it is for
//! PhotoBulk puts contact photos into Active Directory. This crate is the only part that talks
//! LDAP: it connects securely, finds users by the names administrators use (sAMAccountName,
//! userPrincipalName, mail, employeeID or any attribute), lists every user however many there
//! are, and reads, replaces and removes `thumbnailPhoto` — always saving the old value first, so
//! that any write can be undone byte for byte. It knows nothing of image formats (the caller
//! hands it finished bytes) or of JSON-RPC (the caller wraps it).
//!
//! # Why it is shaped so
//! - **Safe by default, unsafe only by explicit choice.** Certificates are verified (system
//!   roots or a CA file) unless [`ConnectOptions::insecure_skip_verify`]; a simple bind over
//!   clear text is refused before connecting unless [`ConnectOptions::allow_plaintext_bind`];
//!   writes need a [`BackupStore`] unless [`WriteOptions::no_backup`] is set; photos over
//!   102,400 bytes (AD's schema limit) are refused before anything is sent.
//! - **Typed errors an administrator can act on.** LDAP result codes become
//!   [`DirectoryError`] variants (49 bad credentials, 50 insufficient rights, 19/21 photo
//!   rejected, 32 no such object...), and [`DirectoryError::is_retryable`] separates "try again
//!   later" (connection lost, timeouts, busy) from "fix something first".
//! - **Names are data, never filter syntax.** Lookups escape every value per RFC 4515 (`*`, `(`,
//!   `)`, `\`, NUL and all non-ASCII bytes become `\XX`), so `star*user` matches only itself.
//!   Two matches are an [`DirectoryError::Ambiguous`] error, never a silent pick.
//! - **Listings page.** AD returns at most 1000 entries per unpaged search; listings use the
//!   simple paged results control and skip the referrals Samba and AD send from a domain root.
//! - **Bulk writes are pipelined.** One connection, a bounded window of modifies in flight
//!   ([`ConnectOptions::window`]), per-item results in input order. This is what lets 10,000
//!   replaces keep pace with `ldapmodify` (see `scripts/bench/ad-write`).
//! - **Every operation has a timeout** ([`ConnectOptions::timeout`], per reply).
//!
//! # Backups
//! See [`backup`] for the folder layout and index format. The backup is fsync'd before the
//! LDAP modify is sent. [`Directory::restore_photo`] puts the latest (or a chosen) backup back.
//!
//! # Authentication: what works where
//! [`AuthMethod`] is what the caller asks for; `auto` (the default of the CLI and the sidecar)
//! means Kerberos when no bind name is given, else a simple bind — as `Set-ADUser` signs in as
//! the current user unless given `-Credential`.
//! - Simple bind over `ldaps://` or `ldap://` + StartTLS: everywhere (AD, Samba, OpenLDAP).
//!   Samba and recent AD refuse simple binds without TLS (rc 8/13 → `StrongAuthRequired`).
//! - Kerberos ([`Credentials::Kerberos`]): SASL GSSAPI through ldap3 and `cross-krb5` — MIT or
//!   Heimdal GSSAPI on Unix (the ticket cache of `kinit`, `KRB5CCNAME`, `KRB5_CONFIG`), SSPI
//!   on Windows (the logon session). In the default build (Debian builds it with `libkrb5-dev`
//!   and `libclang-dev`). Over plain `ldap://` the SASL layer signs and seals every message,
//!   which is what AD's "LDAP signing required" asks for; over TLS it authenticates only and
//!   sends the TLS channel binding (Samba 4.17 refuses that with rc 8 "Sign or Seal are
//!   required", so against Samba use plain `ldap://` with Kerberos). The service principal is `ldap/<host>@<REALM>` (see
//!   [`Credentials::Kerberos`]). Before connecting, the ticket cache is read on Unix so that
//!   no ticket or an expired one is an error that names the fix; after a failed exchange the
//!   GSSAPI/SSPI words are turned into [`DirectoryError::KerberosSpnUnknown`],
//!   [`DirectoryError::KerberosWrongRealm`] and the like ([`kerberos`]). GSSAPI calls block
//!   (ticket cache, KDC): once per connection, on the runtime's worker thread.
//! - [`Directory::signed_in`] says who the connection is bound as and how;
//!   [`Directory::whoami`] asks the server (RFC 4532).
//!
//! # Finding a domain controller
//! [`Directory::connect_located`] looks the domain's DCs up in DNS (`_ldap._tcp.dc._msdcs.<domain>`,
//! [`locate`]), tries them in priority and weight order and fails over on connection errors;
//! [`Directory::located`] says which DC answered and which were skipped. The domain comes from
//! the caller, else [`locate::default_domain`] (`USERDNSDOMAIN`, the ticket's realm, the DNS
//! search domain). [`Locator::dns_server`] asks a given DNS server instead of the system's.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), photobulk_directory::DirectoryError> {
//! use photobulk_directory::*;
//! let mut opts = ConnectOptions::new("ldaps://dc1.example.com");
//! opts.ca_file = Some("/etc/ssl/corp-ca.pem".into());
//! let creds = Credentials::Simple { bind: "admin@example.com".into(), password: Password::new("…") };
//! let dir = Directory::connect(&opts, &creds).await?;
//! let user = dir.find_user(&Lookup::SamAccountName, "john.smith", false).await?;
//! let store = BackupStore::open("backups")?;
//! let jpeg: Vec<u8> = std::fs::read("john.jpg").unwrap_or_default();
//! dir.set_photo(&user.dn, &jpeg, &WriteOptions::backup_to(store.clone())).await?;
//! dir.restore_photo(&user, &store, &RestoreFrom::Latest, &WriteOptions::backup_to(store.clone())).await?;
//! # Ok(()) }
//! ```

pub mod backup;
mod batch;
mod client;
pub mod clock;
mod error;
pub mod filter;
pub mod kerberos;
pub mod locate;

pub use backup::{sha256_hex, AdSubject, BackupReason, BackupRecord, BackupStore};
pub use batch::LookupBatcher;
pub use client::{
    check_photo_size, install_crypto_provider, server_url, AuthMethod, ConnectOptions, Credentials,
    Directory, ListOptions, Located, Password, PhotoItem, Protection, RestoreFrom, RestoreOutcome,
    ServerInfo, ServerKind, SignIn, User, UserStream, WriteOptions, WriteOutcome, FIND_USERS_CHUNK,
};
pub use error::DirectoryError;
pub use filter::{
    escape_filter_value, user_filter, validate_attribute, Lookup, AD_USER_FILTER, LDAP_USER_FILTER,
};
pub use locate::{DomainController, Locator};
pub use photobulk_kind::ErrorKind;

/// The LDAP attribute this crate writes.
pub const PHOTO_ATTR: &str = "thumbnailPhoto";

/// AD's schema limit for thumbnailPhoto (rangeUpper), in bytes.
pub const MAX_PHOTO_BYTES: usize = 102_400;
