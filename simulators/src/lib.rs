//! Simulated patients and devices (issue #7), publishing under the v1 contract (`docs/mqtt.md`)
//! with their own credentials.
//!
//! - [`physiology`]: seeded, reproducible vitals per condition with a daily rhythm, noise and
//!   scripted episodes.
//! - [`scenario`]: scenario files — patients, device kinds with cadence and battery, episodes,
//!   faults — as each device's exact message stream; [`play`]: plays one against a broker
//!   (`vigil demo`, `vigil-sim scenario`, `vigil-sim device`).
//! - [`load`]: many connections publishing pre-encoded readings as fast as allowed;
//!   [`accounting`]: where every acknowledged reading went, from Vigil's `/metrics`;
//!   [`probe`]: publish → alert latency.

pub mod accounting;
pub mod load;
pub mod physiology;
pub mod play;
pub mod probe;
pub mod scenario;
