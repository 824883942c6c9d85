//! `vigil-protocol`: the device contract v1 (docs/mqtt.md) as pure code — topics, the JSON and
//! SenML decoders, units and validation. No I/O and no clock (times are passed in), so the
//! gateway, the simulators and the fuzz target share one implementation.
//!
//! ```text
//! topic ──▶ decode (json, senml) ──▶ validate ──▶ vigil_domain::Reading
//!              └──── message: RawReading, Decoded, Reject, Limits ────┘
//! ```
//! `message` holds the types every stage shares, so the stages depend on it and never on each
//! other in a circle.

pub mod decode;
mod fast;
pub mod json;
pub mod message;
pub mod senml;
pub mod topic;
mod ts;
pub mod validate;

pub use decode::decode;
pub use message::{Decoded, Limits, RawReading, Reject};
pub use topic::{Channel, TOPIC_PREFIX};
