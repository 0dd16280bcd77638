//! Kerberos check (feature `gssapi`): bind with the caller's ticket cache and find a user.
//!
//! ```text
//! kinit Administrator@PHOTOBULK.TEST
//! cargo run -p photobulk-directory --features gssapi --example gssapi_whoami -- \
//!     ldap://127.0.0.2 pbdc.photobulk.test john.smith
//! ```
//! SASL GSSAPI over plain ldap:// is allowed: Kerberos never sends the password, and the
//! session is signed/sealed by the SASL layer. (Use ldaps:// + a CA file just the same where
//! policy wants TLS too.)

use photobulk_directory::{ConnectOptions, Credentials, Directory, Lookup};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, fqdn, user] = &args[..] else {
        return Err("usage: gssapi_whoami URL SERVER_FQDN SAMACCOUNTNAME".into());
    };
    let opts = ConnectOptions::new(url.clone());
    let dir = Directory::connect(
        &opts,
        &Credentials::Gssapi {
            server_fqdn: fqdn.clone(),
        },
    )
    .await?;
    let u = dir.find_user(&Lookup::SamAccountName, user, false).await?;
    println!(
        "bound with Kerberos to {:?} ({}); found {}",
        dir.server().kind,
        dir.base()?,
        u.dn
    );
    Ok(())
}
