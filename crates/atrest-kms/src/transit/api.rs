//! The Transit HTTP API as this client uses it: request and response bodies, the
//! `vault:vN:` ciphertext form, key names, and how server messages map to key states.
//!
//! Request and response shapes follow OpenBao's `builtin/logical/transit` handlers
//! (`encrypt`, `decrypt`, `datakey`, `rewrap`, `keys`), which Vault shares.

use atrest_crypto::Key256;
use base64ct::{Base64, Encoding as _};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// What binds a request to its wrap context (see [`super::Binding`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    /// `context`: base64 of SHA-256(aad), for derived keys.
    Context(String),
    /// `associated_data`: base64 of the aad, for other AEAD keys (empty aad: none).
    AssociatedData(String),
}

impl Bind {
    pub(crate) fn context(aad: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::Context(Base64::encode_string(&sha2::Sha256::digest(aad)))
    }

    pub(crate) fn associated_data(aad: &[u8]) -> Self {
        Self::AssociatedData(Base64::encode_string(aad))
    }

    fn fields(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Context(c) => (Some(c), None),
            Self::AssociatedData(a) if a.is_empty() => (None, None),
            Self::AssociatedData(a) => (None, Some(a)),
        }
    }

    /// The parameter name, to recognise a server warning that it was ignored.
    pub(crate) fn param(&self) -> &'static str {
        match self {
            Self::Context(_) => "context",
            Self::AssociatedData(_) => "associated_data",
        }
    }

    pub(crate) fn is_context(&self) -> bool {
        matches!(self, Self::Context(_))
    }
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    associated_data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bits: Option<u32>,
}

/// `POST {mount}/encrypt/{name}`: the data key, base64 (zeroized buffers).
pub(crate) fn encrypt_body(data_key: &Key256, bind: &Bind) -> Zeroizing<Vec<u8>> {
    let mut b64 = Zeroizing::new([0u8; 44]);
    let plaintext = Base64::encode(data_key.expose_secret(), b64.as_mut())
        .expect("44 bytes hold the base64 of 32");
    body(&Request {
        plaintext: Some(plaintext),
        ciphertext: None,
        context: bind.fields().0,
        associated_data: bind.fields().1,
        bits: None,
    })
}

/// `POST {mount}/decrypt/{name}` and `POST {mount}/rewrap/{name}`.
pub(crate) fn ciphertext_body(ciphertext: &str, bind: &Bind) -> Zeroizing<Vec<u8>> {
    body(&Request {
        plaintext: None,
        ciphertext: Some(ciphertext),
        context: bind.fields().0,
        associated_data: bind.fields().1,
        bits: None,
    })
}

/// `POST {mount}/datakey/plaintext/{name}`: a 256-bit key.
pub(crate) fn datakey_body(bind: &Bind) -> Zeroizing<Vec<u8>> {
    body(&Request {
        plaintext: None,
        ciphertext: None,
        context: bind.fields().0,
        associated_data: bind.fields().1,
        bits: Some(256),
    })
}

fn body(request: &Request<'_>) -> Zeroizing<Vec<u8>> {
    // Sized up front so the buffer holding the key is never reallocated (and left behind).
    let mut out = Zeroizing::new(Vec::with_capacity(
        128 + [
            request.plaintext,
            request.ciphertext,
            request.context,
            request.associated_data,
        ]
        .iter()
        .map(|f| f.map_or(0, str::len))
        .sum::<usize>(),
    ));
    serde_json::to_writer(&mut *out, request).expect("serializing strings cannot fail");
    out
}

/// The `data` and `warnings` of a successful answer.
#[derive(Deserialize)]
pub(crate) struct Reply<T> {
    pub(crate) data: Option<T>,
    #[serde(default)]
    pub(crate) warnings: Option<Vec<String>>,
}

/// `encrypt`, `rewrap` and `datakey` answers (`plaintext` only from `datakey/plaintext`).
#[derive(Deserialize)]
pub(crate) struct Sealed {
    pub(crate) ciphertext: String,
    #[serde(default)]
    pub(crate) key_version: Option<u64>,
    #[serde(default)]
    pub(crate) plaintext: Option<Zeroizing<String>>,
}

/// `decrypt` answers.
#[derive(Deserialize)]
pub(crate) struct Opened {
    pub(crate) plaintext: Zeroizing<String>,
}

/// `GET {mount}/keys/{name}`: the settings this client uses.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct KeyInfo {
    #[serde(default)]
    pub(crate) derived: bool,
    #[serde(default)]
    pub(crate) latest_version: u64,
    #[serde(default)]
    pub(crate) min_decryption_version: u64,
    #[serde(default)]
    pub(crate) min_available_version: u64,
}

/// Decodes a base64 data key of exactly 32 bytes (constant-time base64).
pub(crate) fn decode_key(b64: &str) -> Option<Key256> {
    let mut buf = Zeroizing::new([0u8; 33]);
    let len = Base64::decode(b64.as_bytes(), buf.as_mut()).ok()?.len();
    let key = Key256::try_from_slice(&buf[..len]).ok();
    buf.zeroize();
    key
}

