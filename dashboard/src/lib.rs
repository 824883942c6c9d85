//! Vigil's dashboard: the clinician web app and the JSON API it is built on.
//!
//! - [`backend`]: the [`Backend`] trait — everything the web layer needs from the rest of
//!   Vigil (queries, alert actions, logins, metrics). The gateway implements it on its store;
//!   this crate never touches a database.
//! - [`http`]: the axum app — `AppState`, the root router, one module per area (auth,
//!   patients, alerts, admin, live stream, pages) and one `ApiError`.
//!
//! Deliberately not here: storage, MQTT, alert rules.

pub mod backend;
pub mod http;

pub use backend::{
    ActionOptions, AlertAction, Auth, Backend, BackendError, Commands, ContactEditRequest,
    DeviceCredentials, DeviceEditRequest, EpisodeAction, EpisodeFilter, NewContactRequest,
    NewDeviceRequest, NewPatientRequest, NewUserRequest, Operations, PatientEditRequest, Queries,
    ThresholdOrderRequest,
};
pub use http::{router, AppState};
