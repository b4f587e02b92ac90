//! Which session a datagram on the shared UDP port belongs to.
//!
//! Every WebRTC viewer's traffic comes to one UDP port. A browser's first datagrams
//! are STUN binding requests (ICE connectivity checks) whose USERNAME attribute
//! starts with the ICE ufrag the server gave that session in its answer; the source
//! address of such a request is then learned for the session, and every later
//! datagram from that address (DTLS, SRTP, SRTCP, more STUN) goes to it. str0m
//! checks the request's MESSAGE-INTEGRITY (the ICE password) itself; a datagram no
//! session owns is dropped and counted.
//!
//! Invariants (checked by [`Routes::check_invariants`]): an address belongs to at
//! most one session; a session has at most [`MAX_ADDRESSES_PER_SESSION`] addresses.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Addresses learned per session at most (a browser checks one pair per local
/// interface address and family; the oldest is forgotten beyond this).
pub const MAX_ADDRESSES_PER_SESSION: usize = 8;

/// STUN's magic cookie (RFC 8489 5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
/// STUN Binding request.
const BINDING_REQUEST: u16 = 0x0001;
/// STUN USERNAME attribute.
const USERNAME: u16 = 0x0006;

/// The local (server's) ICE ufrag named by a STUN binding request's USERNAME
/// (`"<server ufrag>:<browser ufrag>"`, RFC 8445 7.2.2), or `None` for anything
/// else.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < 20 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    if u16::from_be_bytes([datagram[0], datagram[1]]) != BINDING_REQUEST {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let mut attributes = datagram.get(20..20 + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        let padded = (4 + len).div_ceil(4) * 4;
        attributes = attributes.get(padded..)?;
    }
    None
}

/// The routing table of the shared UDP port.
#[derive(Debug, Default)]
pub struct Routes<Id> {
    by_ufrag: HashMap<String, Id>,
    by_address: HashMap<SocketAddr, Id>,
    /// Each session's learned addresses, oldest first.
    addresses: HashMap<Id, Vec<SocketAddr>>,
}

impl<Id: Copy + Eq + std::hash::Hash + std::fmt::Debug> Routes<Id> {
    /// An empty table.
    pub fn new() -> Self {
        Routes {
            by_ufrag: HashMap::new(),
            by_address: HashMap::new(),
            addresses: HashMap::new(),
        }
    }

    /// A new session, found by its ICE ufrag until it has an address.
    pub fn add(&mut self, id: Id, ufrag: &str) {
        self.by_ufrag.insert(ufrag.to_string(), id);
        self.addresses.entry(id).or_default();
    }

    /// Forgets a session and its addresses.
    pub fn remove(&mut self, id: Id) {
        self.by_ufrag.retain(|_, owner| *owner != id);
        for address in self.addresses.remove(&id).unwrap_or_default() {
            self.by_address.remove(&address);
        }
    }

    /// The session `datagram` from `source` belongs to, learning `source` when the
    /// datagram is a binding request naming a session's ufrag.
    pub fn route(&mut self, source: SocketAddr, datagram: &[u8]) -> Option<Id> {
        if let Some(id) = stun_local_ufrag(datagram)
            .and_then(|u| self.by_ufrag.get(u))
            .copied()
        {
            if self.by_address.get(&source) != Some(&id) {
                self.learn(id, source);
            }
            return Some(id);
        }
        self.by_address.get(&source).copied()
    }

