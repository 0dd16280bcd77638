//! What several test modules share: the Samba AD DC the suite runs against.

use std::collections::HashMap;

use photobulk_directory::{ConnectOptions, Credentials, Directory, Password};
use photobulk_engine::environment::DirectorySettings;

/// Connection settings of a Samba AD DC started by `scripts/samba-dc` (the `PB_SAMBA_*`
/// variables it prints). Test modules add their own helpers in their own `impl Samba` blocks.
#[derive(Debug, Clone)]
pub(crate) struct Samba {
    pub(crate) url: String,
    pub(crate) base: String,
    pub(crate) bind: String,
    pub(crate) password: String,
    pub(crate) ca: String,
    pub(crate) dir: String,
}

impl Samba {
    /// From the environment; panics (tests FAIL, not skip) when the suite's Samba is not set.
    pub(crate) fn from_env() -> Samba {
        let get = |k: &str| {
            std::env::var(format!("PB_SAMBA_{k}")).unwrap_or_else(|_| {
                panic!(
                    "PB_SAMBA_{k} is not set: these tests need a real Samba AD DC. Run \
                     `eval \"$(scripts/samba-dc start)\" && scripts/samba-dc seed 2500` (or \
                     scripts/test), then run the tests in that shell"
                )
            })
        };
        Samba::from_fn(get)
    }

    pub(crate) fn from_fn(get: impl Fn(&str) -> String) -> Samba {
        Samba {
            url: get("URL"),
            base: get("BASE"),
            bind: get("BIND"),
            password: get("PASSWORD"),
            ca: get("CA"),
            dir: get("DIR"),
        }
    }

    /// Parse `export PB_SAMBA_X='v'` lines as `scripts/samba-dc start` prints them.
    pub(crate) fn from_exports(text: &str) -> Samba {
        let mut m = HashMap::new();
        for line in text.lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                m.insert(k.to_string(), v.trim_matches('\'').to_string());
            }
        }
        let get = |k: &str| {
            m.get(&format!("PB_SAMBA_{k}"))
                .cloned()
                .unwrap_or_else(|| panic!("samba-dc start printed no PB_SAMBA_{k}:\n{text}"))
        };
        Samba::from_fn(get)
    }

    /// LDAPS to the DC with its own CA, simple bind as the test administrator.
    pub(crate) fn settings(&self) -> DirectorySettings {
        let mut connect = ConnectOptions::new(self.url.clone());
        connect.ca_file = Some(self.ca.clone().into());
        DirectorySettings {
            connect,
            credentials: Credentials::Simple {
                bind: self.bind.clone(),
                password: Password::new(self.password.clone()),
            },
        }
    }

    pub(crate) async fn connect(&self) -> Directory {
        let s = self.settings();
        Directory::connect(&s.connect, &s.credentials)
            .await
            .unwrap_or_else(|e| panic!("connecting to Samba at {}: {e}", self.url))
    }
}
