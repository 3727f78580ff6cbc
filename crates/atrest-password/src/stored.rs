//! Parsing stored hashes ("parse, don't validate"), checking them against the policy's caps,
//! and the computations that verify each kind.
//!
//! Accepted forms:
//! - Argon2 PHC: `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>[,keyid=<b64>][,data=<b64>]$<salt>$<hash>`
//!   (also `argon2i`/`argon2d` and version 16, which verify and need a rehash);
//! - bcrypt: `$2a$`, `$2b$`, `$2y$` + two-digit cost + 53 characters;
//! - scrypt PHC: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`;
//! - PBKDF2-HMAC-SHA256 PHC: `$pbkdf2-sha256$i=<iterations>[,l=<len>]$<salt>$<hash>`, passlib's
//!   `$pbkdf2-sha256$<iterations>$<ab64 salt>$<ab64 hash>`, and Django's
//!   `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.

use argon2::password_hash::phc::{self, ParamsString, PasswordHash};
use base64ct::{Base64, Base64Unpadded, Encoding};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::pepper::{MAX_PEPPER_ID_LEN, Pepper};
use crate::{Cap, Error, Policy};

/// Longest stored hash string looked at. The longest legitimate one (Argon2 with a 48-byte
/// salt, 64-byte output, keyid and data) is about 250 characters.
pub(crate) const MAX_STORED_LEN: usize = 512;

/// Argon2 associated data (`data=`) is at most 32 bytes in the argon2 crate.
const MAX_DATA_LEN: usize = 32;

/// Legacy algorithms this crate verifies (and always asks to replace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LegacyAlgorithm {
    /// bcrypt (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt,
    /// scrypt in PHC form.
    Scrypt,
    /// PBKDF2-HMAC-SHA256 (PHC, passlib or Django form).
    Pbkdf2Sha256,
}

/// A parsed stored hash whose parameters are within the policy's caps.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    Argon2(Argon2Hash),
    Bcrypt {
        encoded: String,
    },
    Scrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2Sha256 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Argon2Hash {
    pub(crate) algorithm: argon2::Algorithm,
    pub(crate) version: argon2::Version,
    pub(crate) params: argon2::Params,
    pub(crate) salt: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

impl Stored {
    /// Parses `s` and checks it against `policy`'s caps. Allocates only in proportion to `s`
    /// (itself capped at [`MAX_STORED_LEN`]), never in proportion to its parameters.
    pub(crate) fn parse(s: &str, policy: &Policy) -> Result<Self, Error> {
        if s.len() > MAX_STORED_LEN || !s.is_ascii() {
            return Err(Error::MalformedHash);
        }
        if let Some(rest) = s.strip_prefix("pbkdf2_sha256$") {
            return parse_django(rest, policy);
        }
        if s.starts_with("$2") {
            return parse_bcrypt(s, policy);
        }
        if let Some(rest) = s.strip_prefix("$pbkdf2-sha256$")
            && rest
                .split('$')
                .next()
                .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        {
            return parse_passlib_pbkdf2(rest, policy);
        }
        let phc = PasswordHash::new(s).map_err(|_| Error::MalformedHash)?;
        match phc.algorithm.as_str() {
            "argon2id" | "argon2i" | "argon2d" => parse_argon2(&phc, policy),
            "scrypt" => parse_scrypt(&phc, policy),
            "pbkdf2-sha256" => parse_pbkdf2_phc(&phc, policy),
            _ => Err(Error::UnsupportedAlgorithm),
        }
    }

    /// The memory a verification needs, in KiB (for the memory budget).
    pub(crate) fn memory_kib(&self) -> u64 {
        match self {
            Self::Argon2(h) => u64::from(h.params.m_cost()),
            Self::Scrypt { params, .. } => {
                scrypt_memory(params.log_n(), params.r(), params.p()) / 1024
            }
            // bcrypt's state is ~4 KiB; PBKDF2 needs none to speak of.
            Self::Bcrypt { .. } | Self::Pbkdf2Sha256 { .. } => 4,
        }
    }

    /// The legacy algorithm, if this is not Argon2.
    pub(crate) fn legacy(&self) -> Option<LegacyAlgorithm> {
        match self {
            Self::Argon2(_) => None,
            Self::Bcrypt { .. } => Some(LegacyAlgorithm::Bcrypt),
            Self::Scrypt { .. } => Some(LegacyAlgorithm::Scrypt),
            Self::Pbkdf2Sha256 { .. } => Some(LegacyAlgorithm::Pbkdf2Sha256),
        }
    }

    /// Recomputes the hash of `password` and compares in constant time. `pepper` is used for
    /// Argon2 only.
    pub(crate) fn matches(&self, password: &[u8], pepper: Option<&Pepper>) -> bool {
        match self {
            Self::Argon2(h) => {
                let mut out = [0u8; 64];
                let computed = argon2_into(h, password, pepper, &mut out[..h.hash.len()]);
                let matched = computed && bool::from(out[..h.hash.len()].ct_eq(&h.hash));
                out.zeroize();
                matched
            }
            // The bcrypt crate compares with `subtle`; it truncates at 72 bytes as the
            // implementations that made these hashes did.
            Self::Bcrypt { encoded, .. } => bcrypt::verify(password, encoded).unwrap_or(false),
            Self::Scrypt { params, salt, hash } => {
                let mut out = [0u8; 64];
                let computed =
                    scrypt::scrypt(password, salt, params, &mut out[..hash.len()]).is_ok();
                let matched = computed && bool::from(out[..hash.len()].ct_eq(hash));
                out.zeroize();
                matched
            }
            Self::Pbkdf2Sha256 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                    password,
                    salt,
                    *iterations,
                    &mut out[..hash.len()],
                );
                let matched = bool::from(out[..hash.len()].ct_eq(hash));
                out.zeroize();
                matched
            }
        }
    }
}

