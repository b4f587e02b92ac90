//! The device's own network addresses, as the kernel lists them (getifaddrs): the
//! request guard answers to them, and WebRTC offers them to browsers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every interface's addresses (IPv4-mapped IPv6 as IPv4); empty, with a warning
/// in the log, when the kernel cannot list them.
pub fn addresses() -> Vec<IpAddr> {
    match interface_addresses() {
        Ok(addresses) => addresses,
        Err(error) => {
            tracing::warn!(%error, "cannot list the network interfaces' addresses");
            Vec::new()
        }
    }
}

/// The IPv4 and IPv6 addresses of every network interface.
pub fn interface_addresses() -> std::io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list it allocated into `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed.
        let ifaddr = unsafe { &*entry };
        if !ifaddr.ifa_addr.is_null() {
            // SAFETY: `ifa_addr` points at a sockaddr whose family says its type.
            let family = i32::from(unsafe { (*ifaddr.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifaddr.ifa_addr as *const libc::sockaddr_in) };
                addresses.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let sin6 = unsafe { &*(ifaddr.ifa_addr as *const libc::sockaddr_in6) };
                addresses.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)).to_canonical());
            }
        }
        entry = ifaddr.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and no reference into it outlives this.
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_listed() {
        let addresses = super::interface_addresses().unwrap();
        assert!(addresses.iter().any(|a| a.is_loopback()), "{addresses:?}");
    }
}
