//! What notification policy needs from the store, as a trait (issue #16): the alert and its
//! contacts, the outbox, escalation schedules, digest items and ack links. `vigil-store`
//! implements it on a transaction; every call runs inside the caller's transaction.

use vigil_domain::{Alert, Contact, Lang};

/// An e-mail to queue.
pub struct NewEmail<'a> {
    pub message_id: &'a str,
    /// The alert it is about; none for a digest of several.
    pub alert_id: Option<i64>,
    pub contact_id: i64,
    pub to_name: &'a str,
    pub to_addr: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub html: &'a str,
    /// The escalation step that sent it (0: the first e-mail or a digest).
    pub stage: u32,
    /// The Message-ID it answers (`In-Reply-To`, `References`): the first e-mail of the
    /// contact's conversation about an episode (issue #17).
    pub in_reply_to: Option<&'a str>,
}

/// A contact's conversation about an episode (issue #17): later e-mails reply to its first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub message_id: String,
    pub subject: String,
    /// When the last e-mail of it was queued.
    pub last_at: i64,
    /// An update waits for `notify.update_interval` since `last_at`.
    pub pending: bool,
    /// When the contact answered "I'm handling it" (the family's response), if they did.
    pub responded_at: Option<i64>,
}

/// An "I'm handling it" link as stored, with its contact.
pub struct Link {
    pub alert_id: i64,
    pub contact_id: i64,
    pub contact_name: String,
    pub lang: Lang,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Times are epoch milliseconds throughout.
pub trait NotifyStore {
    type Error;

    fn alert(&self, id: i64) -> Result<Option<Alert>, Self::Error>;
    /// A patient's current contacts (not removed ones).
    fn contacts(&self, patient_id: &str) -> Result<Vec<Contact>, Self::Error>;
    /// E-mails queued about an alert for a contact so far.
    fn emails_for(&self, alert_id: i64, contact_id: i64) -> Result<u32, Self::Error>;
    /// Queues an e-mail, due at once.
    fn queue_email(&self, e: &NewEmail<'_>, now: i64) -> Result<(), Self::Error>;
    /// (queued, sent) e-mails about an alert.
    fn delivery_of(&self, alert_id: i64) -> Result<(i64, i64), Self::Error>;
    /// Sets the escalation step an alert is at and when the next one is due.
    fn schedule(&self, alert_id: i64, stage: u32, next_at: i64) -> Result<(), Self::Error>;
    /// Ends an alert's escalation.
    fn stop(&self, alert_id: i64) -> Result<(), Self::Error>;
    /// (alert, its next step) for every escalation step due at `now`, most overdue first.
    fn due_steps(&self, now: i64) -> Result<Vec<(i64, u32)>, Self::Error>;
    fn insert_link(
        &self,
        token_hash: &str,
        alert_id: i64,
        contact_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), Self::Error>;
    /// The link with this token hash, unless unknown or its contact was removed.
    fn link(&self, token_hash: &str) -> Result<Option<Link>, Self::Error>;
    fn burn_link(&self, token_hash: &str, now: i64) -> Result<(), Self::Error>;
    fn add_digest_item(
        &self,
        contact_id: i64,
        patient_id: &str,
        alert_id: i64,
        now: i64,
    ) -> Result<(), Self::Error>;
    /// Every (contact, patient) with digest items waiting.
    fn digest_groups(&self) -> Result<Vec<(i64, String)>, Self::Error>;
    /// Drops every digest item of a contact (the contact is gone).
    fn drop_digests_of(&self, contact_id: i64) -> Result<(), Self::Error>;
    fn digest_last_sent(
        &self,
        contact_id: i64,
        patient_id: &str,
    ) -> Result<Option<i64>, Self::Error>;
    /// The alerts waiting for a contact's digest about a patient, oldest first.
    fn digest_alerts(&self, contact_id: i64, patient_id: &str) -> Result<Vec<i64>, Self::Error>;
    /// A contact's digest about a patient is done: its items are dropped, and `sent_at` (when
    /// one went) starts the contact's next `min_interval`.
    fn digest_done(
        &self,
        contact_id: i64,
        patient_id: &str,
        sent_at: Option<i64>,
    ) -> Result<(), Self::Error>;
    /// The episode an alert belongs to (issue #17).
    fn episode_of(&self, alert_id: i64) -> Result<Option<i64>, Self::Error>;
    /// Every alert of an episode, oldest first.
    fn episode_alerts(&self, episode_id: i64) -> Result<Vec<Alert>, Self::Error>;
    /// An alert of the episode whose escalation is running, if one.
    fn escalating_in(&self, episode_id: i64) -> Result<Option<i64>, Self::Error>;
    /// Each contact's conversation about an episode.
    fn threads(&self, episode_id: i64) -> Result<Vec<(i64, Thread)>, Self::Error>;
    /// Starts or updates a contact's conversation about an episode.
    fn save_thread(&self, episode_id: i64, contact_id: i64, t: &Thread) -> Result<(), Self::Error>;
    /// (episode, contact) of every conversation with an update waiting.
    fn pending_threads(&self) -> Result<Vec<(i64, i64)>, Self::Error>;
    /// The phone of the patient's facility (the station families are told to call).
    fn station_phone(&self, patient_id: &str) -> Result<Option<String>, Self::Error>;
    /// The note a clinician shared with an episode's family: (who, note).
    fn family_note(&self, episode_id: i64) -> Result<Option<(String, String)>, Self::Error>;
    /// Records a contact's "I'm handling it" for an episode (their thread exists).
    fn respond(&self, episode_id: i64, contact_id: i64, at: i64) -> Result<(), Self::Error>;
}
