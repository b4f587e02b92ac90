//! The WebRTC I/O shell: the one UDP socket, the task that reads it and hands
//! each datagram to its session ([`super::demux`]), and one task per session that
//! drives its [`Peer`] with datagrams, hub items and timers.
//!
//! The socket reports each datagram's local address (IP_PKTINFO /
//! IPV6_RECVPKTINFO), so that a device with several addresses tells str0m which
//! of its candidates the browser used.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};

use super::peer::{Datagram, Peer, PeerEvent, Poll};
use crate::hub::{Item, Viewer};

/// The kernel's buffers for the shared socket: a joining viewer's backlog goes
/// out at once, and many viewers share the socket.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// The largest datagram read (more than any path MTU).
const MAX_DATAGRAM: usize = 2048;

/// Datagrams queued for one session at most; more are dropped (its task is
/// behind, and RTP/RTCP recover from loss).
pub const INBOX_DATAGRAMS: usize = 256;

/// One received datagram.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it (IPv4 as IPv4, not IPv4-mapped).
    pub source: SocketAddr,
    /// The local address it arrived at.
    pub destination: SocketAddr,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// Binds the shared UDP socket on `ip`:`port` (0: any free port), with the local
/// address of each datagram reported.
pub fn bind(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if ip.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ip.is_ipv6() {
        // "::" takes IPv4 too, as the web server does.
        socket.set_only_v6(false)?;
    }
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let fd = socket.as_raw_fd();
    let on: libc::c_int = 1;
    let set = |level, name| {
        // SAFETY: setsockopt reads `on` (an int, with its size given) during the call.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    // IPv4 datagrams, also on a dual-stack socket.
    if set(libc::IPPROTO_IP, libc::IP_PKTINFO) != 0 && ip.is_ipv4() {
        return Err(io::Error::last_os_error());
    }
    if ip.is_ipv6() && set(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO) != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(&SocketAddr::new(ip, port).into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// Receives one datagram into `buf`: its length, source and local address.
pub async fn receive(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    socket
        .async_io(Interest::READABLE, || receive_now(socket.as_raw_fd(), buf))
        .await
}

fn receive_now(fd: i32, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    // SAFETY: zeroed sockaddr_storage and msghdr are valid (all-zero) values.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut control = [0u64; 16]; // 128 bytes, aligned for cmsghdr
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
    message.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `message` points at a live buffer of the given size.
    let n = unsafe { libc::recvmsg(fd, &mut message, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let source = socket_addr(&from).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a datagram from an unknown address family",
        )
    })?;
    let mut local = None;
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled in, within
    // `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&message);
        while !cmsg.is_null() {
            let header = &*cmsg;
            if header.cmsg_level == libc::IPPROTO_IP && header.cmsg_type == libc::IP_PKTINFO {
                let info = &*(libc::CMSG_DATA(cmsg) as *const libc::in_pktinfo);
                local = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            } else if header.cmsg_level == libc::IPPROTO_IPV6
                && header.cmsg_type == libc::IPV6_PKTINFO
            {
                let info = &*(libc::CMSG_DATA(cmsg) as *const libc::in6_pktinfo);
                local = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)).to_canonical());
            }
            cmsg = libc::CMSG_NXTHDR(&message, cmsg);
        }
    }
    Ok((n as usize, source, local))
}

fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let sin6 = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(IpAddr::V4(v4), port),
                None => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, sin6.sin6_scope_id)),
            })
        }
        _ => None,
    }
}

/// Sends `datagram`; an IPv4 destination on an IPv6 (dual-stack) socket goes as
/// its IPv4-mapped address.
async fn send(socket: &UdpSocket, ipv6_socket: bool, datagram: &Datagram) {
    let destination = match datagram.destination {
        SocketAddr::V4(v4) if ipv6_socket => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        other => other,
    };
    if let Err(error) = socket.send_to(&datagram.contents, destination).await {
        tracing::debug!(%error, %destination, "cannot send a datagram");
    }
}

/// Reads datagrams until the socket fails for good, handing each to `route`.
pub async fn read_loop(socket: Arc<UdpSocket>, mut route: impl FnMut(Inbound)) {
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match receive(&socket, &mut buf).await {
            Ok((n, source, local)) => {
                let local = local.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                route(Inbound {
                    source,
                    destination: SocketAddr::new(local, port),
                    data: buf[..n].to_vec(),
                });
            }
            // ICMP errors (a browser's port closed) show up as errors on the next
            // read: nothing to do about them.
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(error) => {
                tracing::error!(%error, "the WebRTC UDP socket failed; WebRTC viewers stop");
                return;
            }
        }
    }
}

/// Drives one session until it ends, is cancelled or the hub closes.
pub async fn run_session(
    mut peer: Peer,
    viewer: Viewer,
    mut inbox: mpsc::Receiver<Inbound>,
    cancel: Arc<Notify>,
    socket: Arc<UdpSocket>,
) -> String {
    let ipv6_socket = socket.local_addr().is_ok_and(|a| a.is_ipv6());
    let mut feeding = false;
    let mut items: Vec<Item> = Vec::new();
    loop {
        let deadline = match flush(&mut peer, &viewer, &socket, ipv6_socket, &mut feeding).await {
            Ok(deadline) => deadline,
            Err(reason) => return reason,
        };
        tokio::select! {
            biased;
            _ = cancel.notified() => {
                peer.close();
                let _ = flush(&mut peer, &viewer, &socket, ipv6_socket, &mut feeding).await;
                return "ended by the client (DELETE) or the server".into();
            }
            inbound = inbox.recv() => match inbound {
                Some(inbound) => peer.receive(Instant::now(), inbound.source, inbound.destination, &inbound.data),
                None => return "the WebRTC socket closed".into(),
            },
            more = viewer.recv(&mut items, 8), if feeding => {
                if !more {
                    peer.close();
                    let _ = flush(&mut peer, &viewer, &socket, ipv6_socket, &mut feeding).await;
                    return "the server is shutting down".into();
                }
                for item in items.drain(..) {
                    if let Item::Frame(frame) = &item {
                        viewer.record_sent(frame.data.len());
                    }
                    peer.push(item, Instant::now());
                    if let Err(reason) = flush(&mut peer, &viewer, &socket, ipv6_socket, &mut feeding).await {
                        return reason;
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                // For the `stats` message, which ticks send: read here, not per frame.
                peer.viewers = viewer.hub().viewer_count();
                peer.dropped = viewer.dropped();
                peer.tick(Instant::now());
            }
        }
    }
}

/// Sends what the peer has to send and acts on its events; the time it next
/// needs a tick, or why it ended.
async fn flush(
    peer: &mut Peer,
    viewer: &Viewer,
    socket: &UdpSocket,
    ipv6_socket: bool,
    feeding: &mut bool,
) -> Result<Instant, String> {
    loop {
        match peer.poll() {
            Poll::Transmit(datagram) => send(socket, ipv6_socket, &datagram).await,
            Poll::Event(PeerEvent::Connected) => {
                // Begin with the freshest keyframe, not what queued up meanwhile.
                viewer.restart_at_keyframe();
                *feeding = true;
            }
            Poll::Event(PeerEvent::KeyframeWanted) => {
                viewer.hub().request_keyframe();
            }
            Poll::Wait(deadline) => return Ok(deadline),
            Poll::Ended(reason) => return Err(reason.to_string()),
        }
    }
}
