//! The migrations, oldest first, in SQLite's DDL; `super::migrate` gives PostgreSQL the same
//! steps in its types (`crate::db` translates them).

const V1: &str = r#"
-- `num` columns are compact integer keys for the hot readings table; `id` is the public id.
CREATE TABLE patients (
    num         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    lang        TEXT NOT NULL,
    role        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX contacts_patient ON contacts(patient_id);
CREATE TABLE devices (
    num          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    patient_id   TEXT NOT NULL REFERENCES patients(id),
    patient_num  INTEGER NOT NULL REFERENCES patients(num),
    kind         TEXT NOT NULL,
    -- argon2id PHC string of the device secret; the secret itself is shown once and never kept.
    secret_hash  TEXT NOT NULL,
    -- Mosquitto's PBKDF2 hash of the same secret, for `vigil mosquitto export`.
    mosquitto_hash TEXT,
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    last_seen    INTEGER,
    online       INTEGER,
    -- Last time a reading's time was far in the future: the device's clock needs fixing.
    clock_skew_at INTEGER,
    -- Battery level in percent and when it was reported (SenML `%EL`).
    battery      REAL,
    battery_at   INTEGER
);
-- The hot table: one B-tree keyed by (device, metric, time), integer keys only, so a reading
-- costs one insert (docs/benchmarks.md). The key is also the idempotency check (design
-- invariant 2): a redelivered reading is ignored. `metric` is `Metric::code()`; `patient` is
-- the patient the device belonged to when the reading was taken.
CREATE TABLE readings (
    device       INTEGER NOT NULL,
    metric       INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    patient      INTEGER NOT NULL,
    value        REAL NOT NULL,
    -- 1 when the time is the receive time (the device sent none).
    ts_received  INTEGER NOT NULL DEFAULT 0,
    seq          INTEGER,
    flags        TEXT,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (device, metric, ts)
) WITHOUT ROWID;
CREATE UNIQUE INDEX readings_dedup_seq ON readings(device, metric, seq) WHERE seq IS NOT NULL;
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    patient_id   TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    UNIQUE (device_id, kind, ts)
);
CREATE TABLE rejected (
    id               INTEGER PRIMARY KEY,
    device_id        TEXT,
    topic            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    detail           TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    payload_excerpt  TEXT NOT NULL
);
CREATE INDEX rejected_time ON rejected(received_at);
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    patient_id       TEXT NOT NULL REFERENCES patients(id),
    rule             TEXT NOT NULL,
    -- The clinical condition (e.g. spo2_low); rules of one condition escalate one alert.
    condition        TEXT NOT NULL,
    severity         TEXT NOT NULL,
    state            TEXT NOT NULL,
    opened_at        INTEGER NOT NULL,
    metric           TEXT,
    value            REAL,
    unit             TEXT,
    message          TEXT NOT NULL,
    last_value       REAL,
    last_at          INTEGER NOT NULL,
    breaches         INTEGER NOT NULL DEFAULT 1,
    acknowledged_at  INTEGER,
    acknowledged_by  TEXT,
    note             TEXT,
    resolved_at      INTEGER,
    resolved_by      TEXT
);
-- One active alert per (patient, condition), which implies one per (patient, rule): design
-- invariant 3, enforced by the database.
CREATE UNIQUE INDEX alerts_one_active ON alerts(patient_id, condition) WHERE state <> 'resolved';
CREATE INDEX alerts_state ON alerts(state, opened_at);
CREATE TABLE alert_audit (
    id        INTEGER PRIMARY KEY,
    alert_id  INTEGER NOT NULL REFERENCES alerts(id),
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    note      TEXT
);
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    message_id       TEXT NOT NULL UNIQUE,
    alert_id         INTEGER REFERENCES alerts(id),
    contact_id       INTEGER,
    to_name          TEXT NOT NULL,
    to_addr          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    sent_at          INTEGER,
    last_error       TEXT
);
CREATE INDEX outbox_due ON outbox(sent_at, next_attempt_at);
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    admin          INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    last_used   INTEGER
);
"#;

