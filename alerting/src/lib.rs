//! Vigil's alerting: what is worth waking someone for, and telling them.
//!
//! - [`rules`]: the default clinical threshold rules and their pure evaluation
//!   (reading or event in, breaches out).
//! - [`lifecycle`]: the alert state machine — one active alert per (patient, rule), and which
//!   transitions are allowed — as pure functions.
//! - [`email`]: the family e-mail, in Vietnamese or English, rendered from an alert.
//! - [`outbox`]: the delivery loop that takes queued e-mails from the store and hands them to a
//!   transport, with retries.
//!
//! Persistence is not here: the gateway's store keeps alerts and the outbox and implements
//! [`outbox::OutboxStore`]. This crate only decides and renders.

pub mod email;
pub mod lifecycle;
pub mod outbox;
pub mod rules;

pub use rules::{Breach, Rule, RuleSet};