    fn learn(&mut self, id: Id, source: SocketAddr) {
        if let Some(previous) = self.by_address.insert(source, id) {
            // The address was another (ended or restarted) session's.
            if let Some(list) = self.addresses.get_mut(&previous) {
                list.retain(|a| *a != source);
            }
        }
        let list = self.addresses.entry(id).or_default();
        list.push(source);
        if list.len() > MAX_ADDRESSES_PER_SESSION {
            let oldest = list.remove(0);
            self.by_address.remove(&oldest);
        }
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// True when no session is in the table.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// Debug self-check; panics when an invariant is broken.
    pub fn check_invariants(&self) {
        for (address, id) in &self.by_address {
            let list = self
                .addresses
                .get(id)
                .expect("an address's session is known");
            assert!(
                list.contains(address),
                "{address} is routed to {id:?} but not listed"
            );
        }
        for (id, list) in &self.addresses {
            assert!(list.len() <= MAX_ADDRESSES_PER_SESSION);
            for address in list {
                assert_eq!(self.by_address.get(address), Some(id));
            }
        }
        for id in self.by_ufrag.values() {
            assert!(self.addresses.contains_key(id));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A STUN binding request with this USERNAME (and a dummy transaction id).
    pub(crate) fn binding_request(username: &str) -> Vec<u8> {
        let mut attribute = Vec::new();
        attribute.extend_from_slice(&USERNAME.to_be_bytes());
        attribute.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attribute.extend_from_slice(username.as_bytes());
        while attribute.len() % 4 != 0 {
            attribute.push(0);
        }
        // A PRIORITY attribute after it, to check the walk.
        attribute.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        let mut message = Vec::new();
        message.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        message.extend_from_slice(&(attribute.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&attribute);
        message
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_ufrag_is_read_from_a_binding_request() {
        assert_eq!(stun_local_ufrag(&binding_request("srv1:brw")), Some("srv1"));
        assert_eq!(stun_local_ufrag(&binding_request("odd")), Some("odd"));
        let mut response = binding_request("srv1:brw");
        response[0] = 0x01; // 0x0101: a binding success response
        assert_eq!(stun_local_ufrag(&response), None);
        assert_eq!(stun_local_ufrag(&[0x80, 0x60, 0, 1]), None); // RTP
        let mut truncated = binding_request("srv1:brw");
        truncated.truncate(26);
        assert_eq!(stun_local_ufrag(&truncated), None);
    }

    #[test]
    fn a_session_is_found_by_ufrag_then_by_address() {
        let mut routes = Routes::new();
        routes.add(1u64, "aaaa");
        routes.add(2u64, "bbbb");
        let rtp = [0x80u8, 0x60, 0, 1];
        assert_eq!(routes.route(addr(5000), &rtp), None);
        assert_eq!(
            routes.route(addr(5000), &binding_request("bbbb:x")),
            Some(2)
        );
        assert_eq!(routes.route(addr(5000), &rtp), Some(2));
        assert_eq!(routes.route(addr(5001), &binding_request("zzzz:x")), None);
        routes.check_invariants();
        routes.remove(2);
        assert_eq!(routes.route(addr(5000), &rtp), None);
        assert_eq!(routes.route(addr(5000), &binding_request("bbbb:x")), None);
        routes.check_invariants();
    }

    #[test]
    fn an_address_moves_to_the_session_that_claims_it() {
        let mut routes = Routes::new();
        routes.add(1u64, "aaaa");
        routes.add(2u64, "bbbb");
        routes.route(addr(5000), &binding_request("aaaa:x"));
        routes.route(addr(5000), &binding_request("bbbb:x"));
        assert_eq!(routes.route(addr(5000), &[0x80, 0x60]), Some(2));
        routes.check_invariants();
        for port in 0..20 {
            routes.route(addr(6000 + port), &binding_request("aaaa:x"));
        }
        routes.check_invariants();
    }

    proptest! {
        #[test]
        fn any_datagram_is_routed_without_panicking(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            ops in proptest::collection::vec((0u8..4, 0u64..4, 0u16..6), 0..60),
        ) {
            let _ = stun_local_ufrag(&data);
            let mut routes = Routes::new();
            for (op, id, port) in ops {
                match op {
                    0 => routes.add(id, &format!("u{id}")),
                    1 => routes.remove(id),
                    2 => { routes.route(addr(port), &binding_request(&format!("u{id}:b"))); }
                    _ => { routes.route(addr(port), &data); }
                }
                routes.check_invariants();
            }
        }
    }
}
