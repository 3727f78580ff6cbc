//! `atrest inspect FILE`: what a file is, read from its headers alone. Needs no key and shows
//! no secret (the context is stored in clear; wrapped keys are shown by name and version).

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use atrest_envelope::{Header, MAX_HEADER_LEN};
use atrest_stream::{Format, Layout};
use serde_json::{Value, json};

use crate::cli::InspectArgs;
use crate::failure::{Code, Failure};
use crate::units::format_bytes;

/// The atrest STREAM v1 magic.
const STREAM_MAGIC: [u8; 4] = [0x89, b'a', b't', b'r'];
/// A Tink AES256_GCM_HKDF stream starts with its header length, 40.
const TINK_HEADER_LEN_BYTE: u8 = 40;
/// Both stream header lengths fit in this.
const STREAM_HEADER_MAX: usize = 42;

/// Describes the file.
///
/// # Errors
/// I/O errors; an integrity failure for a file that is none of the known formats.
pub(crate) fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let (prefix, file_len) = read_prefix(&args.file)?;
    let report = if prefix.starts_with(&atrest_envelope::MAGIC) {
        envelope(args, &prefix, file_len)?
    } else if prefix.starts_with(&STREAM_MAGIC) {
        native_stream(&prefix, file_len)?
    } else if prefix.first() == Some(&TINK_HEADER_LEN_BYTE) && file_len >= 40 + 16 {
        tink_stream(file_len)
    } else {
        return Err(Failure::new(
            Code::Integrity,
            format!(
                "{} is not an atrest envelope, an atrest stream or a Tink stream",
                args.file.display()
            ),
        )
        .into());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        for (label, value) in &report.lines {
            println!("{:<16}{value}", format!("{label}:"));
        }
    }
    Ok(())
}

/// Lines for people, and the same facts for machines.
struct Report {
    lines: Vec<(&'static str, String)>,
    json: Value,
}

fn read_prefix(path: &Path) -> anyhow::Result<(Vec<u8>, u64)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let mut prefix = Vec::new();
    file.take((MAX_HEADER_LEN + STREAM_HEADER_MAX) as u64)
        .read_to_end(&mut prefix)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((prefix, len))
}