/// Runs Argon2 into `out`, with a memory buffer this function owns and wipes afterwards (as the
/// reference implementation does). Returns false only if the argon2 crate refuses the inputs,
/// which validated parameters rule out.
pub(crate) fn argon2_into(
    h: &Argon2Hash,
    password: &[u8],
    pepper: Option<&Pepper>,
    out: &mut [u8],
) -> bool {
    let context = match pepper {
        Some(pepper) => {
            match argon2::Argon2::new_with_secret(
                pepper.expose(),
                h.algorithm,
                h.version,
                h.params.clone(),
            ) {
                Ok(context) => context,
                Err(_) => return false,
            }
        }
        None => argon2::Argon2::new(h.algorithm, h.version, h.params.clone()),
    };
    let mut memory = vec![argon2::Block::new(); h.params.block_count()];
    let result = context.hash_password_into_with_memory(password, &h.salt, out, &mut memory[..]);
    memory.iter_mut().for_each(Zeroize::zeroize);
    result.is_ok()
}

fn decimal(value: phc::Value<'_>) -> Result<u32, Error> {
    value.decimal().map_err(|_| Error::MalformedHash)
}

fn check(exceeded: bool, cap: Cap) -> Result<(), Error> {
    if exceeded {
        Err(Error::ExceedsCap(cap))
    } else {
        Ok(())
    }
}

fn salt_and_hash(phc: &PasswordHash, policy: &Policy) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let (Some(salt), Some(hash)) = (&phc.salt, &phc.hash) else {
        return Err(Error::MalformedHash);
    };
    check(salt.len() > policy.max_salt_len, Cap::SaltLength)?;
    check(hash.len() > policy.max_output_len, Cap::OutputLength)?;
    Ok((salt.as_ref().to_vec(), hash.as_bytes().to_vec()))
}