/// Rollups (issue #4): per patient, metric and bucket, the count, sum, minimum and maximum of
/// the readings stored, so a 30-day chart reads hundreds of rows, not millions. `res` is the
/// bucket width in milliseconds (60 000 or 3 600 000) and `bucket` its start (epoch ms, UTC).
/// Maintained in the same transaction as the readings (only readings that were new count), so
/// rollups and raw data never disagree, even across a crash. Existing readings are rolled up
/// once here.
const V2: &str = r#"
CREATE TABLE rollups (
    patient  INTEGER NOT NULL,
    metric   INTEGER NOT NULL,
    res      INTEGER NOT NULL,
    bucket   INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    sum      REAL NOT NULL,
    min      REAL NOT NULL,
    max      REAL NOT NULL,
    PRIMARY KEY (patient, metric, res, bucket)
) WITHOUT ROWID;
INSERT INTO rollups (patient, metric, res, bucket, n, sum, min, max)
    SELECT patient, metric, 60000, ts - (ts % 60000), count(*), sum(value), min(value), max(value)
    FROM readings GROUP BY patient, metric, ts - (ts % 60000);
INSERT INTO rollups (patient, metric, res, bucket, n, sum, min, max)
    SELECT patient, metric, 3600000, ts - (ts % 3600000), count(*), sum(value), min(value),
           max(value)
    FROM readings GROUP BY patient, metric, ts - (ts % 3600000);
"#;

/// Store-and-forward to InfluxDB (issue #4). A write job that stores new readings appends one
/// row of InfluxDB line protocol for them, in the same transaction, when the sink is
/// configured; the forwarder sends rows in `id` order and deletes them only after the server
/// answered 2xx, so the smallest `id` left is the durable watermark. Rows the server refuses
/// with a 4xx move to `forward_quarantine` with its answer, so they never block the rest.
const V3: &str = r#"
CREATE TABLE forward_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lines       TEXT NOT NULL,
    points      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE forward_quarantine (
    id          INTEGER PRIMARY KEY,
    lines       TEXT NOT NULL,
    points      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL
);
"#;

/// Version 4 (issue #5): where each timed rule stands for each patient (pending since, firing,
/// clearing since: `vigil_alerting::engine::State` as JSON), written in the transaction of the
/// reading that moved it, so a persistence timer running at a crash is not reset. Only rules
/// away from normal have a row.
const V4: &str = r#"
CREATE TABLE rule_state (
    patient_num INTEGER NOT NULL,
    rule        TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (patient_num, rule)
) WITHOUT ROWID;
"#;

/// Version 5 (issue #5): events waiting for their cancel window (a fall waits for "I'm OK")
/// before they raise an alert. Kept in the store so a restart neither loses nor repeats one.
const V5: &str = r#"
CREATE TABLE pending_events (
    event_id    INTEGER PRIMARY KEY REFERENCES events(id),
    patient_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    due_at      INTEGER NOT NULL
);
CREATE INDEX pending_events_due ON pending_events(due_at);
"#;