fn envelope(args: &InspectArgs, prefix: &[u8], file_len: u64) -> anyhow::Result<Report> {
    let (header, rest) = Header::split_attached(prefix)
        .with_context(|| format!("reading the envelope header of {}", args.file.display()))?;
    let header_len = header.len() as u64;
    let attached = file_len > header_len;
    // The body: after the header (attached), or the --body file (detached).
    let body = if attached {
        Some((rest.to_vec(), file_len - header_len))
    } else if let Some(body) = &args.body {
        Some(read_prefix(body)?)
    } else {
        None
    };
    let sizes = match &body {
        Some((start, body_len)) => {
            let options = atrest_stream::Options::default();
            let layout =
                Layout::parse(start, &options).context("reading the body's stream header")?;
            let plaintext = layout
                .plaintext_len(*body_len)
                .context("the body's length is not that of a complete stream")?;
            Some((*body_len, plaintext))
        }
        None => None,
    };
    let form = match (attached, &args.body) {
        (true, _) => "attached",
        (false, Some(_)) => "detached (header and body)",
        (false, None) => "detached header",
    };
    let context: Vec<(String, String, bool)> = header
        .context()
        .iter()
        .map(|(k, v)| {
            let bound = header.context().is_bound_to_wrap(k);
            (printable(k), printable(v), bound)
        })
        .collect();
    let wrapped: Vec<(String, u32, usize)> = header
        .wrapped_keys()
        .iter()
        .map(|w| (w.key_id.to_string(), w.version, w.ciphertext.len()))
        .collect();
    let blob_id = hex(header.blob_id());

    let mut lines = vec![
        (
            "format",
            format!("atrest envelope v{} ({form})", atrest_envelope::VERSION),
        ),
        (
            "suite",
            format!(
                "{} (AES-256-GCM data key wrap, HKDF-SHA256, body in atrest STREAM v1)",
                atrest_envelope::SUITE
            ),
        ),
        ("segment size", format!("{} bytes", header.segment_size())),
        ("blob id", blob_id.clone()),
        (
            "context",
            if context.is_empty() {
                "(empty)".to_owned()
            } else {
                context
                    .iter()
                    .map(|(k, v, bound)| {
                        // Entries kept out of the key wrap are still bound to header and body.
                        let note = if *bound { "" } else { " (not in key wrap)" };
                        format!("{k}={v}{note}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ];
    for (key_id, version, len) in &wrapped {
        lines.push(("wrapped key", format!("{key_id} v{version} ({len} bytes)")));
    }
    lines.push(("header size", format!("{header_len} bytes")));
    if let Some((body_len, plaintext)) = sizes {
        lines.push(("body size", format!("{body_len} bytes")));
        lines.push((
            "plaintext size",
            format!(
                "{plaintext} bytes ({}; from lengths, not authenticated)",
                format_bytes(plaintext)
            ),
        ));
    }
    let json = json!({
        "format": "atrest-envelope",
        "version": atrest_envelope::VERSION,
        "form": form,
        "suite": atrest_envelope::SUITE,
        "segment_size": header.segment_size(),
        "blob_id": blob_id,
        "context": context.iter().map(|(k, v, bound)| json!({"key": k, "value": v, "bound_to_wrap": bound})).collect::<Vec<_>>(),
        "wrapped_keys": wrapped.iter().map(|(k, v, l)| json!({"key": k, "version": v, "len": l})).collect::<Vec<_>>(),
        "header_size": header_len,
        "body_size": sizes.map(|s| s.0),
        "plaintext_size": sizes.map(|s| s.1),
    });
    Ok(Report { lines, json })
}

fn native_stream(prefix: &[u8], file_len: u64) -> anyhow::Result<Report> {
    let layout = Layout::parse(prefix, &atrest_stream::Options::default())
        .context("reading the stream header")?;
    let plaintext = layout
        .plaintext_len(file_len)
        .context("the file's length is not that of a complete stream")?;
    let segment_size = match layout.format() {
        Format::Native { segment_size } => segment_size,
        _ => u32::try_from(layout.segment_size()).unwrap_or(u32::MAX),
    };
    let lines = vec![
        (
            "format",
            "atrest STREAM v1 (bare stream, no envelope)".to_owned(),
        ),
        ("suite", "1 (AES-256-GCM, HKDF-SHA256)".to_owned()),
        ("segment size", format!("{segment_size} bytes")),
        ("header size", format!("{} bytes", layout.header_len())),
        ("stream size", format!("{file_len} bytes")),
        (
            "plaintext size",
            format!(
                "{plaintext} bytes ({}; from lengths, not authenticated)",
                format_bytes(plaintext)
            ),
        ),
    ];
    let json = json!({
        "format": "atrest-stream",
        "version": 1,
        "suite": 1,
        "segment_size": segment_size,
        "header_size": layout.header_len(),
        "stream_size": file_len,
        "plaintext_size": plaintext,
    });
    Ok(report_of(lines, json))
}

fn tink_stream(file_len: u64) -> Report {
    let lines = vec![
        (
            "format",
            "looks like a Google Tink AES256_GCM_HKDF stream (header length byte 40; Tink streams have no magic)".to_owned(),
        ),
        (
            "segment size",
            "not stored: it belongs to the Tink key (4 KiB or 1 MiB templates)".to_owned(),
        ),
        ("header size", "40 bytes".to_owned()),
        ("stream size", format!("{file_len} bytes")),
    ];
    let json = json!({
        "format": "tink-aes256-gcm-hkdf (guessed)",
        "header_size": 40,
        "stream_size": file_len,
    });
    report_of(lines, json)
}

fn report_of(lines: Vec<(&'static str, String)>, json: Value) -> Report {
    Report { lines, json }
}

fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => format!("0x{}", hex(bytes)),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
