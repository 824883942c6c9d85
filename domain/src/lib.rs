//! Vigil's shared domain types: the vocabulary every other crate speaks.
//!
//! - [`metric`]: the canonical vital-sign metrics, their UCUM units and plausibility limits.
//! - [`reading`]: a validated reading as stored, with where its timestamp came from.
//! - [`device`]: device kinds and which metrics each may report.
//! - [`event`]: device events (fall, SOS, battery, error).
//! - [`alert`]: alert severity and lifecycle state.
//! - [`patient`]: patients and their contacts.
//! - [`views`]: read models the store fills and the dashboard API serves.
//! - [`display`]: how times, numbers and text are shown (time zone, decimal comma, escaping).
//! - [`words`]: the names people read for rule ids, device kinds and NEWS2 parameters.
//! - [`text`]: which free text is accepted in names, and making stored text one safe line.
//!
//! This crate does no I/O. It depends only on serde and chrono so that the gateway, the alerting
//! engine, the dashboard and the simulators can share it without pulling each other in.

pub mod access;
pub mod alert;
pub mod device;
pub mod display;
pub mod event;
pub mod metric;
pub mod patient;
pub mod reading;
pub mod span;
pub mod text;
pub mod views;
pub mod words;

pub use access::{Access, Scope, DEFAULT_FACILITY};
pub use alert::{Alert, AlertState, Severity};
pub use device::DeviceKind;
pub use event::EventKind;
pub use metric::Metric;
pub use patient::{Contact, ContactRole, ContactTier, Lang, Patient};
pub use reading::{Reading, TsSource};

/// Upper bounds, in seconds, of the buckets of `vigil_reading_store_delay_seconds` (a
/// Prometheus histogram: from a reading's own time to the commit that stored it). Shared by
/// the gateway, which fills it, and `vigil-sim load`, which reads publish → stored
/// percentiles from it when devices stamp readings as they publish (issue #7).
pub const STORE_DELAY_BUCKETS_S: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
