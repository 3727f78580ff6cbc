#![doc = include_str!("../README.md")]

pub use atrest_crypto as crypto;
pub use atrest_password as password;
pub use atrest_stream as stream;
