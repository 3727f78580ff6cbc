//! `atrest bench`: seal and open one buffer with each crypto provider and print MiB/s.
//! Rough numbers from one run; `cargo bench --bench stream` measures properly.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use atrest_crypto::{CryptoProvider, Key256};
use atrest_stream::Options;

use crate::cli::BenchArgs;
use crate::failure::{Code, Failure};
use crate::units::format_bytes;

const PROVIDERS: [&CryptoProvider; 2] = [atrest_crypto::DEFAULT_PROVIDER, &atrest_ring::PROVIDER];

/// Runs the benchmark.
///
/// # Errors
/// A usage failure for a size of zero or beyond memory; crypto failures.
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let size = usize::try_from(args.size)
        .ok()
        .filter(|size| *size > 0 && *size <= 4 << 30)
        .ok_or_else(|| Failure::new(Code::Usage, "--size must be between 1 byte and 4 GiB"))?;
    let plaintext = vec![0x5a_u8; size];
    let aad = b"atrest bench";
    println!(
        "stream cipher, {} buffer, 64 KiB segments, threads: {}",
        format_bytes(args.size),
        if args.threads == 0 {
            "automatic".to_owned()
        } else {
            args.threads.to_string()
        }
    );
    println!(
        "{:<12}  {:>12}  {:>12}",
        "provider", "seal MiB/s", "open MiB/s"
    );
    for provider in PROVIDERS {
        let options = Options::default().provider(provider).threads(args.threads);
        let key = Key256::generate(provider).context("generating a key")?;
        let start = Instant::now();
        let sealed = options.seal(&key, aad, &plaintext).context("sealing")?;
        let seal_time = start.elapsed();
        let start = Instant::now();
        let opened = options.open(&key, aad, &sealed).context("opening")?;
        let open_time = start.elapsed();
        if opened.len() != plaintext.len() {
            anyhow::bail!("{}: the round trip lost bytes", provider.name);
        }
        println!(
            "{:<12}  {:>12.0}  {:>12.0}",
            provider.name,
            mib_per_sec(args.size, seal_time),
            mib_per_sec(args.size, open_time)
        );
    }
    println!("rough numbers from a single run; for real measurements: cargo bench --bench stream");
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "a throughput for display")]
fn mib_per_sec(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / time.as_secs_f64().max(1e-9)
}