/// Version 6 (issue #5, notifications):
/// - contacts get a `tier` (primary: told at once; secondary: when nobody acknowledges);
/// - alerts remember the threshold crossed (`limit_text`) and the event that raised them
///   (`event`), for e-mails, and their escalation: steps done (`notify_stage`) and when the
///   next is due (`next_notify_at`, NULL once acknowledged or resolved);
/// - outbox rows get an HTML alternative, the escalation step they belong to, and `failed_at`
///   when the relay refused them for good (5xx);
/// - `ack_links`: the "I'm handling it" links in family e-mails, stored as SHA-256 hashes of
///   their random tokens, single-use (`used_at`) and expiring.
const V6: &str = r#"
ALTER TABLE contacts ADD COLUMN tier TEXT NOT NULL DEFAULT 'primary';
ALTER TABLE alerts ADD COLUMN limit_text TEXT;
ALTER TABLE alerts ADD COLUMN event TEXT;
ALTER TABLE alerts ADD COLUMN notify_stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN next_notify_at INTEGER;
CREATE INDEX alerts_next_notify ON alerts(next_notify_at) WHERE next_notify_at IS NOT NULL;
ALTER TABLE outbox ADD COLUMN html TEXT;
ALTER TABLE outbox ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN failed_at INTEGER;
CREATE TABLE ack_links (
    token_hash  TEXT PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts(id),
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) WITHOUT ROWID;
"#;

/// Version 7 (issue #5): per-patient threshold changes as clinical orders — who, when, why,
/// effective from. Append-only: the table is the audit log; the order in force for a (patient,
/// rule) is the latest by `effective_from` (then `id`) that has begun.
const V7: &str = r#"
CREATE TABLE threshold_orders (
    id              INTEGER PRIMARY KEY,
    patient_id      TEXT NOT NULL REFERENCES patients(id),
    rule            TEXT NOT NULL,
    threshold       REAL,
    clear           REAL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    reason          TEXT NOT NULL,
    ordered_by      TEXT NOT NULL,
    ordered_at      INTEGER NOT NULL,
    effective_from  INTEGER NOT NULL
);
CREATE INDEX threshold_orders_patient ON threshold_orders(patient_id, rule, effective_from);
"#;

/// Version 8 (issue #5, anti-flood): per contact, the least severe alert they are e-mailed
/// about (`min_severity`; NULL: by role), their quiet hours and time zone (NULL: `[notify]`'s);
/// non-critical alerts waiting for a contact's next digest (`digest_items`) and when each
/// contact last had one per patient (`digest_sent`).
const V8: &str = r#"
ALTER TABLE contacts ADD COLUMN min_severity TEXT;
ALTER TABLE contacts ADD COLUMN quiet_hours TEXT;
ALTER TABLE contacts ADD COLUMN timezone TEXT;
CREATE TABLE digest_items (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    patient_id  TEXT NOT NULL,
    alert_id    INTEGER NOT NULL REFERENCES alerts(id),
    created_at  INTEGER NOT NULL
);
CREATE INDEX digest_items_contact ON digest_items(contact_id, patient_id);
CREATE TABLE digest_sent (
    contact_id  INTEGER NOT NULL,
    patient_id  TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (contact_id, patient_id)
) WITHOUT ROWID;
"#;

/// Version 9 (issue #5, missing data): a device's expected interval between messages, in
/// seconds; NULL: its kind's (`DeviceKind::default_interval_s`).
const V9: &str = r#"
ALTER TABLE devices ADD COLUMN expected_interval_s INTEGER;
"#;

/// Version 10 (issue #5): every reading that breached an alert's rule, linked to the alert for
/// review ("repeated breaches update it … but every triggering reading stays linked"). The
/// value is copied so the link outlives raw-reading retention.
const V10: &str = r#"
CREATE TABLE alert_readings (
    alert_id  INTEGER NOT NULL REFERENCES alerts(id),
    device    INTEGER NOT NULL,
    metric    INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (alert_id, device, metric, ts)
) WITHOUT ROWID;
"#;

