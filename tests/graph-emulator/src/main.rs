//! `graph-emulator`: the test Graph emulator as a process, for `scripts/bench/graph` and manual
//! runs. Test-only; never shipped.
//!
//! ```text
//! graph-emulator [--port P] [--users N] [--rate R] [--burst B] [--faults F] [--retry-after S]
//!                [--concurrency C] [--token-lifetime S] [--no-mailbox-every K]
//!                [--light-reencode]
//! ```
//!
//! Prints `PB_GRAPH_AUTHORITY=…`, `PB_GRAPH_URL=…`, `PB_GRAPH_TENANT=…`, `PB_GRAPH_CLIENT_ID=…`
//! and `PB_GRAPH_CLIENT_SECRET=…` on stdout (eval-able), then serves until killed.
//! `GET /_emulator/stats` returns the counters as JSON.

use std::net::SocketAddr;

use photobulk_graph_emulator::{
    Config, Emulator, Faults, Throttle, TEST_CLIENT_ID, TEST_SECRET, TEST_TENANT,
};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut port = 0u16;
    let mut cfg = Config::with_users(1000);
    let mut rate: Option<f64> = None;
    let mut burst: Option<f64> = None;
    let mut faults = 0.0;
    let mut retry_after = 1u64;
    let mut no_mailbox_every = 0usize;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        let ok = match a.as_str() {
            "--port" => val().parse().map(|v| port = v).is_ok(),
            "--users" => val()
                .parse()
                .map(|n| {
                    cfg = Config {
                        users: Config::with_users(n).users,
                        ..cfg.clone()
                    }
                })
                .is_ok(),
            "--rate" => val().parse().map(|v| rate = Some(v)).is_ok(),
            "--burst" => val().parse().map(|v| burst = Some(v)).is_ok(),
            "--faults" => val().parse().map(|v| faults = v).is_ok(),
            "--retry-after" => val().parse().map(|v| retry_after = v).is_ok(),
            "--concurrency" => val()
                .parse()
                .map(|v: usize| cfg.concurrency_limit = (v > 0).then_some(v))
                .is_ok(),
            "--token-lifetime" => val().parse().map(|v| cfg.token_lifetime = v).is_ok(),
            "--light-reencode" => {
                cfg.reencode = false;
                true
            }
            "--no-mailbox-every" => val().parse().map(|v| no_mailbox_every = v).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("graph-emulator: bad argument {a} (see the source header for usage)");
            return std::process::ExitCode::from(2);
        }
    }
    if no_mailbox_every > 0 {
        for (i, u) in cfg.users.iter_mut().enumerate() {
            u.mailbox = (i + 1) % no_mailbox_every != 0;
        }
    }
    if let Some(rate) = rate {
        cfg.throttle = Some(Throttle {
            rate,
            burst: burst.unwrap_or(rate),
        });
    }
    // Injected faults: 429 with Retry-After, 429 without, 503 with Retry-After (the bench mix).
    let third = faults / 3.0;
    cfg.faults = Faults {
        p_429_retry_after: third,
        p_429_bare: third,
        p_503: third,
        retry_after,
        ..Faults::default()
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("graph-emulator: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let emu = match Emulator::start_on(cfg, SocketAddr::from(([127, 0, 0, 1], port))).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("graph-emulator: cannot listen: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        println!("PB_GRAPH_AUTHORITY={}", emu.base_url());
        println!("PB_GRAPH_URL={}", emu.graph_url());
        println!("PB_GRAPH_TENANT={TEST_TENANT}");
        println!("PB_GRAPH_CLIENT_ID={TEST_CLIENT_ID}");
        println!("PB_GRAPH_CLIENT_SECRET={TEST_SECRET}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let _ = tokio::signal::ctrl_c().await;
        std::process::ExitCode::SUCCESS
    })
}