fn parse_argon2(phc: &PasswordHash, policy: &Policy) -> Result<Stored, Error> {
    let algorithm = match phc.algorithm.as_str() {
        "argon2id" => argon2::Algorithm::Argon2id,
        "argon2i" => argon2::Algorithm::Argon2i,
        _ => argon2::Algorithm::Argon2d,
    };
    // PHC: an absent version means 0x10 (the reference implementation's rule).
    let version = match phc.version.unwrap_or(0x10) {
        0x10 => argon2::Version::V0x10,
        0x13 => argon2::Version::V0x13,
        _ => return Err(Error::UnsupportedAlgorithm),
    };
    let (mut m, mut t, mut p) = (None, None, None);
    let mut keyid = [0u8; MAX_PEPPER_ID_LEN];
    let mut keyid_len = None;
    let mut data = [0u8; MAX_DATA_LEN];
    let mut data_len = None;
    for (name, value) in phc.params.iter() {
        let duplicate = match name.as_str() {
            "m" => m.replace(decimal(value)?).is_some(),
            "t" => t.replace(decimal(value)?).is_some(),
            "p" => p.replace(decimal(value)?).is_some(),
            "keyid" => {
                let len = value
                    .b64_decode(&mut keyid)
                    .map_err(|_| Error::MalformedHash)?
                    .len();
                keyid_len.replace(len).is_some()
            }
            "data" => {
                let len = value
                    .b64_decode(&mut data)
                    .map_err(|_| Error::MalformedHash)?
                    .len();
                data_len.replace(len).is_some()
            }
            _ => return Err(Error::MalformedHash),
        };
        if duplicate {
            return Err(Error::MalformedHash);
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(Error::MalformedHash);
    };
    check(m > policy.max_memory_kib, Cap::Memory)?;
    check(t > policy.max_iterations, Cap::Iterations)?;
    check(p > policy.max_lanes, Cap::Lanes)?;
    let (salt, hash) = salt_and_hash(phc, policy)?;
    let mut builder = argon2::ParamsBuilder::new();
    builder.m_cost(m).t_cost(t).p_cost(p).output_len(hash.len());
    if let Some(len) = keyid_len {
        builder.keyid(argon2::KeyId::new(&keyid[..len]).map_err(|_| Error::MalformedHash)?);
    }
    if let Some(len) = data_len {
        builder.data(argon2::AssociatedData::new(&data[..len]).map_err(|_| Error::MalformedHash)?);
    }
    let params = builder.build().map_err(|_| Error::MalformedHash)?;
    Ok(Stored::Argon2(Argon2Hash {
        algorithm,
        version,
        params,
        salt,
        hash,
    }))
}

/// scrypt's memory in bytes: `V` (128·r·N) plus `B` (128·r·p).
fn scrypt_memory(log_n: u8, r: u32, p: u32) -> u64 {
    let r128 = 128 * u64::from(r);
    let n = 1u64.checked_shl(u32::from(log_n)).unwrap_or(u64::MAX);
    r128.saturating_mul(n)
        .saturating_add(r128.saturating_mul(u64::from(p)))
}

fn parse_scrypt(phc: &PasswordHash, policy: &Policy) -> Result<Stored, Error> {
    if phc.version.is_some() {
        return Err(Error::MalformedHash);
    }
    let (mut ln, mut r, mut p) = (None, None, None);
    for (name, value) in phc.params.iter() {
        let duplicate = match name.as_str() {
            "ln" => ln.replace(decimal(value)?).is_some(),
            "r" => r.replace(decimal(value)?).is_some(),
            "p" => p.replace(decimal(value)?).is_some(),
            _ => return Err(Error::MalformedHash),
        };
        if duplicate {
            return Err(Error::MalformedHash);
        }
    }
    let (Some(ln), Some(r), Some(p)) = (ln, r, p) else {
        return Err(Error::MalformedHash);
    };
    let log_n = u8::try_from(ln).map_err(|_| Error::ExceedsCap(Cap::Memory))?;
    check(p > policy.max_lanes, Cap::Lanes)?;
    check(
        ln >= 64 || scrypt_memory(log_n, r, p) / 1024 > u64::from(policy.max_memory_kib),
        Cap::Memory,
    )?;
    let (salt, hash) = salt_and_hash(phc, policy)?;
    let params = scrypt::Params::new(log_n, r, p).map_err(|_| Error::MalformedHash)?;
    Ok(Stored::Scrypt { params, salt, hash })
}

fn pbkdf2(iterations: u32, salt: Vec<u8>, hash: Vec<u8>, policy: &Policy) -> Result<Stored, Error> {
    if iterations == 0 || salt.is_empty() || hash.len() < 16 {
        return Err(Error::MalformedHash);
    }
    check(
        iterations > policy.max_pbkdf2_iterations,
        Cap::Pbkdf2Iterations,
    )?;
    check(
        salt.len() > policy.max_salt_len.max(MAX_LEGACY_SALT),
        Cap::SaltLength,
    )?;
    check(hash.len() > policy.max_output_len, Cap::OutputLength)?;
    Ok(Stored::Pbkdf2Sha256 {
        iterations,
        salt,
        hash,
    })
}

/// Django and passlib salts are text of up to a few dozen characters, longer than the PHC
/// 48-byte bound would allow some deployments; this is their cap.
const MAX_LEGACY_SALT: usize = 64;

fn parse_pbkdf2_phc(phc: &PasswordHash, policy: &Policy) -> Result<Stored, Error> {
    if phc.version.is_some() {
        return Err(Error::MalformedHash);
    }
    let mut iterations = None;
    let mut len = None;
    for (name, value) in phc.params.iter() {
        let duplicate = match name.as_str() {
            "i" => iterations.replace(decimal(value)?).is_some(),
            "l" => len.replace(decimal(value)?).is_some(),
            _ => return Err(Error::MalformedHash),
        };
        if duplicate {
            return Err(Error::MalformedHash);
        }
    }
    let iterations = iterations.ok_or(Error::MalformedHash)?;
    let (salt, hash) = salt_and_hash(phc, policy)?;
    if len.is_some_and(|l| usize::try_from(l).ok() != Some(hash.len())) {
        return Err(Error::MalformedHash);
    }
    pbkdf2(iterations, salt, hash, policy)
}

fn parse_iterations(field: &str) -> Result<u32, Error> {
    if field.is_empty() || field.len() > 10 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::MalformedHash);
    }
    field
        .parse()
        .map_err(|_| Error::ExceedsCap(Cap::Pbkdf2Iterations))
}

