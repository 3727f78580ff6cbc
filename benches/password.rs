//! Argon2id hash and verify at the OWASP and RFC 9106 presets, with argon2-cffi (the reference
//! C implementation) at the same parameters in the same group, so the report reads as ratios.
//!
//! argon2-cffi runs in a persistent Python child (`$ATREST_BENCH_PYTHON`, default `python3`)
//! that times N operations itself and reports nanoseconds (`iter_custom`), so process start-up
//! and pipe latency are not measured. Without argon2_cffi importable, those functions are
//! skipped with a note.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use atrest_password::{Hasher, Policy, Verification};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const PASSWORD: &str = "correct horse battery staple";

/// The Python side: one command per line, answers with elapsed nanoseconds.
const PEER: &str = r#"
import sys, time
import argon2
print("ready", flush=True)
for line in sys.stdin:
    op, m, t, p, n, *rest = line.split()
    ph = argon2.PasswordHasher(time_cost=int(t), memory_cost=int(m), parallelism=int(p), hash_len=32, salt_len=16)
    pw = "correct horse battery staple"
    start = time.perf_counter_ns()
    if op == "hash":
        for _ in range(int(n)):
            ph.hash(pw)
    else:
        for _ in range(int(n)):
            ph.verify(rest[0], pw)
    print(time.perf_counter_ns() - start, flush=True)
"#;

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start() -> Option<Self> {
        let python = std::env::var("ATREST_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .args(["-c", PEER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| println!("note: skipping argon2-cffi ({python}: {e})"))
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        if stdout.read_line(&mut line).is_err() || line.trim() != "ready" {
            println!(
                "note: skipping argon2-cffi ({python} cannot import argon2; set ATREST_BENCH_PYTHON)"
            );
            let _ = child.kill();
            return None;
        }
        Some(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Runs `op` (`hash`, or `verify` of `stored`) `iters` times at `m, t, p`.
    fn time(&mut self, op: &str, (m, t, p): (u32, u32, u32), iters: u64, stored: &str) -> Duration {
        writeln!(self.stdin, "{op} {m} {t} {p} {iters} {stored}").expect("write to argon2-cffi");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from argon2-cffi");
        Duration::from_nanos(
            line.trim()
                .parse()
                .expect("argon2-cffi reports nanoseconds"),
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn argon2id(c: &mut Criterion) {
    let mut peer = Peer::start();
    for (name, policy) in [
        ("owasp", Policy::owasp()),
        ("rfc9106-second", Policy::rfc9106_second()),
    ] {
        let (m, t, p) = (policy.memory_kib(), policy.iterations(), policy.lanes());
        let hasher = Hasher::new(policy);
        let stored = hasher.hash(PASSWORD.as_bytes()).expect("hash");
        assert_eq!(
            hasher.verify(&stored, PASSWORD.as_bytes()),
            Ok(Verification::Match)
        );

        let mut group = c.benchmark_group(format!("argon2id-{name}"));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        group.bench_function("atrest/hash", |b| {
            b.iter(|| hasher.hash(PASSWORD.as_bytes()))
        });
        group.bench_function("atrest/verify", |b| {
            b.iter(|| hasher.verify(&stored, PASSWORD.as_bytes()))
        });
        if let Some(peer) = peer.as_mut() {
            let params = (m, t, p);
            group.bench_function("argon2-cffi/hash", |b| {
                b.iter_custom(|n| peer.time("hash", params, n, ""))
            });
            // argon2-cffi verifies the hash atrest made: a cross-check as well as a timing.
            group.bench_function("argon2-cffi/verify", |b| {
                b.iter_custom(|n| peer.time("verify", params, n, &stored))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, argon2id);
criterion_main!(benches);
