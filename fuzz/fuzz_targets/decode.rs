//! Fuzzes the payload decoder (issue #3): no input may panic it.
//! Run: `cargo install cargo-fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run decode` (in `fuzz/`).
#![no_main]

use vigil_protocol::{Channel, Limits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for ch in Channel::ALL {
        let _ = vigil_protocol::decode(ch, data, &Limits::default(), chrono::Utc::now());
    }
});