fn parse_django(rest: &str, policy: &Policy) -> Result<Stored, Error> {
    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Error::MalformedHash);
    };
    let iterations = parse_iterations(iterations)?;
    // Django uses the salt text itself as the PBKDF2 salt and standard padded base64 for the hash.
    let hash = Base64::decode_vec(hash).map_err(|_| Error::MalformedHash)?;
    pbkdf2(iterations, salt.as_bytes().to_vec(), hash, policy)
}

fn parse_passlib_pbkdf2(rest: &str, policy: &Policy) -> Result<Stored, Error> {
    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Error::MalformedHash);
    };
    let iterations = parse_iterations(iterations)?;
    // passlib's "adapted base64": standard alphabet with '.' for '+', no padding.
    let ab64 = |s: &str| {
        Base64Unpadded::decode_vec(&s.replace('.', "+")).map_err(|_| Error::MalformedHash)
    };
    pbkdf2(iterations, ab64(salt)?, ab64(hash)?, policy)
}

fn parse_bcrypt(s: &str, policy: &Policy) -> Result<Stored, Error> {
    // `$2?$NN$` + 22 salt characters + 31 hash characters.
    let bytes = s.as_bytes();
    if bytes.len() != 60 || bytes[3] != b'$' || bytes[6] != b'$' {
        return Err(Error::MalformedHash);
    }
    if !matches!(&s[1..3], "2a" | "2b" | "2y") {
        return Err(Error::UnsupportedAlgorithm);
    }
    let cost = &s[4..6];
    if !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::MalformedHash);
    }
    let cost: u32 = cost.parse().map_err(|_| Error::MalformedHash)?;
    if !(4..=31).contains(&cost) {
        return Err(Error::MalformedHash);
    }
    check(cost > policy.max_bcrypt_cost, Cap::BcryptCost)?;
    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if !bytes[7..].iter().all(|b| ALPHABET.contains(b)) {
        return Err(Error::MalformedHash);
    }
    Ok(Stored::Bcrypt {
        encoded: s.to_owned(),
    })
}

/// Formats an Argon2id v19 PHC string.
pub(crate) fn format_argon2(
    m: u32,
    t: u32,
    p: u32,
    keyid: Option<&[u8]>,
    salt: &[u8],
    hash: &[u8],
) -> String {
    let mut params = ParamsString::new();
    // The three decimals and an 8-byte keyid always fit ParamsString's 127 bytes.
    let ok = params.add_decimal("m", m).is_ok()
        && params.add_decimal("t", t).is_ok()
        && params.add_decimal("p", p).is_ok()
        && keyid.is_none_or(|id| params.add_b64_bytes("keyid", id).is_ok());
    debug_assert!(ok, "Argon2 parameters always fit a PHC parameter string");
    format!(
        "$argon2id$v=19${params}${}${}",
        Base64Unpadded::encode_string(salt),
        Base64Unpadded::encode_string(hash)
    )
}

