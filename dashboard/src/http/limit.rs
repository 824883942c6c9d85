//! Sign-in protection (issue #15, finding 4; replaces issue #6's five-failures lockout, which
//! let anyone who knew a user name keep that clinician out for 15 minutes, and whose table
//! a flood of 10 000 names wiped).
//!
//! - [`LoginGate`]: password hashing is slow on purpose (argon2id, 19 MiB). At most
//!   [`HASHING`] sign-ins hash at a time, at most [`QUEUE`] wait for their turn — as futures,
//!   not threads — and the rest are answered 429 at once. API tokens and devices never wait
//!   behind sign-ins: those check a token hash or a device secret, not a password, and the
//!   gate keeps sign-ins to one of the machine's argon2 slots.
//! - [`LoginLimiter`]: a growing delay after failures (answered 429 with `Retry-After`, never
//!   a sleep that holds a connection), counted three ways:
//!   * per client address, any names: after 5 failures, 1 s doubling up to 15 min;
//!   * per (name, address): after 3, 1 s doubling up to 15 min;
//!   * per name, any address: after 10, 1 s doubling up to [`NAME_DELAY_CAP`] (30 s) — and not
//!     at all for an address this name signed in from in the last 30 days. So a stranger slows
//!     their own guessing, and can at worst make a clinician on a new device wait 30 s.
//!
//!   Failures are forgotten an hour after the last one. Each table holds at most
//!   [`MAX_ENTRIES`]; when full, the entries idle longest go first, so cycling names evicts
//!   other names' entries but never the cycling address's own. IPv6 addresses count per /64
//!   (one home or host gets a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Sign-ins hashing at once.
pub const HASHING: usize = 1;
/// Sign-ins waiting for their turn; beyond them, 429 at once.
pub const QUEUE: usize = 16;
/// Extra places in the queue for a name signing in from an address it signed in from before,
/// so a flood of strangers' guesses does not keep the ward's own computer out.
pub const TRUSTED_QUEUE: usize = 8;

/// At most [`HASHING`] sign-ins hash at once and [`QUEUE`] wait.
#[derive(Debug)]
pub struct LoginGate {
    slots: Semaphore,
    /// Waiting or hashing.
    inside: AtomicUsize,
}

impl Default for LoginGate {
    fn default() -> Self {
        LoginGate {
            slots: Semaphore::new(HASHING),
            inside: AtomicUsize::new(0),
        }
    }
}

/// A turn at hashing; the next one may go when it drops.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
    inside: &'a AtomicUsize,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.inside.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LoginGate {
    /// Waits for a turn, or `None` at once when [`HASHING`] + [`QUEUE`] are inside already
    /// ([`TRUSTED_QUEUE`] more for a `trusted` sign-in).
    pub async fn enter(&self, trusted: bool) -> Option<Turn<'_>> {
        let room = HASHING + QUEUE + if trusted { TRUSTED_QUEUE } else { 0 };
        if self.inside.fetch_add(1, Ordering::AcqRel) >= room {
            self.inside.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        // Counted before it waits, so a request that gives up while queued is released here.
        struct Leave<'a>(&'a AtomicUsize, bool);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
        let mut leave = Leave(&self.inside, true);
        let permit = self.slots.acquire().await.ok()?;
        leave.1 = false;
        Some(Turn {
            _permit: permit,
            inside: &self.inside,
        })
    }
}

/// Failures forgotten this long after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Longest delay per address and per (name, address).
pub const DELAY_CAP: Duration = Duration::from_secs(15 * 60);
/// Longest delay a name's failures from anywhere impose (on addresses it has not signed in
/// from): what a stranger can cost a clinician.
pub const NAME_DELAY_CAP: Duration = Duration::from_secs(30);
/// An address a name signed in from counts as that name's for this long.
pub const TRUST_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Entries per table.
pub const MAX_ENTRIES: usize = 50_000;

const FREE_PER_ADDR: u32 = 5;
const FREE_PER_PAIR: u32 = 3;
const FREE_PER_NAME: u32 = 10;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    next_allowed: Instant,
}

/// The delay after `failures` failures when `free` cost nothing: 1 s, doubling, capped.
fn delay(failures: u32, free: u32, cap: Duration) -> Duration {
    if failures < free {
        return Duration::ZERO;
    }
    let doublings = (failures - free).min(20);
    Duration::from_secs(1u64 << doublings).min(cap)
}

