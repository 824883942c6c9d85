//! The command line (issue #2, "The CLI contract"). Names here are public: scripts and later
//! checks rely on them.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: remote patient monitoring gateway (MQTT → store → alerts → dashboard)",
    long_about = "Vigil receives readings from home monitoring devices over MQTT, stores them, \
raises clinical alerts, e-mails families and serves a clinician dashboard.\n\n\
Start with `vigil demo` to see everything running with simulated patients."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run everything embedded with demo patients and simulated devices.
    Demo(ServerArgs),
    /// Run the gateway (embedded broker, or an external one with `[mqtt] broker_url`).
    Run(ServerArgs),
    /// Manage facilities (commune health stations, district centres, care homes).
    #[command(subcommand)]
    Facility(FacilityCmd),
    /// Manage patients.
    #[command(subcommand)]
    Patient(PatientCmd),
    /// Manage people notified about a patient.
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Manage devices and their MQTT credentials.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Manage API bearer tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage dashboard users.
    #[command(subcommand)]
    User(UserCmd),
    /// Configuration for an external Mosquitto broker.
    #[command(subcommand)]
    Mosquitto(MosquittoCmd),
    /// Alert rule files (docs/rules.md).
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Per-patient threshold orders (docs/rules.md, "Per-patient thresholds").
    #[command(subcommand)]
    Threshold(ThresholdCmd),
    /// FHIR R4 exports (docs/fhir.md).
    #[command(subcommand)]
    Fhir(FhirCmd),
    /// Copy the database to FILE while the gateway runs (a consistent snapshot; see
    /// docs/storage.md for restoring).
    Backup {
        /// The copy to write (replaced if it exists; written beside it first, then renamed).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Data directory (database, outbox). Overrides `data_dir`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Dashboard and API address. Overrides `[http] addr`.
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
    /// Embedded MQTT broker address. Overrides `[mqtt] addr`.
    #[arg(long)]
    pub mqtt_addr: Option<SocketAddr>,
}

