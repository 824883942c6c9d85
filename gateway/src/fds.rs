//! File descriptors (issue #15, finding 5): one budget, shared so that no listener can starve
//! the others. With a low limit, 200 half-open HTTP connections used to leave MQTT accepts,
//! the escalation loop and retention without descriptors.
//!
//! At start the soft `RLIMIT_NOFILE` is raised to the hard limit (as Go's runtime does); of
//! that, [`RESERVED`] stay for the store (the writer, the checkpointer, readers, WAL and SHM
//! files), outgoing SMTP and InfluxDB connections and the backup; HTTP gets at most a quarter
//! of the rest and the MQTT listener the remainder.

/// Descriptors kept for everything that is not a client connection.
pub const RESERVED: u64 = 128;

/// Raises the soft descriptor limit to the hard one; returns the limit in force.
pub fn raise_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid, zeroed out-parameter of the right type.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
        let cur = lim.rlim_cur as u64;
        cur
    }
}

/// (HTTP connections, MQTT connections) for a descriptor limit and the configured HTTP cap.
pub fn budget(limit: u64, http_configured: u32) -> (usize, usize) {
    let usable = limit.saturating_sub(RESERVED).max(8);
    let http = u64::from(http_configured).min(usable / 4).max(1);
    let mqtt = (usable - http).max(1);
    (
        usize::try_from(http).unwrap_or(usize::MAX),
        usize::try_from(mqtt).unwrap_or(usize::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_share_the_budget_and_leave_the_reserve() {
        assert_eq!(budget(256, 512), (32, 96));
        assert_eq!(budget(1_048_576, 512), (512, 1_048_576 - 128 - 512));
        let (http, mqtt) = budget(1024, 512);
        assert!(http as u64 + mqtt as u64 + RESERVED <= 1024);
        assert!(budget(10, 512).0 >= 1, "never zero");
    }
}
