//! Benchmark helper for `scripts/bench/ad-write` (run that, not this).
//!
//! ```text
//! ad_write_bench --url URL --ca PEM --bind DN --ou DN --count N [--window W] [--size BYTES]
//!                [--ldif PATH] [--backup-dir DIR]
//! ```
//! Password from `PB_BENCH_PASSWORD`. Lists the users under `--ou` (paged), makes `--count`
//! JPEG-looking photos of about `--size` bytes (random-ish bytes between JPEG markers, so they
//! neither compress nor dedupe), assigns them round-robin to the users, and
//! - with `--ldif PATH`: writes the equivalent LDIF (one `changetype: modify` / `replace:
//!   thumbnailPhoto` record per photo, base64) for `ldapmodify`, and exits;
//! - otherwise: opens a fresh connection and replaces them all with `Directory::set_photos`
//!   (one connection, `--window` modifies in flight), and prints `elapsed_s=… ok=… failed=…`.
//!   The timed part is connect + bind + all the writes, like `ldapmodify`'s run.

use std::io::Write;
use std::time::{Duration, Instant};

use photobulk_directory::{
    BackupStore, ConnectOptions, Credentials, Directory, ListOptions, Password, PhotoItem,
    WriteOptions,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn photo(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&[
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ]);
    while v.len() < len - 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 24) as u8);
    }
    v.extend_from_slice(&[0xff, 0xd9]);
    v
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).ok_or_else(|| format!("missing {n}"));
    let url = need("--url")?;
    let ca = need("--ca")?;
    let bind = need("--bind")?;
    let ou = need("--ou")?;
    let count: usize = need("--count")?.parse()?;
    let window: usize = arg(&args, "--window")
        .map(|w| w.parse())
        .transpose()?
        .unwrap_or(32);
    let size: usize = arg(&args, "--size")
        .map(|w| w.parse())
        .transpose()?
        .unwrap_or(8192);
    let password = std::env::var("PB_BENCH_PASSWORD").map_err(|_| "PB_BENCH_PASSWORD not set")?;

    let mut opts = ConnectOptions::new(url);
    opts.ca_file = Some(ca.into());
    opts.window = window;
    opts.timeout = Duration::from_secs(60);
    let creds = Credentials::Simple {
        bind,
        password: Password::new(password),
    };

    let setup = Directory::connect(&opts, &creds).await?;
    let mut dns: Vec<String> = setup
        .list_users(&ListOptions {
            base: Some(ou.clone()),
            only_with_photo: false,
            fetch_photo: false,
        })
        .await?
        .into_iter()
        .map(|u| u.dn)
        .collect();
    setup.unbind().await?;
    dns.sort();
    if dns.is_empty() {
        return Err(format!("no users under {ou}").into());
    }
    // Sizes vary a little around --size (±256 bytes), like real photos.
    let items: Vec<PhotoItem> = (0..count)
        .map(|i| PhotoItem {
            dn: dns[i % dns.len()].clone(),
            photo: photo(i as u64 + 1, size - 256 + (i * 37) % 512),
        })
        .collect();

    if let Some(path) = arg(&args, "--ldif") {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for it in &items {
            writeln!(
                f,
                "dn: {}\nchangetype: modify\nreplace: thumbnailPhoto\nthumbnailPhoto:: {}\n-\n",
                it.dn,
                base64(&it.photo)
            )?;
        }
        f.flush()?;
        let bytes: usize = items.iter().map(|i| i.photo.len()).sum();
        println!(
            "ldif={path} records={} users={} photo_bytes_total={bytes}",
            items.len(),
            dns.len()
        );
        return Ok(());
    }

    let write = match arg(&args, "--backup-dir") {
        Some(d) => WriteOptions::backup_to(BackupStore::open(d)?),
        None => WriteOptions::without_backup(),
    };
    let t0 = Instant::now();
    let dir = Directory::connect(&opts, &creds).await?;
    let results = dir.set_photos(items, &write).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if let Some(e) = failed.first() {
        eprintln!("first failure: {e}");
    }
    dir.unbind().await?;
    println!(
        "elapsed_s={elapsed:.3} ok={} failed={} window={window} users={} rate_per_s={:.1}",
        results.len() - failed.len(),
        failed.len(),
        dns.len(),
        results.len() as f64 / elapsed
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
