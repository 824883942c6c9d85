//! Fuzzes the payload decoder (issue #3): no input may panic it.
//! Run: `cargo install cargo-fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run decode` (in `fuzz/`).
#![no_main]

// The decoder is one self-contained file of the gateway; including it keeps this target free
// of the gateway's broker, HTTP and database dependencies.
#[allow(dead_code)]
#[path = "../../gateway/src/decode.rs"]
mod decode;
#[allow(dead_code)]
#[path = "../../gateway/src/senml.rs"]
mod senml;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for ch in [
        decode::Channel::Readings,
        decode::Channel::Events,
        decode::Channel::Status,
    ] {
        let _ = decode::decode(ch, data, &decode::Limits::default(), chrono::Utc::now());
    }
});