/// One table of failures by key, bounded.
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Entry>,
    free: u32,
    cap: Duration,
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    fn new(free: u32, cap: Duration) -> Self {
        Table {
            map: HashMap::new(),
            free,
            cap,
        }
    }

    fn wait(&self, k: &K, now: Instant) -> Duration {
        match self.map.get(k) {
            Some(e) if now.duration_since(e.last) < FORGET_AFTER => {
                e.next_allowed.saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    fn fail(&mut self, k: K, now: Instant) {
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&k) {
            self.map
                .retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
            if self.map.len() >= MAX_ENTRIES {
                // The entry idle longest goes: never the one failing right now.
                if let Some(old) = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&old);
                }
            }
        }
        let e = self.map.entry(k).or_insert(Entry {
            failures: 0,
            last: now,
            next_allowed: now,
        });
        if now.duration_since(e.last) >= FORGET_AFTER {
            e.failures = 0;
        }
        e.failures += 1;
        e.last = now;
        e.next_allowed = now + delay(e.failures, self.free, self.cap);
    }
}

/// IPv6 addresses count per /64; IPv4 per address.
fn addr_key(addr: Option<IpAddr>) -> IpAddr {
    match addr {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        Some(a) => a,
        // Not over TCP (in-process tests): one shared key.
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

fn name_key(user: &str) -> String {
    user.trim().to_lowercase()
}

#[derive(Debug)]
struct Tables {
    by_addr: Table<IpAddr>,
    by_pair: Table<(String, IpAddr)>,
    by_name: Table<String>,
    /// (name, address) → when that name last signed in from there.
    trusted: HashMap<(String, IpAddr), Instant>,
}

/// Growing delays after failed sign-ins (see the module docs).
#[derive(Debug)]
pub struct LoginLimiter {
    tables: Mutex<Tables>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            tables: Mutex::new(Tables {
                by_addr: Table::new(FREE_PER_ADDR, DELAY_CAP),
                by_pair: Table::new(FREE_PER_PAIR, DELAY_CAP),
                by_name: Table::new(FREE_PER_NAME, NAME_DELAY_CAP),
                trusted: HashMap::new(),
            }),
        }
    }
}

impl LoginLimiter {
    /// How long a sign-in as `user` from `addr` must wait, if it must.
    pub fn blocked(&self, user: &str, addr: Option<IpAddr>) -> Option<Duration> {
        self.blocked_at(user, addr, Instant::now())
    }

    fn blocked_at(&self, user: &str, addr: Option<IpAddr>, now: Instant) -> Option<Duration> {
        // A std Mutex: held for a few map look-ups, never across `.await`.
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let (name, addr) = (name_key(user), addr_key(addr));
        let pair = (name.clone(), addr);
        let trusted = t
            .trusted
            .get(&pair)
            .is_some_and(|at| now.duration_since(*at) < TRUST_FOR);
        let mut wait = t.by_addr.wait(&addr, now).max(t.by_pair.wait(&pair, now));
        if !trusted {
            wait = wait.max(t.by_name.wait(&name, now));
        }
        (!wait.is_zero()).then_some(wait)
    }

    /// Whether `user` signed in from `addr` in the last [`TRUST_FOR`].
    pub fn trusted(&self, user: &str, addr: Option<IpAddr>) -> bool {
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        t.trusted
            .get(&(name_key(user), addr_key(addr)))
            .is_some_and(|at| at.elapsed() < TRUST_FOR)
    }

    pub fn failed(&self, user: &str, addr: Option<IpAddr>) {
        self.failed_at(user, addr, Instant::now())
    }

    fn failed_at(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let (name, addr) = (name_key(user), addr_key(addr));
        t.by_addr.fail(addr, now);
        t.by_pair.fail((name.clone(), addr), now);
        t.by_name.fail(name, now);
    }

    pub fn succeeded(&self, user: &str, addr: Option<IpAddr>) {
        self.succeeded_at(user, addr, Instant::now())
    }