/// Options every admin subcommand takes.
#[derive(Args, Clone)]
pub struct AdminArgs {
    /// Configuration file, read for `data_dir`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Data directory. Overrides the configuration.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print one JSON object on stdout and nothing else there.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum FacilityCmd {
    /// Create a facility; patients and users are assigned to facilities.
    Add {
        /// Id (letters, digits, '-', '_', '.').
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// The station's phone, which family e-mails and the link page tell families to call.
        #[arg(long)]
        phone: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List facilities with their number of patients.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum PatientCmd {
    /// Create a patient.
    Add {
        #[arg(long)]
        name: String,
        /// Id to use (letters, digits, '-', '_', '.'); generated when absent.
        #[arg(long)]
        id: Option<String>,
        /// The facility the patient belongs to.
        #[arg(long, default_value = vigil_domain::DEFAULT_FACILITY)]
        facility: String,
        /// Where the patient lives or is cared for (a ward, village or hamlet): the ward view
        /// groups and filters by it.
        #[arg(long)]
        area: Option<String>,
        /// A label to filter the ward view by (repeatable), e.g. `--tag copd --tag lives-alone`.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List patients.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum ContactCmd {
    /// Add a person to notify about a patient.
    Add {
        #[arg(long)]
        patient: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Language of the e-mails.
        #[arg(long, default_value = "vi", value_parser = ["vi", "en"])]
        lang: String,
        /// Red alerts e-mail both roles; `family` e-mails carry an "I'm handling it" link,
        /// `clinician` e-mails a link to the dashboard.
        #[arg(long, default_value = "family", value_parser = ["family", "clinician"])]
        role: String,
        /// `primary` contacts hear of a red alert at once, `secondary` ones when nobody has
        /// acknowledged it after `notify.escalate_after_seconds`.
        #[arg(long, default_value = "primary", value_parser = ["primary", "secondary"])]
        tier: String,
        /// The least severe alert e-mailed to them: `critical` (red only; the family default),
        /// `warning` (the clinician default) or `info`. Below critical, e-mails are grouped
        /// into digests and wait for the end of quiet hours.
        #[arg(long, value_parser = ["critical", "warning", "info"])]
        notify: Option<String>,
        /// Their quiet hours in their local time, `HH:MM-HH:MM` or `none`; default
        /// `notify.quiet_hours`. Red alerts ignore quiet hours.
        #[arg(long)]
        quiet_hours: Option<String>,
        /// Their IANA time zone (e.g. `Europe/Berlin`); default `notify.timezone`.
        #[arg(long)]
        timezone: Option<String>,
        /// Their phone number, shown to the others told about an alert and on the ward.
        #[arg(long)]
        phone: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List a patient's contacts (or everyone's), with their ids.
    List {
        #[arg(long)]
        patient: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Change a contact: only the options given change (checked like `contact add`).
    Edit {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, value_parser = ["vi", "en"])]
        lang: Option<String>,
        #[arg(long, value_parser = ["family", "clinician"])]
        role: Option<String>,
        #[arg(long, value_parser = ["primary", "secondary"])]
        tier: Option<String>,
        /// `critical`, `warning`, `info`, or `default` (the role's).
        #[arg(long, value_parser = ["critical", "warning", "info", "default"])]
        notify: Option<String>,
        /// `HH:MM-HH:MM`, `none`, or `default` (`notify.quiet_hours`).
        #[arg(long)]
        quiet_hours: Option<String>,
        /// An IANA time zone, or `default` (`notify.timezone`).
        #[arg(long)]
        timezone: Option<String>,
        /// A phone number, or `none` to remove it.
        #[arg(long)]
        phone: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a contact: no more e-mails or "I'm handling it" links; e-mails waiting to them
    /// are not sent. What was sent stays in the history.
    Remove {
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum DeviceCmd {
    /// Register a device; prints its MQTT password once (only a hash is kept).
    Add {
        #[arg(long)]
        patient: String,
        /// pulse_oximeter, bp_monitor, thermometer, glucose_meter, scale, wearable,
        /// fall_detector or hub.
        #[arg(long)]
        kind: String,
        /// Id to use (the MQTT user name); generated when absent.
        #[arg(long)]
        id: Option<String>,
        /// How often the device is normally heard from (`30s`, `5m`, `12h`); default by kind.
        /// Missing-data rules flag it after `silent_intervals` of these (docs/rules.md).
        #[arg(long)]
        interval: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Register many devices at once, each for a patient of its own (load tests, issue #7):
    /// patients `{prefix}-p{i}` and devices `{prefix}-{i}` for i in 0..count, in one
    /// transaction; prints one JSON line per device (`id`, `password`, `patient`) — the
    /// passwords once, only hashes are kept. Existing ids are an error.
    /// With `--scenario FILE`: the simulator scenario's patients and devices instead (existing
    /// ones are kept and their devices get new secrets), for `vigil-sim scenario`.
    Provision {
        #[arg(
            long,
            required_unless_present = "scenario",
            conflicts_with = "scenario"
        )]
        count: Option<u32>,
        /// A `vigil-sim` scenario file (docs/scenarios.md).
        #[arg(long)]
        scenario: Option<std::path::PathBuf>,
        #[arg(long, default_value = "load")]
        prefix: String,
        #[arg(long, default_value = "hub")]
        kind: String,
        #[arg(long, default_value = vigil_domain::DEFAULT_FACILITY)]
        facility: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List devices.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Disable a device: it can no longer connect, and its messages are rejected.
    Disable {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Enable a disabled device again.
    Enable {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Give a device a new secret; prints it once. The old one stops working.
    RotateSecret {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a device for good: it can no longer connect and leaves the lists; its readings
    /// stay, so its id is not reused.
    Remove {
        #[arg(long)]
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum ThresholdCmd {
    /// Order a change to one threshold rule for one patient: who, why and from when are kept
    /// for good. The rule file (`[rules] file`, or the built-in one) checks it.
    Set {
        #[arg(long)]
        patient: String,
        /// The rule's id (`vigil rules defaults` lists them), e.g. `spo2_low`.
        #[arg(long)]
        rule: String,
        /// New threshold, compared as the rule compares (`spo2_low`: below VALUE).
        #[arg(long, allow_negative_numbers = true)]
        value: Option<f64>,
        /// New clear value (hysteresis), compared as the rule's clear condition.
        #[arg(long, allow_negative_numbers = true)]
        clear: Option<f64>,
        /// The rule does not apply to this patient.
        #[arg(long, conflicts_with_all = ["value", "clear", "default"])]
        disable: bool,
        /// Back to the rule file's values.
        #[arg(long, conflicts_with_all = ["value", "clear"])]
        default: bool,
        /// Why (required): the clinical reason for the change.
        #[arg(long)]
        reason: String,
        /// Who ordered it (required), e.g. the clinician's dashboard user name.
        #[arg(long)]
        by: String,
        /// When it begins (RFC 3339); now when absent.
        #[arg(long)]
        effective_from: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// A patient's threshold rules as they apply now, and every order given.
    List {
        #[arg(long)]
        patient: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum RulesCmd {
    /// Check a rule file without starting anything: prints its rules, or the first mistake
    /// (with the rule's id) and exits 1.
    Check {
        /// The rule file (TOML).
        file: PathBuf,
    },
    /// Print the built-in rule file (a starting point for your own).
    Defaults,
}

#[derive(Subcommand)]
pub enum MosquittoCmd {
    /// Write a Mosquitto `password_file` and `acl_file` for the registered devices (and the
    /// gateway's own `[mqtt] username`/`password`, when set).
    Export {
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create an API bearer token; prints it once. Without --facility it sees every facility
    /// and may use admin routes (an operator's token); with it, one facility as a clinician.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        facility: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List API tokens (never the tokens themselves): id, name, facility, last use, revoked.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke an API token: it stops working at once, and live streams opened with it end
    /// within seconds.
    Revoke {
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a dashboard user; the password is prompted for, or read from stdin.
    Add {
        #[arg(long)]
        name: String,
        /// Administrator: sees every facility and may use the admin routes.
        #[arg(long)]
        admin: bool,
        /// A facility the (clinician) user sees; repeat for several. Default: `default`.
        #[arg(long = "facility")]
        facilities: Vec<String>,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// List dashboard users.
    List {
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Disable a user: they cannot sign in, their sessions end and their live streams close
    /// within seconds.
    Disable {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: AdminArgs,
    },
    /// Enable a disabled user again.
    Enable {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: AdminArgs,
    },
}

#[derive(Subcommand)]
pub enum FhirCmd {
    /// Write a patient's readings as a FHIR R4 `transaction` Bundle of conditional updates
    /// (their Patient, Devices and Observations): sending it again changes nothing.
    Export {
        /// The patient's id.
        #[arg(long)]
        patient: String,
        /// Readings measured at or after this time (RFC 3339, or a day `YYYY-MM-DD` in UTC).
        #[arg(long)]
        since: Option<String>,
        /// Readings measured before this time (as `--since`).
        #[arg(long)]
        until: Option<String>,
        /// The Bundle to write (replaced if it exists; written beside it first, then renamed).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
}
