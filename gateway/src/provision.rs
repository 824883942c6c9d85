//! Registering patients' people and devices from text, the same way whether an operator types
//! a `vigil` command or an administrator fills a dashboard form (issue #6): each input is
//! checked here and a bad one is `StoreError::Invalid` naming the field.

use crate::secrets;
use crate::store::devices::SecretHashes;
use crate::store::registry::{self, NewContact};
use crate::store::{Result, StoreError};
use vigil_domain::{ContactRole, ContactTier, DeviceKind, Lang, Severity};
use vigil_store::db::Connection;

fn invalid(msg: String) -> StoreError {
    StoreError::Invalid(msg)
}

/// A contact as typed: `lang` vi|en, `role` family|clinician, `tier` primary|secondary,
/// `notify` critical|warning|info (none: the role's default), quiet hours `HH:MM-HH:MM`, an
/// IANA time zone.
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    pub name: String,
    pub email: String,
    pub lang: String,
    pub role: String,
    pub tier: String,
    pub notify: Option<String>,
    pub quiet_hours: Option<String>,
    pub timezone: Option<String>,
    pub phone: Option<String>,
}

fn parse_lang(v: &str) -> Result<Lang> {
    v.parse().map_err(|_| invalid("lang: vi or en".into()))
}

fn parse_role(v: &str) -> Result<ContactRole> {
    v.parse()
        .map_err(|_| invalid("role: family or clinician".into()))
}

fn parse_tier(v: &str) -> Result<ContactTier> {
    v.parse()
        .map_err(|_| invalid("tier: primary or secondary".into()))
}

/// The least severity a `notify` word asks for: `Some(None)` for none given (the role's
/// default), `None` for a word that is not one.
fn notify_severity(v: &str) -> Option<Option<Severity>> {
    match v {
        "" => Some(None),
        "critical" => Some(Some(Severity::Red)),
        "warning" => Some(Some(Severity::Amber)),
        "info" => Some(Some(Severity::Yellow)),
        _ => None,
    }
}

fn check_quiet_hours(q: &str) -> Result<()> {
    vigil_notify::digest::QuietHours::parse_setting(q)
        .map(|_| ())
        .map_err(|e| invalid(format!("quiet hours {e}")))
}

fn check_timezone(tz: &str) -> Result<()> {
    tz.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| invalid(format!("time zone {tz:?}: not an IANA time zone")))
}

pub fn add_contact(conn: &Connection, patient_id: &str, c: &ContactInput) -> Result<i64> {
    if c.name.trim().is_empty() {
        return Err(invalid("contact name must not be empty".into()));
    }
    let (lang, role, tier) = (
        parse_lang(&c.lang)?,
        parse_role(&c.role)?,
        parse_tier(&c.tier)?,
    );
    let notify = c.notify.as_deref().unwrap_or("");
    let min_severity = notify_severity(notify)
        .ok_or_else(|| invalid(format!("notify {notify:?}: critical, warning or info")))?;
    if let Some(q) = c.quiet_hours.as_deref().filter(|q| !q.is_empty()) {
        check_quiet_hours(q)?;
    }
    if let Some(tz) = c.timezone.as_deref().filter(|t| !t.is_empty()) {
        check_timezone(tz)?;
    }
    registry::add_contact(
        conn,
        patient_id,
        &NewContact {
            name: c.name.trim(),
            email: c.email.trim(),
            lang,
            role,
            tier,
            min_severity,
            quiet_hours: c.quiet_hours.as_deref().filter(|q| !q.is_empty()),
            timezone: c.timezone.as_deref().filter(|t| !t.is_empty()),
            phone: c.phone.as_deref().filter(|p| !p.is_empty()),
        },
    )
}

/// A contact's changes as typed (CLI `contact edit`, API `PATCH /contacts/{id}`): `None`
/// keeps a field; `notify`, `quiet_hours` and `timezone` take `default` to go back to the
/// role's or the configuration's. One type for both: the API's request body.
pub use vigil_dashboard::ContactEditRequest as ContactEdit;

