//! An LDIF change file (RFC 2849) of `thumbnailPhoto` replaces, for `ldapmodify -f FILE` or
//! `ldifde -i -f FILE` to apply later, when the directory is reachable and DNs are known.
//!
//! Each entry:
//!
//! ```text
//! # john.smith <- photos/John.Smith 648x648.jpg (9312 bytes, sha256 9f86d0…)
//! dn: CN=John Smith,OU=People,DC=photobulk,DC=test
//! changetype: modify
//! replace: thumbnailPhoto
//! thumbnailPhoto:: /9j/4AAQSkZJRgABAQ…
//! -
//! ```
//!
//! Values are base64 (`::`) and folded at 76 columns with a leading space, as RFC 2849 says.
//! A DN that is not a "safe string" (non-ASCII, or starting with a space, `:` or `<`) is written
//! base64 too (`dn::`).
//!
//! # Placeholder DNs
//! Without a `--users` export, or for an account the export does not have, the DN is
//! `CN=<account>,CN=Users,<base>` (`<base>` is `--base`, default `DC=example,DC=invalid`) and the
//! entry's comment says `PLACEHOLDER DN`. Search-and-replace them, or export the users
//! (`Get-ADUser -Filter * | Select DistinguishedName,SamAccountName | Export-Csv users.csv`) and
//! run again with `--users users.csv`. `ldapmodify` fails such an entry with "No such object"
//! rather than writing someone else.

use std::io::Write;

/// Default base of placeholder DNs: `.invalid` can never be a real domain (RFC 2606).
pub const PLACEHOLDER_BASE: &str = "DC=example,DC=invalid";

/// The placeholder DN for `account`.
pub fn placeholder_dn(account: &str, base: Option<&str>) -> String {
    format!(
        "CN={},CN=Users,{}",
        escape_rdn_value(account),
        base.unwrap_or(PLACEHOLDER_BASE)
    )
}

/// Escape an RDN attribute value per RFC 4514.
pub fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// RFC 2849 SAFE-STRING: ASCII without NUL/LF/CR, not starting with space, `:` or `<`, and not
/// ending with a space (some tools trim).
fn is_safe(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .all(|&c| c.is_ascii() && c != 0 && c != b'\n' && c != b'\r')
        && !matches!(b.first(), Some(b' ' | b':' | b'<'))
        && !s.ends_with(' ')
}

/// Write `name: value` (or `name:: base64` when needed), folded at 76 columns.
fn write_attr(
    w: &mut impl Write,
    name: &str,
    value: &[u8],
    force_b64: bool,
) -> std::io::Result<()> {
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|s| !force_b64 && is_safe(s));
    let line = match text {
        Some(s) => format!("{name}: {s}"),
        None => format!("{name}:: {}", base64(value)),
    };
    let bytes = line.as_bytes();
    // Fold: first line 76 bytes, continuation lines " " + 75 bytes. Base64 and safe strings are
    // ASCII, so splitting on bytes never cuts a character.
    let mut start = 0;
    let mut width = 76;
    while start < bytes.len() {
        let end = (start + width).min(bytes.len());
        if start > 0 {
            w.write_all(b" ")?;
        }
        w.write_all(&bytes[start..end])?;
        w.write_all(b"\n")?;
        start = end;
        width = 75;
    }
    Ok(())
}

/// Write a comment line (control characters replaced, so a file name cannot end the comment).
pub fn write_comment(w: &mut impl Write, text: &str) -> std::io::Result<()> {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    writeln!(w, "# {clean}")
}

/// Write one `thumbnailPhoto` replace entry followed by a blank line.
pub fn write_replace(w: &mut impl Write, dn: &str, photo: &[u8]) -> std::io::Result<()> {
    write_attr(w, "dn", dn.as_bytes(), false)?;
    w.write_all(b"changetype: modify\nreplace: thumbnailPhoto\n")?;
    write_attr(w, "thumbnailPhoto", photo, true)?;
    w.write_all(b"-\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn entries_fold_and_encode_unsafe_dns() {
        let mut out = Vec::new();
        write_replace(&mut out, "CN=zoë.müller,OU=People,DC=x", &[0xff; 100]).expect("write");
        let text = String::from_utf8(out).expect("ascii");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("dn:: "), "{}", lines[0]);
        assert_eq!(lines[1], "changetype: modify");
        assert_eq!(lines[2], "replace: thumbnailPhoto");
        assert!(lines[3].starts_with("thumbnailPhoto:: /"));
        assert!(lines.iter().all(|l| l.len() <= 76), "{text}");
        assert!(lines[4].starts_with(' '), "folded continuation");
        assert!(text.ends_with("-\n\n"));
        // Unfolding gives back the base64 of the value.
        let unfolded: String = lines[3..lines.len() - 2]
            .iter()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        assert_eq!(
            unfolded,
            format!("thumbnailPhoto:: {}", base64(&[0xff; 100]))
        );
    }

    #[test]
    fn placeholder_dns_escape_the_account() {
        assert_eq!(
            placeholder_dn("a,b+c", None),
            "CN=a\\,b\\+c,CN=Users,DC=example,DC=invalid"
        );
        assert_eq!(placeholder_dn(" x", Some("DC=y")), "CN=\\ x,CN=Users,DC=y");
    }
}
