//! `vigil`: the gateway binary. Everything is in the library (`src/lib.rs`, its layout
//! comment maps the modules).

use std::process::ExitCode;

// The ingest path allocates many small, short-lived buffers (packets, decoded readings);
// glibc's allocator took ≈ 14 % of the gateway's CPU while draining a backlog
// (docs/benchmarks.md). mimalloc's thread-local free lists make those cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    vigil_gateway::main()
}
