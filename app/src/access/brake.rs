//! The brake on guessing: per client address (an IPv6 client by its /64, which
//! one host usually has whole), a few wrong passwords are free (typos), then each
//! one more makes that address wait twice as long before its next attempt
//! (1 s, 2 s, 4 s, ... up to 15 min): an attempt before then is answered 429
//! with `Retry-After`, its password not even looked at. Other addresses are not
//! touched, so an attacker cannot lock the owner out from elsewhere; a right
//! password clears the address; an hour without a wrong one forgets it. The
//! table is bounded ([`CAPACITY`]): when full, the address that failed longest
//! ago is forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Wrong passwords from one address before the brake starts.
pub const FREE_FAILURES: u32 = 5;

/// The first wait, doubled with every wrong password after that.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// An address is forgotten this long after its last wrong password.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The most addresses tracked at once.
pub const CAPACITY: usize = 8192;

/// Which clients count as one: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 too).
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl ClientKey {
    /// The key of `address`.
    pub fn of(address: IpAddr) -> ClientKey {
        match address.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    not_before: Instant,
}

/// Wrong-password counts per client address.
#[derive(Debug)]
pub struct Brake {
    entries: HashMap<ClientKey, Entry>,
    capacity: usize,
}

impl Brake {
    /// An empty brake tracking at most `capacity` addresses.
    pub fn new(capacity: usize) -> Brake {
        Brake {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// `Ok` when `client` may try a password at `now`, else how long it must wait.
    pub fn allow(&mut self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = ClientKey::of(client);
        let Some(entry) = self.entries.get(&key) else {
            return Ok(());
        };
        if now.saturating_duration_since(entry.last_failure) >= FORGET_AFTER {
            self.entries.remove(&key);
            return Ok(());
        }
        if now < entry.not_before {
            // Whole seconds, rounded up (Retry-After's unit).
            let wait = entry.not_before - now;
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Duration::from_secs(seconds.max(1)));
        }
        Ok(())
    }

    /// Counts a wrong password from `client` at `now`.
    pub fn failed(&mut self, client: IpAddr, now: Instant) {
        let key = ClientKey::of(client);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now,
            not_before: now,
        });
        if now.saturating_duration_since(entry.last_failure) >= FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        entry.not_before = now + wait_after(entry.failures);
    }

    /// A right password from `client`: its count is cleared.
    pub fn succeeded(&mut self, client: IpAddr) {
        self.entries.remove(&ClientKey::of(client));
    }

    /// How many addresses are tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_failure) < FORGET_AFTER);
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
    }

    /// The table is within its capacity and every entry has a failure.
    pub fn check_invariants(&self) {
        assert!(self.entries.len() <= self.capacity, "over capacity");
        for entry in self.entries.values() {
            assert!(entry.failures > 0, "an entry without a failure");
            assert!(entry.not_before >= entry.last_failure);
            assert!(entry.not_before - entry.last_failure <= MAX_WAIT);
        }
    }
}

/// The wait after the `failures`th wrong password in a row.
pub fn wait_after(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(20);
    (FIRST_WAIT * (1u32 << doublings)).min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn typos_are_free_then_the_wait_doubles_up_to_the_cap() {
        let mut brake = Brake::new(16);
        let start = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(brake.allow(v4(1), start), Ok(()));
            brake.failed(v4(1), start);
        }
        assert_eq!(brake.allow(v4(1), start), Ok(()));
        brake.failed(v4(1), start);
        assert_eq!(brake.allow(v4(1), start), Err(Duration::from_secs(1)));
        let later = start + Duration::from_secs(1);
        assert_eq!(brake.allow(v4(1), later), Ok(()));
        brake.failed(v4(1), later);
        assert_eq!(brake.allow(v4(1), later), Err(Duration::from_secs(2)));
        assert_eq!(wait_after(FREE_FAILURES + 3), Duration::from_secs(4));
        assert_eq!(wait_after(1000), MAX_WAIT);
        // Another address is untouched; a right password clears this one.
        assert_eq!(brake.allow(v4(2), later), Ok(()));
        brake.succeeded(v4(1));
        assert_eq!(brake.allow(v4(1), later), Ok(()));
        brake.check_invariants();
    }

    #[test]
    fn an_hour_without_a_wrong_password_forgets_the_address() {
        let mut brake = Brake::new(16);
        let start = Instant::now();
        for _ in 0..20 {
            brake.failed(v4(1), start);
        }
        assert!(brake.allow(v4(1), start + Duration::from_secs(60)).is_err());
        assert_eq!(brake.allow(v4(1), start + FORGET_AFTER), Ok(()));
        assert!(brake.is_empty());
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let mut brake = Brake::new(16);
        let now = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse::<Ipv6Addr>().unwrap().into();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse::<Ipv6Addr>().unwrap().into();
        let c: IpAddr = "2001:db8:1:3::1".parse::<Ipv6Addr>().unwrap().into();
        for _ in 0..=FREE_FAILURES {
            brake.failed(a, now);
        }
        assert!(brake.allow(b, now).is_err(), "same /64");
        assert_eq!(brake.allow(c, now), Ok(()), "another /64");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse::<Ipv6Addr>().unwrap().into();
        for _ in 0..=FREE_FAILURES {
            brake.failed(mapped, now);
        }
        assert!(brake.allow(v4(1), now).is_err());
    }

    proptest! {
        #[test]
        fn the_table_stays_bounded(steps in proptest::collection::vec((0u8..40, 0u64..4000, any::<bool>()), 1..300)) {
            let mut brake = Brake::new(8);
            let start = Instant::now();
            let mut at = start;
            for (address, advance, right) in steps {
                at += Duration::from_secs(advance);
                if brake.allow(v4(address), at).is_ok() {
                    if right { brake.succeeded(v4(address)) } else { brake.failed(v4(address), at) }
                }
                brake.check_invariants();
            }
        }
    }
}