/// Version 11 (issue #6, facilities and sessions): patients belong to a facility; non-admin
/// users see the facilities they are assigned to; an API token may be limited to one; sessions
/// carry a CSRF token. Existing patients and users go to the `default` facility.
const V11: &str = r#"
CREATE TABLE facilities (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO facilities (id, name, created_at) VALUES ('default', 'Default', 0);
ALTER TABLE patients ADD COLUMN facility_id TEXT NOT NULL DEFAULT 'default';
CREATE INDEX patients_facility ON patients(facility_id);
CREATE TABLE user_facilities (
    user_id      INTEGER NOT NULL REFERENCES users(id),
    facility_id  TEXT NOT NULL REFERENCES facilities(id),
    PRIMARY KEY (user_id, facility_id)
) WITHOUT ROWID;
INSERT INTO user_facilities (user_id, facility_id) SELECT id, 'default' FROM users WHERE admin = 0;
ALTER TABLE api_tokens ADD COLUMN facility_id TEXT;
ALTER TABLE sessions ADD COLUMN csrf TEXT;
"#;

/// Version 12 (issue #6, alert inbox): who took an alert on ("assign to me").
const V12: &str = r#"
ALTER TABLE alerts ADD COLUMN assigned_to TEXT;
ALTER TABLE alerts ADD COLUMN assigned_at INTEGER;
"#;

/// The ward view (issue #6): a patient's area (a ward, village or hamlet) and tags to filter
/// by; a dashboard user's language, chosen once and kept with the account.
const V13: &str = r#"
ALTER TABLE patients ADD COLUMN area TEXT;
-- Tags as one string, each between commas (",copd,heart-failure,"), so a tag filter is one
-- LIKE; a patient carries a handful.
ALTER TABLE patients ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN lang TEXT;
"#;

/// Hardening (issue #15): a row the readiness probe rewrites, so `/readyz` learns whether the
/// store can still commit (a full disk) even when no reading arrives.
const V14: &str = r#"
CREATE TABLE store_probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
);
"#;

/// Revocation (issue #15, finding 9): tokens revoked and users disabled keep their rows (the
/// audit names them); contacts and devices removed are hidden, not deleted (e-mails sent and
/// readings stored still name them). Every administrative change is written to `admin_audit`.
const V15: &str = r#"
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE contacts ADD COLUMN removed_at INTEGER;
ALTER TABLE devices ADD COLUMN removed_at INTEGER;
-- E-mails that were waiting for a contact when the contact was removed: not sent, and not a
-- delivery failure either (they do not make `/readyz` or the delivery health unhealthy).
ALTER TABLE outbox ADD COLUMN cancelled_at INTEGER;
CREATE TABLE admin_audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    -- `cli:<os user>`, a dashboard user's name or `token:<name>`.
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
);
"#;