#[cfg(test)]
#[allow(clippy::panic, reason = "a failing test panics")]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::builder()
            .max_memory_kib(1024)
            .memory_kib(64)
            .max_iterations(4)
            .max_lanes(4)
            .max_bcrypt_cost(6)
            .max_pbkdf2_iterations(10_000)
            .build()
            .expect("valid policy")
    }

    const SALT_HASH: &str = "c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    #[test]
    fn caps_refuse_before_allocation() {
        let p = policy();
        // m = 4 GiB - 1: must be a cap error, never an allocation.
        let huge = format!("$argon2id$v=19$m=4294967295,t=1,p=1${SALT_HASH}");
        assert_eq!(
            Stored::parse(&huge, &p).err(),
            Some(Error::ExceedsCap(Cap::Memory))
        );
        let many_t = format!("$argon2id$v=19$m=64,t=5,p=1${SALT_HASH}");
        assert_eq!(
            Stored::parse(&many_t, &p).err(),
            Some(Error::ExceedsCap(Cap::Iterations))
        );
        let many_p = format!("$argon2id$v=19$m=64,t=1,p=5${SALT_HASH}");
        assert_eq!(
            Stored::parse(&many_p, &p).err(),
            Some(Error::ExceedsCap(Cap::Lanes))
        );
        let scrypt = format!("$scrypt$ln=20,r=8,p=1${SALT_HASH}");
        assert_eq!(
            Stored::parse(&scrypt, &p).err(),
            Some(Error::ExceedsCap(Cap::Memory))
        );
        let scrypt = format!("$scrypt$ln=255,r=8,p=1${SALT_HASH}");
        assert_eq!(
            Stored::parse(&scrypt, &p).err(),
            Some(Error::ExceedsCap(Cap::Memory))
        );
        let scrypt = format!("$scrypt$ln=300,r=8,p=1${SALT_HASH}");
        assert_eq!(
            Stored::parse(&scrypt, &p).err(),
            Some(Error::ExceedsCap(Cap::Memory))
        );
        let bcrypt = "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE";
        assert_eq!(
            Stored::parse(bcrypt, &p).err(),
            Some(Error::ExceedsCap(Cap::BcryptCost))
        );
        let django = "pbkdf2_sha256$4294967295$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(
            Stored::parse(django, &p).err(),
            Some(Error::ExceedsCap(Cap::Pbkdf2Iterations))
        );
        let django = "pbkdf2_sha256$99999999999$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(Stored::parse(django, &p).err(), Some(Error::MalformedHash));
        let long_salt = format!(
            "$argon2id$v=19$m=64,t=1,p=1${}$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "c".repeat(64)
        );
        let tight = policy()
            .to_builder()
            .max_salt_len(16)
            .build()
            .expect("valid");
        assert_eq!(
            Stored::parse(&long_salt, &tight).err(),
            Some(Error::ExceedsCap(Cap::SaltLength))
        );
    }

    #[test]
    fn malformed_and_unsupported_are_told_apart() {
        let p = policy();
        for bad in [
            "",
            "$argon2id$v=19$m=64,t=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=19$m=64,t=1,p=1,m=64$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=19$m=64,t=1,p=1,x=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ",
            "$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "pbkdf2_sha256$1000$salt$not base64",
            "pbkdf2_sha256$1000$salt",
            "$2b$0x$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE",
            "$2b$10$abcdefghijklmnopqrstuu",
        ] {
            assert_eq!(
                Stored::parse(bad, &p).err(),
                Some(Error::MalformedHash),
                "{bad}"
            );
        }
        for unsupported in [
            "$md5$rounds=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=20$m=64,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$2x$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyzABCDE",
        ] {
            assert_eq!(
                Stored::parse(unsupported, &p).err(),
                Some(Error::UnsupportedAlgorithm),
                "{unsupported}"
            );
        }
        assert_eq!(
            Stored::parse(&"$".repeat(513), &p).err(),
            Some(Error::MalformedHash)
        );
    }

    /// RFC 9106 §5.3: Argon2id with secret (8 × 0x03) and associated data (12 × 0x04), fed
    /// through our PHC parser (`keyid=`, `data=`) and our Argon2 call.
    #[test]
    fn rfc9106_argon2id_vector() {
        let tag = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659";
        let tag: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&tag[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let phc = format!(
            "$argon2id$v=19$m=32,t=3,p=4,keyid=cmZj,data={}${}${}",
            Base64Unpadded::encode_string(&[4; 12]),
            Base64Unpadded::encode_string(&[2; 16]),
            Base64Unpadded::encode_string(&tag),
        );
        let p = policy();
        let Ok(stored) = Stored::parse(&phc, &p) else {
            panic!("{phc}")
        };
        let secret = Pepper::unchecked(&[3; 8]);
        assert!(stored.matches(&[1; 32], Some(&secret)));
        assert!(!stored.matches(&[1; 31], Some(&secret)));
        assert!(!stored.matches(&[1; 32], Some(&Pepper::unchecked(&[3; 9]))));
        assert!(!stored.matches(&[1; 32], None));
    }

    #[test]
    fn format_round_trips_through_parse() {
        let s = format_argon2(64, 1, 2, Some(b"k1"), &[7; 16], &[9; 32]);
        assert!(
            s.starts_with("$argon2id$v=19$m=64,t=1,p=2,keyid=azE$"),
            "{s}"
        );
        let Ok(Stored::Argon2(h)) = Stored::parse(&s, &policy()) else {
            panic!("{s}")
        };
        assert_eq!(
            (h.params.m_cost(), h.params.t_cost(), h.params.p_cost()),
            (64, 1, 2)
        );
        assert_eq!(h.params.keyid(), b"k1");
        assert_eq!((h.salt, h.hash), (vec![7; 16], vec![9; 32]));
    }
}
