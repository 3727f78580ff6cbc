#![doc = include_str!("../README.md")]

mod config;
mod error;
mod jobs;
mod select;
mod shared;
mod store;
mod upload;
mod window;

pub use config::Config;
pub use error::{Error, STORE_NAME};
pub use jobs::{Progress, ProgressSnapshot, RewrapReport, ScrubReport, ShredReport};
pub use select::{
    CONTEXT_LOCATION, CONTEXT_TENANT, KeySelector, Selection, SingleKey, TenantPrefix,
};
pub use shared::SharedKeyring;
pub use store::EncryptedStore;
pub use upload::EncryptingUpload;
