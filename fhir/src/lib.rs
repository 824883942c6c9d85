//! Vigil's data as FHIR R4 resources (issue #18): what a reading, a patient and a device are
//! in FHIR, and their ids. Pure: rows in, JSON out; the routes are `vigil-dashboard`'s
//! (`/fhir/r4`), the rows `vigil-store`'s. docs/fhir.md has the mapping table.
//!
//! - [`codes`]: metric → LOINC, UCUM, category and profile (FHIR R4 vital-signs profiles,
//!   clinical reference §3).
//! - [`ids`]: deterministic resource ids — the same reading is always the same Observation.
//! - [`resources`]: Patient, Device, Observation (blood pressure as one panel), the
//!   CapabilityStatement and Bundles.

pub mod codes;
pub mod ids;
pub mod resources;

/// The FHIR version served.
pub const FHIR_VERSION: &str = "4.0.1";

/// The media type of FHIR JSON (FHIR R4 http.html#mime-type).
pub const MEDIA_TYPE: &str = "application/fhir+json";