/// The key version in a `vault:v<N>:<base64>` ciphertext (N >= 1, no leading zero).
pub(crate) fn ciphertext_version(ciphertext: &[u8]) -> Option<u32> {
    let rest = ciphertext.strip_prefix(b"vault:v")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let (digits, tail) = (&rest[..colon], &rest[colon + 1..]);
    if digits.is_empty() || digits[0] == b'0' || tail.is_empty() {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether `name` can be a Transit key name (OpenBao's `GenericNameRegex`:
/// `\w(([\w-.@]+)?\w)?`, ASCII), so it is safe in a URL path.
pub(crate) fn valid_key_name(name: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            word(first)
                && word(last)
                && bytes
                    .iter()
                    .all(|&b| word(b) || matches!(b, b'-' | b'.' | b'@'))
        }
        _ => false,
    }
}

/// What a 4xx answer from a Transit operation means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No key of that name.
    KeyNotFound,
    /// The ciphertext did not authenticate (tampered, other context, other key).
    Authentication,
    /// The ciphertext names a version above the latest.
    VersionTooNew,
    /// The version is below `min_decryption_version` (or trimmed).
    VersionTooOld,
    /// Anything else.
    Other,
}

/// Classifies a Transit 4xx answer by status and OpenBao/Vault's message text.
pub(crate) fn refusal(status: u16, message: &str) -> Refusal {
    let m = message.to_ascii_lowercase();
    if status == 404 || m.contains("encryption key not found") || m.contains("policy not found") {
        Refusal::KeyNotFound
    } else if m.contains("disallowed by policy (too old)") {
        Refusal::VersionTooOld
    } else if m.contains("version is too new") {
        Refusal::VersionTooNew
    } else if status == 400
        && (m.contains("message authentication failed")
            || m.contains("invalid ciphertext")
            || m.contains("invalid version")
            || m.contains("failed to base64-decode")
            || m.contains("illegal base64"))
    {
        Refusal::Authentication
    } else {
        Refusal::Other
    }
}

/// A server warning saying it ignored the binding parameter, if any.
pub(crate) fn ignored_binding(warnings: Option<&[String]>, bind: &Bind) -> Option<String> {
    warnings?
        .iter()
        .find(|w| w.contains("unrecognized parameters") && w.contains(bind.param()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_versions() {
        assert_eq!(ciphertext_version(b"vault:v1:abc"), Some(1));
        assert_eq!(ciphertext_version(b"vault:v42:abc=="), Some(42));
        assert_eq!(ciphertext_version(b"vault:v4294967295:x"), Some(u32::MAX));
        for bad in [
            &b"vault:v0:abc"[..],
            b"vault:v01:abc",
            b"vault:v:abc",
            b"vault:v1:",
            b"vault:v1",
            b"vault:vx:abc",
            b"vault:v4294967296:x",
            b"bao:v1:abc",
            b"",
        ] {
            assert_eq!(ciphertext_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn key_names() {
        for ok in ["a", "tenant-42", "t.e@s_t", "A9", "x_"] {
            assert!(valid_key_name(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a/b", "../x", "a b", "é", "a?b", "a%2f", ".a",
        ] {
            assert!(!valid_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            refusal(400, "encryption key not found"),
            Refusal::KeyNotFound
        );
        assert_eq!(refusal(404, ""), Refusal::KeyNotFound);
        assert_eq!(
            refusal(400, "cipher: message authentication failed"),
            Refusal::Authentication
        );
        assert_eq!(
            refusal(400, "invalid ciphertext: no prefix"),
            Refusal::Authentication
        );
        assert_eq!(
            refusal(400, "invalid ciphertext: version is too new"),
            Refusal::VersionTooNew
        );
        assert_eq!(
            refusal(
                400,
                "ciphertext or signature version is disallowed by policy (too old)"
            ),
            Refusal::VersionTooOld
        );
        assert_eq!(refusal(403, "permission denied"), Refusal::Other);
        assert_eq!(
            refusal(400, "missing 'context' for key derivation"),
            Refusal::Other
        );
    }

    #[test]
    fn bodies_and_bindings() {
        let key = Key256::from_bytes([7; 32]);
        let bind = Bind::associated_data(b"aad");
        let body = encrypt_body(&key, &bind);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["associated_data"], "YWFk");
        assert!(json.get("context").is_none());
        assert_eq!(
            decode_key(json["plaintext"].as_str().expect("str")).expect("32 bytes"),
            key
        );
        let ctx = Bind::context(b"aad");
        let json: serde_json::Value = serde_json::from_slice(&datakey_body(&ctx)).expect("json");
        // SHA-256("aad"), base64.
        assert_eq!(
            json["context"],
            "0BKOKW3j2lnjhIZ08GmdE5+p6vplS4vax8OI4QrKM7o="
        );
        assert_eq!(json["bits"], 256);
        let none = Bind::associated_data(b"");
        let json: serde_json::Value =
            serde_json::from_slice(&ciphertext_body("vault:v1:x", &none)).expect("json");
        assert!(json.get("associated_data").is_none());
        assert_eq!(decode_key("AAAA"), None);
        assert_eq!(decode_key(&Base64::encode_string(&[1; 33])), None);
        let warning = "Endpoint ignored these unrecognized parameters: [associated_data]";
        assert!(ignored_binding(Some(&[warning.into()]), &bind).is_some());
        assert!(ignored_binding(Some(&[warning.into()]), &ctx).is_none());
        assert_eq!(ignored_binding(None, &bind), None);
    }
}