/// Changes contact `id` as `e` says, checked field by field like [`add_contact`], audited as
/// `actor`.
pub fn edit_contact(
    conn: &Connection,
    id: i64,
    e: &ContactEdit,
    actor: &str,
) -> Result<vigil_domain::Contact> {
    let is_default = |v: &str| v.is_empty() || v == "default";
    let min_severity =
        match e.notify.as_deref() {
            None => None,
            Some(v) if is_default(v) => Some(None),
            Some(v) => Some(notify_severity(v).ok_or_else(|| {
                invalid(format!("notify {v:?}: critical, warning, info or default"))
            })?),
        };
    let quiet_hours = match e.quiet_hours.as_deref() {
        None => None,
        Some(v) if is_default(v) => Some(None),
        Some(q) => {
            check_quiet_hours(q)?;
            Some(Some(q))
        }
    };
    let timezone = match e.timezone.as_deref() {
        None => None,
        Some(v) if is_default(v) => Some(None),
        Some(tz) => {
            check_timezone(tz)?;
            Some(Some(tz))
        }
    };
    let change = registry::ContactChange {
        name: e.name.as_deref(),
        email: e.email.as_deref(),
        lang: e.lang.as_deref().map(parse_lang).transpose()?,
        role: e.role.as_deref().map(parse_role).transpose()?,
        tier: e.tier.as_deref().map(parse_tier).transpose()?,
        min_severity,
        quiet_hours,
        timezone,
        phone: e
            .phone
            .as_deref()
            .map(|p| Some(p).filter(|p| !(p.is_empty() || *p == "none"))),
    };
    registry::edit_contact(conn, id, &change, actor)
}

/// Who did it, for the audit, when an operator runs a `vigil` command: `cli:<OS user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// A device kind as typed.
pub fn device_kind(kind: &str) -> Result<DeviceKind> {
    kind.parse().map_err(|e| invalid(format!("kind: {e}")))
}

/// An expected reporting interval as typed (`90s`, `5m`, `1h`): whole seconds, at least one.
pub fn device_interval(interval: Option<&str>) -> Result<Option<i64>> {
    interval
        .filter(|i| !i.is_empty())
        .map(|i| {
            vigil_alerting::rulefile::duration_ms(i)
                .filter(|ms| *ms >= 1000)
                .map(|ms| ms / 1000)
                .ok_or_else(|| invalid(format!("interval {i:?}: a duration such as 5m")))
        })
        .transpose()
}

/// A new device secret and its stored hashes. Hashing is deliberately slow (argon2id): do it
/// before taking the store's write turn.
pub fn new_secret() -> (String, SecretHashes) {
    let secret = secrets::new_device_secret();
    let hashes = SecretHashes::of(&secret);
    (secret, hashes)
}

/// Registers a device; its id (generated when `id` is `None`).
pub fn add_device(
    conn: &Connection,
    id: Option<&str>,
    patient_id: &str,
    kind: DeviceKind,
    interval_s: Option<i64>,
    hashes: &SecretHashes,
) -> Result<String> {
    let id = crate::store::devices::add_device(conn, id, patient_id, kind, hashes)?;
    if let Some(s) = interval_s {
        conn.execute(
            "UPDATE devices SET expected_interval_s = ?2 WHERE id = ?1",
            vigil_store::params![id, s],
        )?;
    }
    Ok(id)
}

