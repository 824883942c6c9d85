//! Vigil's alerting: what is worth waking someone for.
//!
//! - [`rule`]: what a rule, an override and a breach are; [`condition`]: the threshold
//!   comparison they test values with.
//! - [`rules`]: the rule set and its pure evaluation (reading or event in, breaches out);
//!   [`rulefile`]: the TOML rule file rules are read from, with the built-in defaults in
//!   `rules/default.toml`.
//! - [`engine`]: threshold rules over time — persistence before firing, a separate clear
//!   condition (hysteresis) before clearing — as a pure state machine per (patient, rule).
//! - [`news2`]: the NEWS2 early warning score from a patient's latest vitals, partial when
//!   consciousness or oxygen use is unknown (they are not measured at home).
//! - [`lifecycle`]: the alert state machine — one active alert per (patient, rule), and which
//!   transitions are allowed — as pure functions.
//! - [`episode`]: alerts grouped into a patient's episodes (issue #17) — which episode a new
//!   alert joins, when one ends, its severity.
//!
//! Modules depend one way: `condition` ← `engine` ← `rule` ← `rulefile` ← `rules` (which
//! also uses `news2`); no two import each other (issue #16).
//!
//! Pure: no I/O, no clock, no e-mail and no async runtime (issue #16). Who is told and how is
//! `vigil-notify`; persistence is `vigil-store`.

pub mod condition;
pub mod engine;
pub mod episode;
pub mod lifecycle;
pub mod news2;
pub mod rule;
pub mod rulefile;
pub mod rules;

pub use rules::{Breach, Outcome, Rule, RuleSet, RuleStates};
