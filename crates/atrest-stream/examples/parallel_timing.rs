//! Quick throughput check of the parallel paths (the official numbers come from the criterion
//! bench): `cargo run --release -p atrest-stream --example parallel_timing`.

#![allow(clippy::print_stdout, reason = "a timing report")]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use atrest_crypto::CryptoProvider;
use atrest_stream::{Key256, Options};

fn best<F: FnMut()>(mut f: F) -> Duration {
    (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = Key256::from_bytes([1; 32]);
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| u8::try_from(i % 251).expect("below 251"))
        .collect();
    let providers: [(&str, &'static CryptoProvider); 2] = [
        ("rustcrypto", &atrest_crypto::rustcrypto::PROVIDER),
        ("ring", &atrest_ring::PROVIDER),
    ];
    for (name, provider) in providers {
        for threads in [1, 2] {
            let options = Options::native(64 << 10)?
                .provider(provider)
                .threads(threads);
            let sealed = options.seal(&key, b"", &data)?;
            let gbps = |d: Duration| data.len() as f64 / d.as_secs_f64() / 1e9;
            let seal = best(|| drop(options.seal(&key, b"", &data)));
            let open = best(|| drop(options.open(&key, b"", &sealed)));
            let enc = best(|| {
                let mut e = options
                    .encryptor(Vec::with_capacity(sealed.len()), &key, b"")
                    .expect("enc");
                e.write_all(&data).expect("write");
                drop(e.finish());
            });
            let dec = best(|| {
                let mut d = options.decryptor(&sealed[..], &key, b"").expect("dec");
                let mut out = Vec::with_capacity(data.len());
                d.read_to_end(&mut out).expect("read");
            });
            println!(
                "{name:10} threads {threads}: seal {:.2} GB/s, open {:.2}, Encryptor {:.2}, Decryptor {:.2}",
                gbps(seal),
                gbps(open),
                gbps(enc),
                gbps(dec)
            );
        }
    }
    Ok(())
}
