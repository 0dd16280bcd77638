//! Kerberos as the current user: what the ticket cache holds, which service principal a DC
//! has, and what a failed GSSAPI exchange means for the administrator.
//!
//! The bind itself is ldap3's SASL GSSAPI (`cross-krb5`: MIT/Heimdal GSSAPI on Unix, SSPI on
//! Windows). This module only looks before and explains after:
//!
//! - [`current_ticket`] reads the default credential cache on Unix (`KRB5CCNAME`, else the
//!   system default) through GSSAPI, so "no ticket" and "expired ticket" are told apart before
//!   anything is sent, with the principal named. On Windows the logon session is the
//!   credential; there is nothing to read, and SSPI reports problems at bind time.
//! - [`service_principal`] builds `ldap/<host>@<REALM>`: an AD realm is the domain's DNS name
//!   in capitals, so the realm is explicit and a machine without a `default_realm` still works.
//! - [`classify_failure`] turns the GSSAPI/SSPI message of a failed bind into one of the typed
//!   errors (expired, SPN unknown, another realm, no ticket), each saying what to do.

use std::time::Duration;

use crate::DirectoryError;

/// The default Kerberos credential: who, and for how much longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// `user@REALM`.
    pub principal: String,
    /// Time left on the ticket-granting ticket.
    pub remaining: Duration,
}

impl Ticket {
    /// The realm part of the principal (after the last `@`), if any.
    pub fn realm(&self) -> Option<&str> {
        self.principal.rsplit_once('@').map(|(_, r)| r)
    }
}

/// The current user's Kerberos ticket.
///
/// - `Ok(Some(ticket))`: a valid ticket-granting ticket is in the default cache (Unix).
/// - `Ok(None)`: not knowable here (Windows: the logon session is used through SSPI).
/// - `Err(NoKerberosTicket)` / `Err(KerberosTicketExpired)`: nothing usable in the cache.
pub fn current_ticket() -> Result<Option<Ticket>, DirectoryError> {
    sys::current_ticket()
}

#[cfg(unix)]
mod sys {
    use super::Ticket;
    use crate::DirectoryError;
    use libgssapi::credential::{Cred, CredUsage};
    use libgssapi::oid::{OidSet, GSS_MECH_KRB5};

    /// GSS routine error numbers (RFC 2744 §3.9.1, bits 16–23 of the major status).
    const ROUTINE_NO_CRED: u32 = 7;
    const ROUTINE_CREDENTIALS_EXPIRED: u32 = 11;

    pub(super) fn current_ticket() -> Result<Option<Ticket>, DirectoryError> {
        let gss = |e: libgssapi::error::Error| DirectoryError::Kerberos {
            reason: format!("reading the Kerberos ticket cache: {e}"),
        };
        let mut mechs = OidSet::new().map_err(gss)?;
        mechs.add(&GSS_MECH_KRB5).map_err(gss)?;
        let cred = match Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs)) {
            Ok(c) => c,
            Err(e) => {
                return Err(match (e.major.bits() >> 16) & 0xff {
                    ROUTINE_CREDENTIALS_EXPIRED => {
                        DirectoryError::KerberosTicketExpired { principal: None }
                    }
                    ROUTINE_NO_CRED => DirectoryError::NoKerberosTicket {
                        reason: e.to_string(),
                    },
                    _ => gss(e),
                })
            }
        };
        // MIT answers "expired" from gss_inquire_cred (the name, the lifetime) rather than
        // from gss_acquire_cred when the cache holds only an expired TGT.
        let expired = |e: &libgssapi::error::Error| {
            (e.major.bits() >> 16) & 0xff == ROUTINE_CREDENTIALS_EXPIRED
        };
        let principal = match cred.name() {
            Ok(n) => n.to_string(),
            Err(e) if expired(&e) => {
                return Err(DirectoryError::KerberosTicketExpired { principal: None })
            }
            Err(e) => return Err(gss(e)),
        };
        let remaining = match cred.lifetime() {
            Ok(d) => d,
            Err(e) if expired(&e) => std::time::Duration::ZERO,
            Err(e) => return Err(gss(e)),
        };
        if remaining.is_zero() {
            return Err(DirectoryError::KerberosTicketExpired {
                principal: Some(principal),
            });
        }
        Ok(Some(Ticket {
            principal,
            remaining,
        }))
    }
}

#[cfg(not(unix))]
mod sys {
    use super::Ticket;
    use crate::DirectoryError;

    /// Windows: SSPI signs in with the logon session; there is no cache to inspect.
    pub(super) fn current_ticket() -> Result<Option<Ticket>, DirectoryError> {
        Ok(None)
    }
}

/// The AD realm of a naming context: `DC=corp,DC=example` → `CORP.EXAMPLE`.
pub fn realm_of_naming_context(dn: &str) -> Option<String> {
    let parts: Vec<String> = dn
        .split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("DC")
                .then(|| v.trim().to_ascii_uppercase())
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

/// What ldap3 is given for the SPN (it prepends `ldap/`): `host@REALM`, or `host` when the
/// realm is not known (the Kerberos library's default realm / domain_realm mapping then).
pub fn service_principal(host: &str, realm: Option<&str>) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match realm {
        Some(r) if !r.is_empty() => format!("{host}@{}", r.to_ascii_uppercase()),
        _ => host,
    }
}

