#![doc = include_str!("../README.md")]

mod config;
mod detached;
mod error;
mod jobs;
mod paginated;
mod select;
mod shared;
mod store;
mod upload;
mod window;

pub use config::{Config, Headers};
pub use detached::DETACHED_HEADERS;
pub use error::{Error, STORE_NAME};
pub use jobs::{GarbageReport, Progress, ProgressSnapshot, RewrapReport, ScrubReport, ShredReport};
pub use select::{
    CONTEXT_LOCATION, CONTEXT_TENANT, KeySelector, Selection, SingleKey, TenantPrefix,
};
pub use shared::SharedKeyring;
pub use store::EncryptedStore;
pub use upload::EncryptingUpload;
