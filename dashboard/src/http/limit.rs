//! Login rate limiting (issue #6): after [`MAX_FAILURES`] failed sign-ins for one user name
//! within [`WINDOW`], further attempts for that name are refused until the oldest failure ages
//! out — online password guessing gets five tries per quarter hour. In memory: a restart
//! forgets, which only helps someone who can restart the server anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// User names tracked at most; beyond it the stalest are forgotten (bounded memory).
const MAX_NAMES: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn key(user: &str) -> String {
    user.trim().to_lowercase()
}

impl LoginLimiter {
    /// How long `user` must wait, if they must.
    pub fn blocked(&self, user: &str) -> Option<Duration> {
        self.blocked_at(user, Instant::now())
    }

    fn blocked_at(&self, user: &str, now: Instant) -> Option<Duration> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let q = f.get_mut(&key(user))?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() < MAX_FAILURES {
            return None;
        }
        q.front()
            .map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
    }

    pub fn failed(&self, user: &str) {
        self.failed_at(user, Instant::now())
    }

    fn failed_at(&self, user: &str, now: Instant) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() >= MAX_NAMES && !f.contains_key(&key(user)) {
            f.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            if f.len() >= MAX_NAMES {
                f.clear();
            }
        }
        let q = f.entry(key(user)).or_default();
        q.push_back(now);
        while q.len() > MAX_FAILURES {
            q.pop_front();
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(user));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_for_the_rest_of_the_window() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(l.blocked_at("Lan", t0), None, "attempt {i}");
            l.failed_at("lan", t0);
        }
        let wait = l.blocked_at("LAN", t0 + Duration::from_secs(60)).unwrap();
        assert_eq!(wait, WINDOW - Duration::from_secs(60));
        assert_eq!(l.blocked_at("minh", t0), None, "per user name");
        assert_eq!(
            l.blocked_at("lan", t0 + WINDOW),
            None,
            "the failures age out"
        );
        l.failed_at("minh", t0);
        l.succeeded("minh");
        assert_eq!(l.blocked_at("minh", t0), None);
    }
}
