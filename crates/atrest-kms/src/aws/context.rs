//! The KMS encryption context for a [`WrapContext`]: atrest's byte pairs as KMS's
//! string-to-string map.
//!
//! ```text
//! text(b) = b                                        if b is UTF-8, non-empty, and starts
//!                                                    with neither "atrest:" nor "aws:"
//!                                                    (ASCII case-insensitive)
//!         = "atrest:b64:" || base64url-nopad(b)      otherwise
//!
//! encryption context = { text(key) : text(value) for each bound pair }
//!                    ∪ { "atrest:aad-sha256" : base64url-nopad(SHA-256(ctx.aad())) }
//! ```
//!
//! The map is injective: a plain string never starts with `atrest:`, so it can equal neither
//! an escaped string nor the AAD entry's key, and two escaped strings are equal only if their
//! bytes are. So two wrap contexts give the same encryption context exactly when they are
//! equal. Keys starting with `aws:` are escaped so an atrest context can never pass for the
//! context an AWS service sets (e.g. `aws:s3:arn`) in a key policy condition. The AAD entry
//! also binds the wrap to atrest's envelope format (magic, version, suite).

use std::collections::HashMap;

use atrest_envelope::WrapContext;
use base64ct::{Base64UrlUnpadded, Encoding as _};
use sha2::{Digest as _, Sha256};

/// The prefix of an escaped (base64url) key or value.
pub const ESCAPE_PREFIX: &str = "atrest:b64:";
/// The key of the entry that binds the wrap context's canonical bytes.
pub const AAD_KEY: &str = "atrest:aad-sha256";

/// The KMS encryption context for `ctx` (see the module docs).
pub(crate) fn encryption_context(ctx: &WrapContext) -> HashMap<String, String> {
    let context = ctx.context();
    let mut out = HashMap::with_capacity(context.len() + 1);
    for (key, value) in context.iter() {
        out.insert(text(key), text(value));
    }
    out.insert(
        AAD_KEY.to_owned(),
        Base64UrlUnpadded::encode_string(&Sha256::digest(ctx.aad())),
    );
    out
}

fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.is_empty() && !has_prefix(s, "atrest:") && !has_prefix(s, "aws:") => {
            s.to_owned()
        }
        _ => {
            let mut out = String::from(ESCAPE_PREFIX);
            out.push_str(&Base64UrlUnpadded::encode_string(bytes));
            out
        }
    }
}

fn has_prefix(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use atrest_envelope::Context;

    use super::*;

    fn map(pairs: &[(&[u8], &[u8])]) -> HashMap<String, String> {
        let mut context = Context::new();
        for (k, v) in pairs {
            context = context.with(k, v).expect("valid pair");
        }
        encryption_context(&WrapContext::new(&context))
    }

    #[test]
    fn utf8_pairs_as_they_are() {
        let m = map(&[(b"tenant", b"acme"), (b"object", "caf\u{e9}".as_bytes())]);
        assert_eq!(m.len(), 3);
        assert_eq!(m["tenant"], "acme");
        assert_eq!(m["object"], "caf\u{e9}");
        // SHA-256 is 32 bytes: 43 base64url characters without padding.
        assert_eq!(m[AAD_KEY].len(), 43);
    }

    #[test]
    fn escapes_binary_empty_and_reserved() {
        let m = map(&[
            (b"bin", &[0xff, 0x00]),
            (b"empty", b""),
            (b"atrest:aad-sha256", b"forged"),
            (b"AWS:s3:arn", b"aws:x"),
            (&[0xc3, 0x28], b"v"),
        ]);
        assert_eq!(m["bin"], "atrest:b64:_wA");
        assert_eq!(m["empty"], "atrest:b64:");
        assert_eq!(
            m["atrest:b64:YXRyZXN0OmFhZC1zaGEyNTY"], "forged",
            "a pair named like the AAD entry is escaped, not overwritten"
        );
        assert_eq!(m["atrest:b64:QVdTOnMzOmFybg"], "atrest:b64:YXdzOng");
        assert_eq!(m["atrest:b64:wyg"], "v");
        assert_ne!(m[AAD_KEY], "forged");
    }

    #[test]
    fn injective_and_order_independent() {
        let a = map(&[(b"a", b"1"), (b"b", b"2")]);
        let b = map(&[(b"b", b"2"), (b"a", b"1")]);
        assert_eq!(a, b);
        // A plain value that looks escaped is itself escaped, so it cannot collide.
        let escaped = map(&[(b"k", &[0xff])]);
        let lookalike = map(&[(b"k", b"atrest:b64:_w")]);
        assert_ne!(escaped["k"], lookalike["k"]);
        assert_ne!(map(&[(b"k", b"")]), map(&[(b"k", b"atrest:b64:")]));
        assert_ne!(map(&[(b"ab", b"c")]), map(&[(b"a", b"bc")]));
        assert_ne!(map(&[]), map(&[(b"a", b"")]));
    }
}