/// Turn the message of a failed GSSAPI exchange into an error that says what to do.
///
/// `spn` is the service principal asked for (`ldap/host@REALM`), `ticket` what the cache held
/// (Unix), `dc_realm` the DC's realm. A ticket for another realm is named as such first: MIT
/// then reports the missing cross-realm `krbtgt/` as "not found", which is not the DC's fault.
pub fn classify_failure(
    message: &str,
    spn: &str,
    ticket: Option<&Ticket>,
    dc_realm: Option<&str>,
) -> DirectoryError {
    let m = message.to_ascii_lowercase();
    if let (Some(t), Some(dc)) = (ticket, dc_realm) {
        if let Some(have) = t.realm() {
            if !have.eq_ignore_ascii_case(dc) {
                return DirectoryError::KerberosWrongRealm {
                    principal: t.principal.clone(),
                    realm: dc.to_ascii_uppercase(),
                };
            }
        }
    }
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if any(&[
        // MIT: KRB5KRB_AP_ERR_TKT_EXPIRED / GSS_S_CREDENTIALS_EXPIRED.
        "ticket expired",
        "credentials have expired",
        "credential has expired",
        // SSPI: SEC_E_CONTEXT_EXPIRED, SEC_E_TIME_SKEW is not this.
        "0x80090317",
    ]) {
        return DirectoryError::KerberosTicketExpired {
            principal: ticket.map(|t| t.principal.clone()),
        };
    }
    if any(&[
        // MIT: KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN.
        "not found in kerberos database",
        // SSPI: SEC_E_TARGET_UNKNOWN, SEC_E_WRONG_PRINCIPAL.
        "0x80090303",
        "0x80090322",
        "target is unknown",
    ]) {
        return DirectoryError::KerberosSpnUnknown {
            spn: format!("ldap/{spn}"),
        };
    }
    if any(&[
        // MIT: KRB5_FCC_NOFILE / KRB5_CC_NOTFOUND; SSPI: SEC_E_NO_CREDENTIALS.
        "no kerberos credentials",
        "no credentials cache",
        "0x8009030e",
        "no credentials are available",
    ]) {
        return DirectoryError::NoKerberosTicket {
            reason: message.to_string(),
        };
    }
    DirectoryError::Kerberos {
        reason: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(p: &str) -> Ticket {
        Ticket {
            principal: p.into(),
            remaining: Duration::from_secs(3600),
        }
    }

    #[test]
    fn realms_from_naming_contexts() {
        assert_eq!(
            realm_of_naming_context("DC=photobulk,DC=test").as_deref(),
            Some("PHOTOBULK.TEST")
        );
        assert_eq!(
            realm_of_naming_context("OU=x, dc=Corp ,DC=Example").as_deref(),
            Some("CORP.EXAMPLE")
        );
        assert_eq!(realm_of_naming_context("o=example"), None);
    }

    #[test]
    fn service_principals() {
        assert_eq!(
            service_principal("PBDC.photobulk.test.", Some("photobulk.test")),
            "pbdc.photobulk.test@PHOTOBULK.TEST"
        );
        assert_eq!(service_principal("dc1", None), "dc1");
    }

    // Messages as MIT krb5 1.20 (Debian 12) and SSPI word them.
    #[test]
    fn failures_are_classified() {
        let t = ticket("Administrator@PHOTOBULK.TEST");
        let spn = "alias.photobulk.test@PHOTOBULK.TEST";
        let kind = |m: &str, t: Option<&Ticket>| {
            classify_failure(m, spn, t, Some("PHOTOBULK.TEST")).kind()
        };
        assert_eq!(
            kind(
                "Unspecified GSS failure.  Minor code may provide more information: Server ldap/alias.photobulk.test@PHOTOBULK.TEST not found in Kerberos database",
                Some(&t)
            ),
            "kerberos_spn_unknown"
        );
        assert_eq!(
            kind(
                "The referenced credential has expired: Ticket expired",
                Some(&t)
            ),
            "kerberos_ticket_expired"
        );
        assert_eq!(
            kind(
                "No credentials were supplied, or the credentials were unavailable or inaccessible: No Kerberos credentials available (default cache: FILE:/tmp/x)",
                None
            ),
            "no_kerberos_ticket"
        );
        assert_eq!(
            kind(
                "The specified target is unknown or unreachable (0x80090303)",
                None
            ),
            "kerberos_spn_unknown"
        );
        assert_eq!(kind("something else", None), "kerberos");
        // Another realm's ticket is named as such, whatever the library said.
        let other = ticket("admin@OTHER.TEST");
        let e = classify_failure(
            "Server krbtgt/PHOTOBULK.TEST@OTHER.TEST not found in Kerberos database",
            spn,
            Some(&other),
            Some("PHOTOBULK.TEST"),
        );
        assert_eq!(e.kind(), "kerberos_wrong_realm");
        let msg = e.to_string();
        assert!(
            msg.contains("admin@OTHER.TEST") && msg.contains("PHOTOBULK.TEST"),
            "{msg}"
        );
    }
}
