//! `vigil-notify`: telling people (issue #5, split out of alerting in issue #16).
//!
//! - [`policy`]: which e-mails an alert queues and when — red at once with escalation, others
//!   as digests — over the [`NotifyStore`] trait the store implements.
//! - [`escalation`]: who a red alert's step e-mails and when the next step is due.
//! - [`digest`]: when a digest may go (interval, quiet hours in the contact's zone).
//! - [`email`]: the e-mails, in Vietnamese or English, rendered from an alert.
//! - [`conversation`]: an episode's e-mails (issue #17): the first when it turns red, then
//!   replies in its thread — updates, reminders, the all-clear.
//! - [`outbox`]: the delivery loop that takes queued e-mails from the store and hands them to
//!   SMTP (lettre) or `.eml` files, with retries, behind the [`outbox::OutboxStore`] trait.

pub mod conversation;
pub mod digest;
pub mod email;
pub mod escalation;
pub mod outbox;
pub mod policy;
pub mod store;

pub use policy::{NotifySettings, NOTIFICATION_FAILED};
pub use store::{Link, NewEmail, NotifyStore, Thread};
