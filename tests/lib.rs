//! End-to-end tests of the real `vigil` binary live in `e2e/`; this library is empty so that
//! the crate builds on its own. Run them with `scripts/test.sh` (which builds the binary first).