/// `count` patients `{prefix}-p{i}` in `facility`, each with a device `{prefix}-{i}` of `kind`,
/// in one transaction; (device id, secret, patient id) each. The secrets are hashed on every
/// core first: argon2 is slow on purpose, a few milliseconds a device.
pub fn bulk(
    conn: &mut Connection,
    prefix: &str,
    count: u32,
    kind: DeviceKind,
    facility: &str,
) -> Result<Vec<(String, String, String)>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ids: Vec<u32> = (0..count).collect();
    let chunk = ids.len().div_ceil(threads).max(1);
    let secrets: Vec<(String, SecretHashes)> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|_| new_secret()).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("hashing does not panic"))
            .collect()
    });
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(count as usize);
    for (i, (secret, hashes)) in secrets.into_iter().enumerate() {
        let patient = format!("{prefix}-p{i}");
        let device = format!("{prefix}-{i}");
        registry::add_patient(&tx, Some(&patient), &patient, facility, None, &[])?;
        crate::store::devices::add_device(&tx, Some(&device), &patient, kind, &hashes)?;
        out.push((device, secret, patient));
    }
    tx.commit()?;
    Ok(out)
}

/// New secrets for a scenario's devices, in the file's order: hashed before taking the
/// store's write turn (argon2 is slow on purpose).
pub fn scenario_secrets(s: &vigil_simulators::scenario::Scenario) -> Vec<(String, SecretHashes)> {
    s.patients
        .iter()
        .flat_map(|p| &p.devices)
        .map(|_| new_secret())
        .collect()
}

/// Registers a simulator scenario's patients (with their name, area, tags and family
/// contacts) and devices in `facility` (issue #7), with `secrets` from [`scenario_secrets`]; a
/// device with a fixed cadence is expected at it. Idempotent: existing patients are kept,
/// existing devices get the new secret and are enabled. (device id, secret, patient id) each.
/// `tx`: the caller's transaction, so a file is registered all or nothing.
pub fn scenario(
    tx: &Connection,
    s: &vigil_simulators::scenario::Scenario,
    facility: &str,
    secrets: Vec<(String, SecretHashes)>,
) -> Result<Vec<(String, String, String)>> {
    let devices: Vec<_> = s
        .patients
        .iter()
        .flat_map(|p| p.devices.iter().map(move |d| (p, d)))
        .zip(secrets)
        .collect();
    for p in &s.patients {
        if registry::patient(tx, &p.id)?.is_some() {
            continue;
        }
        registry::add_patient(
            tx,
            Some(&p.id),
            &p.name,
            facility,
            p.area.as_deref(),
            &p.tags,
        )?;
        for c in &p.contacts {
            add_contact(
                tx,
                &p.id,
                &ContactInput {
                    name: c.name.clone(),
                    email: c.email.clone(),
                    lang: c.lang.clone(),
                    role: "family".into(),
                    tier: "primary".into(),
                    ..Default::default()
                },
            )?;
        }
    }
    let mut out = Vec::with_capacity(devices.len());
    for ((p, d), (secret, hashes)) in devices {
        match crate::store::devices::device(tx, &d.id)? {
            Some(existing) if existing.patient_id != p.id => {
                return Err(invalid(format!(
                    "device {} belongs to patient {}, not {}",
                    d.id, existing.patient_id, p.id
                )))
            }
            Some(_) => {
                crate::store::devices::set_device_secret(tx, &d.id, &hashes)?;
                crate::store::devices::set_device_enabled(tx, &d.id, true)?;
            }
            None => {
                add_device(tx, Some(&d.id), &p.id, d.kind, d.interval_s(), &hashes)?;
            }
        }
        out.push((d.id.clone(), secret, p.id.clone()));
    }
    Ok(out)
}

