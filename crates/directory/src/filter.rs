//! Search filters built from untrusted names: RFC 4515 escaping, attribute-name validation, and
//! the user-class filter.

use std::fmt;

use crate::DirectoryError;

/// Users on AD and Samba: people with the `user` class. Computer accounts (whose class derives
/// from `user`) and contacts have other object categories, so they are excluded.
pub const AD_USER_FILTER: &str = "(&(objectCategory=person)(objectClass=user))";

/// Users on other LDAP servers, including the AD-like OpenLDAP profile (whose `user` class
/// derives from `inetOrgPerson`).
///
/// Why not one filter for both: OpenLDAP evaluates an equality test on an object class it does
/// not know (`computer`) or on an attribute it does not know (`objectCategory`) as Undefined,
/// and `NOT Undefined` is still Undefined, so AD's exclusions would make every user vanish.
pub const LDAP_USER_FILTER: &str = "(|(objectClass=user)(objectClass=inetOrgPerson))";

/// The user-class filter for a kind of server.
pub fn user_filter(ad: bool) -> &'static str {
    if ad {
        AD_USER_FILTER
    } else {
        LDAP_USER_FILTER
    }
}

/// Which attribute identifies a user in a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// `sAMAccountName` (the pre-Windows-2000 logon name; what folder imports use).
    SamAccountName,
    /// `userPrincipalName` (`name@domain`).
    UserPrincipalName,
    /// `mail`.
    Mail,
    /// `employeeID`.
    EmployeeId,
    /// Any other attribute, validated by [`Lookup::attribute`] / [`Lookup::parse`].
    Attribute(String),
}

impl Lookup {
    /// Parse the command-line spelling: `samaccountname`, `upn`, `mail`, `employeeid` (any
    /// case), or an attribute name.
    pub fn parse(s: &str) -> Result<Self, DirectoryError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "samaccountname" | "sam" => Lookup::SamAccountName,
            "upn" | "userprincipalname" => Lookup::UserPrincipalName,
            "mail" | "email" => Lookup::Mail,
            "employeeid" => Lookup::EmployeeId,
            _ => {
                validate_attribute(s)?;
                Lookup::Attribute(s.to_string())
            }
        })
    }

    /// The LDAP attribute name.
    pub fn attribute(&self) -> &str {
        match self {
            Lookup::SamAccountName => "sAMAccountName",
            Lookup::UserPrincipalName => "userPrincipalName",
            Lookup::Mail => "mail",
            Lookup::EmployeeId => "employeeID",
            Lookup::Attribute(a) => a,
        }
    }

    /// `(&CLASS(attr=escaped value))`, with `class` from [`user_filter`].
    pub fn filter(&self, class: &str, value: &str) -> Result<String, DirectoryError> {
        Ok(format!("(&{class}{})", self.term(value)?))
    }

    /// `(attr=escaped value)`: one equality term, the attribute name checked first.
    pub fn term(&self, value: &str) -> Result<String, DirectoryError> {
        let attr = self.attribute();
        validate_attribute(attr)?;
        Ok(format!(
            "({attr}={})",
            escape_filter_value(value.as_bytes())
        ))
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.attribute())
    }
}

/// Check that `name` is an LDAP attribute description without options: a letter followed by
/// letters, digits and hyphens (RFC 4512 `descr`), or a numeric OID. Anything else could change
/// the meaning of a filter and is refused.
pub fn validate_attribute(name: &str) -> Result<(), DirectoryError> {
    let bad = || DirectoryError::InvalidAttribute(name.to_string());
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return Err(bad());
    }
    if b[0].is_ascii_alphabetic() {
        if b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
            return Ok(());
        }
        return Err(bad());
    }
    // numericoid = number 1*( DOT number ), number = DIGIT / ( LDIGIT 1*DIGIT )
    for part in name.split('.') {
        let ok = !part.is_empty()
            && part.bytes().all(|c| c.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'));
        if !ok {
            return Err(bad());
        }
    }
    if name.contains('.') {
        Ok(())
    } else {
        Err(bad())
    }
}

/// RFC 4515 escaping of an assertion value: `*`, `(`, `)`, `\`, NUL and every byte outside
/// printable ASCII become `\XX`, so the value can only ever match itself (no wildcards, no
/// injected filter syntax, no encoding surprises with non-ASCII names).
pub fn escape_filter_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for &c in value {
        match c {
            b'*' | b'(' | b')' | b'\\' | 0 => push_hex(&mut out, c),
            0x20..=0x7e => out.push(c as char),
            _ => push_hex(&mut out, c),
        }
    }
    out
}

fn push_hex(out: &mut String, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push(HEX[(c >> 4) as usize] as char);
    out.push(HEX[(c & 15) as usize] as char);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::ASNTag;

    #[test]
    fn escapes_metacharacters_nul_and_non_ascii() {
        assert_eq!(escape_filter_value(b"star*user"), "star\\2auser");
        assert_eq!(escape_filter_value(b"paren(user)"), "paren\\28user\\29");
        assert_eq!(escape_filter_value(b"back\\slash"), "back\\5cslash");
        assert_eq!(escape_filter_value(b"nul\0byte"), "nul\\00byte");
        assert_eq!(escape_filter_value("zoë".as_bytes()), "zo\\c3\\ab");
        assert_eq!(escape_filter_value(b"*"), "\\2a");
        assert_eq!(escape_filter_value(b"plain.name-1@x.y"), "plain.name-1@x.y");
    }

    #[test]
    fn escaped_filters_parse_to_the_exact_bytes() {
        // ldap3's own filter parser must read our escapes back as the original bytes, with no
        // substring (wildcard) component.
        for v in [
            "star*user",
            "*",
            "paren(user)",
            "back\\slash",
            "a\0b",
            "zoë.müller",
            ")(objectClass=*",
        ] {
            let f = format!("(sAMAccountName={})", escape_filter_value(v.as_bytes()));
            // equalityMatch is context tag 3; substrings would be 4.
            let tag = ldap3::parse_filter(&f).expect("parses").into_structure();
            assert_eq!(tag.id, 3, "{v:?} must be an equality match");
            let parts = tag.expect_constructed().expect("seq");
            let value = parts[1].clone().expect_primitive().expect("octets");
            assert_eq!(value, v.as_bytes());
        }
    }

    #[test]
    fn attribute_names_are_validated() {
        for ok in [
            "mail",
            "employeeID",
            "extensionAttribute1",
            "x-custom",
            "1.2.840.113556.1.4.221",
        ] {
            assert!(validate_attribute(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "mail)(x=*",
            "a b",
            "1mail",
            "1.2.",
            "01.2",
            "mail;binary",
            "ma=il",
            "é",
        ] {
            assert!(validate_attribute(bad).is_err(), "{bad:?}");
        }
        assert!(Lookup::parse("mail)(cn=*").is_err());
        assert_eq!(
            Lookup::parse("UPN").expect("upn"),
            Lookup::UserPrincipalName
        );
        assert_eq!(
            Lookup::parse("employeeid").expect("eid").attribute(),
            "employeeID"
        );
        assert_eq!(
            Lookup::parse("extensionAttribute3")
                .expect("ext")
                .attribute(),
            "extensionAttribute3"
        );
    }

    #[test]
    fn lookup_filter_wraps_the_user_class() {
        for ad in [true, false] {
            let f = Lookup::SamAccountName
                .filter(user_filter(ad), "star*user")
                .expect("filter");
            assert_eq!(
                f,
                format!("(&{}(sAMAccountName=star\\2auser))", user_filter(ad))
            );
            assert!(ldap3::parse_filter(&f).is_ok());
        }
    }
}
