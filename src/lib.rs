#![doc = include_str!("../README.md")]

pub use atrest_crypto as crypto;
pub use atrest_envelope as envelope;
pub use atrest_keyring as keyring;
pub use atrest_password as password;
pub use atrest_store as store;
pub use atrest_stream as stream;

mod blob;
pub use blob::{decrypt_blob, decrypt_blob_detached, encrypt_blob, encrypt_blob_detached};
