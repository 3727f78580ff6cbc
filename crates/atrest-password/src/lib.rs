#![doc = include_str!("../README.md")]

mod budget;
mod calibrate;
mod error;
mod hasher;
mod pepper;
mod policy;
mod stored;

#[doc(hidden)]
pub mod fuzzing;

pub use calibrate::{Calibration, calibrate};
pub use error::{Cap, ConfigError, Error};
pub use hasher::{Hasher, HasherBuilder, RehashReason, Verification};
pub use pepper::{Pepper, PepperSet};
pub use policy::{Policy, PolicyBuilder};
pub use stored::LegacyAlgorithm;
