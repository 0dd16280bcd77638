//! `photobulk`: the command line. Thin on purpose: it parses arguments, shows progress
//! and wires the library crates (imaging, engine, directory) together.

mod ad;
mod alloc;
mod env;
mod graph;
mod import;
mod progress;
mod report;
mod runs;
mod serve;
mod sync_hd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use photobulk_engine::{plan, ConvertJob, ItemResult, PlanOptions, Status};
use photobulk_imaging::{Crop, Options, Target};

#[derive(Parser, Debug)]
#[command(
    name = "photobulk",
    version,
    about = "Contact photos for Active Directory, Exchange and Microsoft 365, in bulk and safely",
    after_help = "Environment: PHOTOBULK_JPEG_DECODER=libjpeg decodes JPEGs with libjpeg's own Huffman \
                  decoder instead of photobulk's (same pixels; a way back without a rebuild)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Turn any photos into AD (96x96, <= 10 KB) and Exchange HD (648x648) JPEGs
    Convert(ConvertArgs),
    /// Read, write, back up and restore AD thumbnailPhoto over LDAP
    Ad(ad::AdArgs),
    /// Exchange Online / Entra ID photos through Microsoft Graph (users, photos, bulk upload)
    Graph(graph::GraphArgs),
    /// Put photos into AD thumbnailPhoto (resumable, backed up), or offline into JPEGs + LDIF
    Import(import::ImportArgs),
    /// Put back every photo an import run replaced, byte for byte
    Restore(import::RestoreArgs),
    /// List import and upload runs: state (complete, interrupted, incomplete, resumed), counts
    Runs(runs::RunsArgs),
    /// Run the main job (offline import) on built-in sample photos (no servers needed)
    Demo {
        /// Folder for the sample inputs, outputs, manifest and report
        #[arg(long, default_value = "photobulk-demo")]
        out: PathBuf,
    },
    /// JSON-RPC sidecar for the PowerShell module (named pipe / Unix socket)
    Serve(serve::ServeArgs),
    /// Put each user's cloud HD photo (Graph) into AD thumbnailPhoto at 96x96 <= 10 KB
    #[command(name = "sync-hd-to-ad")]
    SyncHdToAd(sync_hd::SyncHdArgs),
    /// Detect on-premises, cloud or hybrid: probe LDAP and Graph and say why per side
    Env(env::EnvArgs),
    /// Every user's AD photo next to the cloud photo, with what is wrong: text, JSON, CSV, HTML
    Report(report::ReportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CropArg {
    /// Head and shoulders around the main face, like an ID photo (no face: as `top`)
    Face,
    /// Centre square (what Exchange does)
    Center,
    /// Keep the top of portrait photos (heads)
    Top,
    /// Letterbox onto the background colour; nothing is cut off
    Pad,
}

impl CropArg {
    pub(crate) fn to_crop(self) -> Crop {
        match self {
            CropArg::Face => Crop::Face,
            CropArg::Center => Crop::Center,
            CropArg::Top => Crop::Top,
            CropArg::Pad => Crop::Pad,
        }
    }
}

/// How the photo is framed and the AD photo's size and budget: the same flags for `convert`
/// and `import`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct AdPhotoArgs {
    /// How non-square photos become square
    #[arg(long, value_enum, default_value_t = CropArg::Face)]
    pub(crate) crop: CropArg,
    /// Byte budget of the AD photo (Exchange Online takes AD photos only up to 10,240 bytes;
    /// AD itself refuses more than 102,400)
    #[arg(long, default_value_t = 10_240, value_parser = clap::value_parser!(u64).range(1024..=102_400))]
    ad_max_bytes: u64,
    /// Side of the AD photo in pixels
    #[arg(long, default_value_t = 96)]
    ad_size: u32,
}

