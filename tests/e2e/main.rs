//! End-to-end tests: one module per area (ripgrep `tests/tests.rs` style).
//! Each test starts the real `vigil` binary on free loopback ports with its own data directory.

mod pgserver;
mod util;

mod access;
mod admin_edit;
mod bad_input;
mod browser;
mod burden;
mod cli;
mod crash;
mod episodes;
mod external;
mod fhir;
mod hardening;
mod influx;
mod loadmode;
mod mosquitto_acl;
mod notify;
mod postgres;
mod rules;
mod scenarios;
mod simulated;
mod slice;
mod storage;
mod timeline;
mod ward_phone;