/// Episodes (issue #17): one deterioration of one patient groups the alerts that open while
/// it is active. At most one active episode per patient. Alerts active at the upgrade become
/// one active episode per patient; alerts resolved before it belong to none.
const V16: &str = r#"
CREATE TABLE episodes (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    opened_at   INTEGER NOT NULL,
    -- The worst severity of its open alerts (once ended: the last it had).
    severity    TEXT NOT NULL,
    -- The worst severity it reached.
    peak        TEXT NOT NULL,
    -- When its last open alert was resolved; NULL while active.
    ended_at    INTEGER,
    -- Times an alert came back within notify.reopen_grace after a person resolved it.
    reopened    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX episodes_one_active ON episodes(patient_id) WHERE ended_at IS NULL;
CREATE INDEX episodes_patient ON episodes(patient_id, opened_at);
ALTER TABLE alerts ADD COLUMN episode_id INTEGER REFERENCES episodes(id);
CREATE INDEX alerts_episode ON alerts(episode_id);
INSERT INTO episodes (patient_id, opened_at, severity, peak)
    -- MIN(worst): one value per patient already (a window over the patient); the aggregate
    -- is what PostgreSQL requires of a column outside GROUP BY.
    SELECT patient_id, MIN(opened_at), MIN(worst), MIN(worst) FROM (
        SELECT patient_id, opened_at,
               CASE MIN(CASE severity WHEN 'red' THEN 0 WHEN 'amber' THEN 1 ELSE 2 END)
                    OVER (PARTITION BY patient_id)
                   WHEN 0 THEN 'red' WHEN 1 THEN 'amber' ELSE 'yellow' END AS worst
        FROM alerts WHERE state <> 'resolved') AS active
    GROUP BY patient_id;
UPDATE alerts SET episode_id =
    (SELECT e.id FROM episodes e WHERE e.patient_id = alerts.patient_id AND e.ended_at IS NULL)
    WHERE state <> 'resolved';
"#;

/// The family's conversation (issue #17): each contact's thread about an episode — the first
/// e-mail's Message-ID and subject (later e-mails reply to it), when the last one went, and
/// whether an update waits for `notify.update_interval`; and the reply headers of an e-mail.
const V17: &str = r#"
CREATE TABLE episode_threads (
    episode_id  INTEGER NOT NULL REFERENCES episodes(id),
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    message_id  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    pending     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (episode_id, contact_id)
);
CREATE INDEX episode_threads_pending ON episode_threads(episode_id) WHERE pending = 1;
ALTER TABLE outbox ADD COLUMN in_reply_to TEXT;
"#;

/// The family's response (issue #17): when a contact pressed "I'm handling it" in their
/// conversation about an episode. It does not acknowledge the alert clinically.
const V18: &str = r#"
ALTER TABLE episode_threads ADD COLUMN responded_at INTEGER;
"#;

/// Phone numbers (issue #17): contacts' and facilities' (the station's), shown in e-mails, on
/// the family's link page and on the ward.
const V19: &str = r#"
ALTER TABLE contacts ADD COLUMN phone TEXT;
ALTER TABLE facilities ADD COLUMN phone TEXT;
"#;

/// A clinician's note shared with the family (issue #17): kept on the episode, quoted in the
/// family's "taken on" update and shown on the ward card.
const V20: &str = r#"
ALTER TABLE episodes ADD COLUMN family_note TEXT;
ALTER TABLE episodes ADD COLUMN family_note_by TEXT;
ALTER TABLE episodes ADD COLUMN family_note_at INTEGER;
"#;

/// The FHIR push queue (issue #18): the keys (device, metric, time) of the readings each ingest
/// job stored, written in that job's transaction while `[fhir] push_url` is set; rows go when
/// the receiving server took their Bundle, or to the quarantine when it refused it for good.
const V21: &str = r#"
CREATE TABLE fhir_queue (
    id          INTEGER PRIMARY KEY,
    keys        TEXT NOT NULL,
    readings    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE fhir_quarantine (
    id          INTEGER PRIMARY KEY,
    keys        TEXT NOT NULL,
    readings    INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL
);
"#;

/// Shared work (issue #20): which gateway does each background duty — the outbox, escalation,
/// the fall window, the missing-data watch, retention, the forwarders — and until when. A
/// gateway renews its leases while it lives; another takes a lease over once it has expired.
const V22: &str = r#"
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    since       INTEGER NOT NULL
);
"#;

/// Issue #21: the red-alert tone is a setting kept with the account (NULL: on, the default);
/// an alert raised by a device event names the device (and a `battery_low` its level, in
/// `value`); an event keeps the battery level it reported, and a fall when the patient's "I'm
/// OK" cancelled it (the patient page's timeline shows cancelled falls too); a patient removed
/// from monitoring keeps its record (`removed_at`).
const V23: &str = r#"
ALTER TABLE users ADD COLUMN sound INTEGER;
ALTER TABLE alerts ADD COLUMN device_id TEXT;
ALTER TABLE events ADD COLUMN battery REAL;
ALTER TABLE events ADD COLUMN cancelled_at INTEGER;
ALTER TABLE patients ADD COLUMN removed_at INTEGER;
CREATE INDEX events_patient_ts ON events(patient_id, ts);
"#;

/// Every migration in order; index + 1 is the `user_version` it leads to.
pub(crate) const MIGRATIONS: &[&str] = &[
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15, V16, V17, V18, V19, V20, V21,
    V22, V23,
];