    fn succeeded_at(&self, user: &str, addr: Option<IpAddr>, now: Instant) {
        let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let pair = (name_key(user), addr_key(addr));
        t.by_pair.map.remove(&pair);
        if t.trusted.len() >= MAX_ENTRIES && !t.trusted.contains_key(&pair) {
            t.trusted
                .retain(|_, at| now.duration_since(*at) < TRUST_FOR);
            if t.trusted.len() >= MAX_ENTRIES {
                t.trusted.clear();
            }
        }
        t.trusted.insert(pair, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_attacker_slows_down_with_each_failure() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let mallory = ip("203.0.113.9");
        for i in 0..FREE_PER_PAIR {
            assert_eq!(l.blocked_at("lan", mallory, t0), None, "attempt {i}");
            l.failed_at("lan", mallory, t0);
        }
        // Three free, then 1 s, 2 s, 4 s… for that name from there.
        assert_eq!(
            l.blocked_at("lan", mallory, t0),
            Some(Duration::from_secs(1))
        );
        l.failed_at("lan", mallory, t0);
        assert_eq!(
            l.blocked_at("lan", mallory, t0),
            Some(Duration::from_secs(2))
        );
        for _ in 0..30 {
            l.failed_at("lan", mallory, t0);
        }
        assert_eq!(l.blocked_at("lan", mallory, t0), Some(DELAY_CAP));
        // Other names from that address wait too (per address)…
        assert_eq!(l.blocked_at("minh", mallory, t0), Some(DELAY_CAP));
        // …and everything is forgotten an hour after the last failure.
        assert_eq!(l.blocked_at("lan", mallory, t0 + FORGET_AFTER), None);
    }

    #[test]
    fn a_stranger_cannot_lock_a_clinician_out() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let ward_pc = ip("10.0.0.5");
        let stranger = ip("198.51.100.7");
        l.succeeded_at("bs.lan", ward_pc, t0);
        for _ in 0..1000 {
            l.failed_at("bs.lan", stranger, t0);
        }
        // Her usual computer: no wait at all.
        assert_eq!(l.blocked_at("bs.lan", ward_pc, t0), None);
        // A new phone: at most the name's cap.
        let phone = ip("10.0.0.77");
        assert_eq!(l.blocked_at("bs.lan", phone, t0), Some(NAME_DELAY_CAP));
        // The stranger waits the long delay.
        assert_eq!(l.blocked_at("bs.lan", stranger, t0), Some(DELAY_CAP));
    }

    #[test]
    fn cycling_names_does_not_reset_an_address() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        let mallory = ip("203.0.113.9");
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            l.failed_at(&format!("user{i}"), mallory, t0);
        }
        assert_eq!(l.blocked_at("anyone", mallory, t0), Some(DELAY_CAP));
        assert_eq!(l.blocked_at("anyone", ip("10.0.0.5"), t0), None);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..10 {
            l.failed_at("x", ip(&format!("2001:db8:1:2::{i:x}")), t0);
        }
        assert!(l.blocked_at("y", ip("2001:db8:1:2::ffff"), t0).is_some());
        assert_eq!(l.blocked_at("y", ip("2001:db8:1:3::1"), t0), None);
    }

    #[tokio::test]
    async fn the_gate_queues_a_few_and_refuses_the_rest_at_once() {
        let gate = LoginGate::default();
        let turn = gate.enter(false).await.expect("the first hashes at once");
        // QUEUE more are let in to wait (as futures); poll them once so they register.
        let mut waiting: Vec<_> = (0..QUEUE).map(|_| Box::pin(gate.enter(false))).collect();
        for w in &mut waiting {
            assert!(
                futures::poll!(w.as_mut()).is_pending(),
                "waits behind the first"
            );
        }
        assert!(
            gate.enter(false).await.is_none(),
            "beyond the queue: refused"
        );
        // A sign-in from a known address still gets a place.
        let mut known = Box::pin(gate.enter(true));
        assert!(futures::poll!(known.as_mut()).is_pending());
        drop(known);
        // A waiting request that gives up leaves room for one more.
        waiting.pop();
        let mut one_more = Box::pin(gate.enter(false));
        assert!(futures::poll!(one_more.as_mut()).is_pending());
        drop(turn);
        // The next in line gets its turn.
        assert!(futures::poll!(waiting[0].as_mut()).is_ready());
    }
}