impl AdPhotoArgs {
    /// The `ad` target these flags ask for.
    pub(crate) fn ad_target(&self) -> anyhow::Result<Target> {
        Ok(Target::new(
            "ad",
            self.ad_size,
            usize::try_from(self.ad_max_bytes)?,
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// AD thumbnailPhoto, 96x96
    Ad,
    /// Exchange HD photo, 648x648
    Hd,
}

#[derive(clap::Args, Debug)]
struct ConvertArgs {
    /// Photo files and/or folders of photos (file name = account, up to the first space)
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder: OUT/ad/<account>.jpg, OUT/hd/<account>.jpg, manifest.json, report.html
    #[arg(long)]
    out: PathBuf,
    /// Which outputs to make
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [TargetArg::Ad, TargetArg::Hd])]
    target: Vec<TargetArg>,
    #[command(flatten)]
    photo: AdPhotoArgs,
    /// Byte budget of the HD photo (Graph accepts up to 4 MB)
    #[arg(long, default_value_t = 245_760, value_parser = clap::value_parser!(u64).range(1024..=4_194_304))]
    hd_max_bytes: u64,
    /// Side of the HD photo in pixels
    #[arg(long, default_value_t = 648)]
    hd_size: u32,
    /// Background for transparency and --crop pad, as RRGGBB hex
    #[arg(long, default_value = "ffffff")]
    background: String,
    /// Also take photos from sub-folders
    #[arg(long)]
    recurse: bool,
    /// Worker threads (default: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the manifest as JSON on stdout instead of a summary
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = jpeg_decoder_from_env() {
        eprintln!("photobulk: error: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Convert(args) => convert(args),
        Command::Ad(args) => block_on(ad::run(args)),
        Command::Graph(args) => block_on(graph::run(args)),
        Command::Import(args) => import::run(args),
        Command::Restore(args) => import::restore(args),
        Command::Runs(args) => runs::run(args),
        Command::Demo { out } => demo(out),
        Command::Serve(args) => return serve::run(args),
        Command::SyncHdToAd(args) => block_on(sync_hd::run(args)),
        Command::Env(args) => block_on(env::run(args)),
        Command::Report(args) => block_on(report::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("photobulk: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Run an async command to its end on a multi-threaded runtime (LDAP, Graph and the sidecar
/// overlap their network waits; the image work has threads of its own).
pub(crate) fn block_on(
    job: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(job)
}

/// `PHOTOBULK_JPEG_DECODER`: `libjpeg` or `photobulk` (the default; empty is the default too).
fn jpeg_decoder_from_env() -> anyhow::Result<()> {
    let Some(v) = std::env::var_os("PHOTOBULK_JPEG_DECODER") else {
        return Ok(());
    };
    if v.is_empty() {
        return Ok(());
    }
    match v
        .to_str()
        .and_then(photobulk_imaging::HuffmanDecoder::parse)
    {
        Some(d) => {
            photobulk_imaging::set_huffman_decoder(d);
            Ok(())
        }
        None => bail!(
            "PHOTOBULK_JPEG_DECODER must be libjpeg or photobulk, not {:?}",
            v.to_string_lossy()
        ),
    }
}

fn parse_rgb(hex: &str) -> anyhow::Result<[u8; 3]> {
    let h = hex.trim_start_matches('#');
    if h.len() != 6 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("--background must be six hex digits like ffffff, not {hex:?}");
    }
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).context("bad hex");
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

fn convert(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let mut targets = Vec::new();
    for t in &args.target {
        let target = match t {
            TargetArg::Ad => args.photo.ad_target()?,
            TargetArg::Hd => Target::new("hd", args.hd_size, usize::try_from(args.hd_max_bytes)?),
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let options = Options {
        crop: args.photo.crop.to_crop(),
        background: parse_rgb(&args.background)?,
        targets,
        ..Options::default()
    };
    let plan = plan(
        &args.inputs,
        PlanOptions {
            recurse: args.recurse,
        },
    );
    let job = ConvertJob {
        options,
        out_dir: args.out.clone(),
        threads: args.threads,
    };

    let bar = progress::bar(plan.items.len());
    let on_item = |r: &ItemResult| {
        let line = (r.status != Status::Ok).then(|| {
            format!(
                "error: {}: {}",
                r.file.display(),
                r.error.as_deref().unwrap_or("failed")
            )
        });
        progress::item(&bar, r.account.as_deref(), line, false);
    };
    let manifest = job
        .run(&plan, &on_item)
        .context("conversion could not run")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let s = manifest.summary;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        println!(
            "{} files: {} converted, {} failed, {} duplicates, {} naming nobody; {} other files skipped",
            s.total, s.ok, s.failed, s.duplicate, s.no_account, s.skipped_files
        );
        println!("manifest: {}", args.out.join("manifest.json").display());
        println!("report:   {}", args.out.join("report.html").display());
    }
    if s.total == 0 {
        eprintln!("error: no photos found in the inputs");
        return Ok(ExitCode::from(1));
    }
    Ok(if s.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Built-in sample photos for `photobulk demo`: real photos shipped in packages (see
/// tests/fixtures/README.md), chosen to show orientation, crops and odd formats.
const SAMPLES: &[(&str, &[u8])] = &[
    (
        "Eileen.Collins 512x512.jpg",
        include_bytes!("../../tests/fixtures/real/astronaut.jpg"),
    ),
    (
        "John.Smith phone.jpg",
        include_bytes!("../../tests/fixtures/orient/large_o6.jpg"),
    ),
    (
        "Mia.Hopper.jpg",
        include_bytes!("../../tests/fixtures/real/hopper_orientation_8.jpg"),
    ),
    (
        "Print.Shop cmyk.jpg",
        include_bytes!("../../tests/fixtures/real/pil_sample_cmyk.jpg"),
    ),
    (
        "Tall.Person portrait.jpg",
        include_bytes!("../../tests/fixtures/edge/portrait_400x900.jpg"),
    ),
    (
        "Broken.File.jpg",
        b"this is not a photo, just text with a .jpg name\n",
    ),
];

/// A user export as `Get-ADUser -Filter * | Select DistinguishedName,SamAccountName |
/// Export-Csv` writes it, for the demo's LDIF. Tall.Person is left out on purpose: the LDIF then
/// shows the placeholder-DN convention for an account the export does not have.
const DEMO_USERS_CSV: &str = "\"DistinguishedName\",\"SamAccountName\"\r\n\
\"CN=Eileen Collins,OU=People,DC=photobulk,DC=test\",\"eileen.collins\"\r\n\
\"CN=John Smith,OU=People,DC=photobulk,DC=test\",\"john.smith\"\r\n\
\"CN=Mia Hopper,OU=People,DC=photobulk,DC=test\",\"mia.hopper\"\r\n\
\"CN=Print Shop,OU=Service,DC=photobulk,DC=test\",\"print.shop\"\r\n";

/// `photobulk demo`: the main job — the offline import — on the bundled samples: JPEGs for AD
/// and Exchange, manifest, contact sheet and an LDIF ready for `ldapmodify`/`ldifde`.
fn demo(out: PathBuf) -> anyhow::Result<ExitCode> {
    let input = out.join("input");
    std::fs::create_dir_all(&input)
        .with_context(|| format!("cannot create {}", input.display()))?;
    for (name, bytes) in SAMPLES {
        std::fs::write(input.join(name), bytes)
            .with_context(|| format!("cannot write sample {name}"))?;
    }
    let users = out.join("users.csv");
    std::fs::write(&users, DEMO_USERS_CSV)
        .with_context(|| format!("cannot write {}", users.display()))?;
    println!(
        "demo: {} sample photos written to {} (one of them is deliberately broken), user export {}",
        SAMPLES.len(),
        input.display(),
        users.display()
    );
    let cli = Cli::try_parse_from([
        "photobulk".as_ref(),
        "import".as_ref(),
        input.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--users".as_ref(),
        users.as_os_str(),
    ])
    .context("demo arguments")?;
    let Command::Import(mut args) = cli.command else {
        bail!("demo: internal argument error");
    };
    args.force_offline();
    let code = import::run(args)?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json"))?)?;
    let ok = manifest["summary"]["ok"].as_u64().unwrap_or(0);
    let failed = manifest["summary"]["failed"].as_u64().unwrap_or(0);
    let ldif =
        std::fs::read_to_string(out.join(photobulk_engine::offline::LDIF_FILE)).unwrap_or_default();
    let entries = ldif
        .lines()
        .filter(|l| l.starts_with("changetype: modify"))
        .count() as u64;
    // The demo succeeds when every real photo converted, the broken file was caught, and the
    // LDIF carries one replace per converted photo.
    if ok == (SAMPLES.len() - 1) as u64 && failed == 1 && entries == ok {
        println!(
            "demo: OK — open {} to see the results",
            out.join("report.html").display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("demo: unexpected result ({ok} converted, {failed} failed, {entries} LDIF entries; import exit {code:?})");
        Ok(ExitCode::from(1))
    }
}