/// The shortest dashboard password (issue #15; NIST SP 800-63B-4 asks for 15 for a password
/// used alone and allows 8 with a second factor; Vigil has no second factor yet, and 12 is the
/// length a nurse can still type on a phone).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Words people build passwords from, letters only, lower case: what is left of a password
/// once digits and symbols are removed must not be one of them (or one repeated). The most
/// common English ones of published breach lists, keyboard rows, and Vietnamese and
/// health-care ones of this deployment (NIST SP 800-63B §3.1.1.2: "context-specific words").
const COMMON_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "qwerty",
    "qwertyuiop",
    "qwertyuiopasdfghjkl",
    "asdf",
    "asdfgh",
    "asdfghjkl",
    "zxcvbnm",
    "qazwsx",
    "qazwsxedc",
    "qweasd",
    "qweasdzxc",
    "abc",
    "abcd",
    "abcde",
    "abcdef",
    "abcdefg",
    "abcdefgh",
    "abcdefghijkl",
    "iloveyou",
    "iloveu",
    "admin",
    "administrator",
    "welcome",
    "letmein",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "master",
    "shadow",
    "superman",
    "batman",
    "trustno",
    "changeme",
    "secret",
    "login",
    "user",
    "guest",
    "root",
    "test",
    "hello",
    "default",
    "computer",
    "internet",
    "access",
    "starwars",
    "whatever",
    "freedom",
    "matkhau",
    "vietnam",
    "saigon",
    "hanoi",
    "anhyeuem",
    "emyeuanh",
    "yeuem",
    "bacsi",
    "benhvien",
    "yte",
    "hospital",
    "doctor",
    "nurse",
    "vigil",
];

/// Letters a password's digits and symbols often stand for ("p@ssw0rd").
fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

/// Whether `s` is a run of one short pattern repeated, or of consecutive characters either way
/// ("aaaa", "121212", "123456789012", "abcdef", "987654").
fn patterned(s: &[char]) -> bool {
    if s.len() < 2 {
        return true;
    }
    let repeats = (1..=4).any(|p| p < s.len() && s.iter().skip(p).zip(s).all(|(a, b)| a == b));
    let step = |d: i64| {
        s.windows(2).all(|w| {
            let (a, b) = (w[0] as i64, w[1] as i64);
            b - a == d
                || (w[0] == '9' && w[1] == '0' && d == 1)
                || (w[0] == '0' && w[1] == '9' && d == -1)
        })
    };
    repeats || step(1) || step(-1)
}

/// Dashboard passwords, for everyone (admins included): at least [`MIN_PASSWORD_CHARS`]
/// characters; not a pattern ("123456789012"); not a common word dressed up with digits and
/// symbols ("Password1234!", "p@ssw0rd2024"); with letters (not a phone number or a date); not
/// containing the user's name. The error says which, never the password.
pub fn check_password(password: &str, user: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let lower = password.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    if patterned(&chars) {
        return Err(invalid(
            "the password is a pattern (repeated or consecutive characters)".into(),
        ));
    }
    // What is left once digits and symbols go ("Password1234!" → "password"), and the same
    // with leet spellings read back between the first and last letter ("p@ssw0rd2024" →
    // "password").
    let plain: String = chars.iter().filter(|c| c.is_alphabetic()).collect();
    if plain.is_empty() {
        // Decision (issue #15): digits alone are what people type as dates and phone numbers,
        // which are guessed first.
        return Err(invalid(
            "the password needs letters, not only digits and symbols".into(),
        ));
    }
    let inner = lower
        .trim_matches(|c: char| !c.is_alphabetic() && !"@$!0134".contains(c))
        .trim_end_matches(|c: char| !c.is_alphabetic());
    let leet: String = inner
        .chars()
        .map(unleet)
        .filter(|c| c.is_alphabetic())
        .collect();
    let is_common = |core: &str| {
        let letters: Vec<char> = core.chars().collect();
        core.is_empty()
            || patterned(&letters)
            || COMMON_WORDS.iter().any(|w| {
                core.len().is_multiple_of(w.len()) && core == w.repeat(core.len() / w.len())
            })
    };
    let common = is_common(&plain) || is_common(&leet);
    if common {
        return Err(invalid(
            "the password is too common: a common word or pattern with digits or symbols".into(),
        ));
    }
    let name = user.trim().to_lowercase();
    if name.chars().count() >= 3 && lower.contains(&name) {
        return Err(invalid(
            "the password must not contain the user name".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
