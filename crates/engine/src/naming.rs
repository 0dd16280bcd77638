//! Which account a photo file belongs to.
//!
//! The rule administrators already use for bulk folders: the account name is the file
//! name up to the first space (`John.Smith 648x648.jpg` → `John.Smith`). A file with no
//! space is named after the account with its image extension removed
//! (`jane.doe.png` → `jane.doe`). `John.Smith648x648.jpg` is therefore the account
//! `John.Smith648x648`, which matches nobody real — exactly as the importer they know.

use std::path::Path;

/// File extensions (lower case, no dot) that are treated as photos when a folder is scanned.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "png", "gif", "bmp", "dib", "tif", "tiff", "webp", "heic",
    "heif", "hif",
];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// The account a file name names, or `None` when it names nobody (empty, starts with a
/// space, or is not valid Unicode).
pub fn account_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let account = match name.split_once(' ') {
        Some((head, _)) => head,
        None => match name.rsplit_once('.') {
            Some((stem, ext)) if IMAGE_EXTENSIONS.iter().any(|k| k.eq_ignore_ascii_case(ext)) => {
                stem
            }
            _ => name,
        },
    };
    let account = account.trim_end_matches('.');
    if account.is_empty() || account.starts_with('.') {
        None
    } else {
        Some(account.to_string())
    }
}

/// Key under which two account names are the same account. sAMAccountName and UPN
/// comparisons in AD are case-insensitive, so `Bob.Jones` and `bob.jones` collide.
pub fn account_key(account: &str) -> String {
    account.to_lowercase()
}

/// `s` with control characters escaped (`\0`, `\t`, `\n`, `\r`, `\e`, else `\u{..}`), for
/// printing file names and messages in tables and on stderr: a NUL or an escape sequence in a
/// file name must not reach the terminal raw.
pub fn escape_control(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `name` as a file name: letters, digits and `._-@` kept, anything else (path separators,
/// spaces, control characters) becomes `_`.
pub fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(name: &str) -> Option<String> {
        account_from_file_name(Path::new(name))
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_control("a b.jpg"), "a b.jpg");
        assert_eq!(
            escape_control("a\0b\x1b[2J\n\u{7f}.jpg"),
            "a\\0b\\e[2J\\n\\u{7f}.jpg"
        );
    }

    #[test]
    fn up_to_first_space() {
        assert_eq!(acc("John.Smith 648x648.jpg").as_deref(), Some("John.Smith"));
        assert_eq!(
            acc("John.Smith  two spaces.png").as_deref(),
            Some("John.Smith")
        );
        assert_eq!(
            acc("dir/sub/Ann.Lee 2024 final.jpeg").as_deref(),
            Some("Ann.Lee")
        );
    }

    #[test]
    fn no_space_means_stem() {
        assert_eq!(acc("jane.doe.png").as_deref(), Some("jane.doe"));
        assert_eq!(
            acc("John.Smith648x648.jpg").as_deref(),
            Some("John.Smith648x648")
        );
        assert_eq!(acc("zoë.müller.HEIC").as_deref(), Some("zoë.müller"));
        // Unknown extension is part of the name: no guessing.
        assert_eq!(acc("john.smith").as_deref(), Some("john.smith"));
    }

    #[test]
    fn names_nobody() {
        assert_eq!(acc(" leading.jpg"), None);
        assert_eq!(acc(".jpg"), None);
        assert_eq!(acc(".hidden.jpg"), None);
    }

    #[test]
    fn keys_are_case_insensitive() {
        assert_eq!(account_key("Bob.Jones"), account_key("bob.JONES"));
        assert_eq!(account_key("ZOË"), account_key("zoë"));
    }

    #[test]
    fn extensions() {
        assert!(has_image_extension(Path::new("a.JPG")));
        assert!(has_image_extension(Path::new("a b.heic")));
        assert!(!has_image_extension(Path::new("Thumbs.db")));
        assert!(!has_image_extension(Path::new("noext")));
    }
}
