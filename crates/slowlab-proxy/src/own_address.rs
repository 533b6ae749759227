//! Whether an upstream address leads back to the proxy's own listener: one test for both modes,
//! so that HTTP and TCP refuse the same loops at start.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether connecting to `upstream` would reach the listener bound to `listen`: a proxy
/// forwarding there would forward to itself until it ran out of connections.
///
/// On Linux, connecting to an unspecified address (`0.0.0.0`, `::`) reaches the loopback address
/// of its family (`127.0.0.1`, `::1`), so that is what such an upstream is compared as. A listener
/// on an unspecified address is reached through any address of this host in the families it
/// accepts (IPv4 for `0.0.0.0`; both for `::`, which is dual-stack by default). A remote upstream
/// on the same port (listen `0.0.0.0:5432`, upstream `10.0.0.3:5432`) is not a loop.
pub fn leads_back(listen: SocketAddr, upstream: SocketAddr) -> bool {
    if listen.port() != upstream.port() {
        return false;
    }
    let target = dialled(upstream.ip());
    let listen_ip = listen.ip().to_canonical();
    if target == listen_ip {
        return true;
    }
    if !listen_ip.is_unspecified() {
        return false;
    }
    let family_accepted = match listen_ip {
        IpAddr::V4(_) => target.is_ipv4(),
        IpAddr::V6(_) => true,
    };
    family_accepted && (target.is_loopback() || is_this_host(target))
}

/// The address a connection to `ip` really goes to.
fn dialled(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// Whether `ip` is one of this host's addresses (one a wildcard listener is bound on too).
fn is_this_host(ip: IpAddr) -> bool {
    std::net::TcpListener::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loops(listen: &str, upstream: &str) -> bool {
        leads_back(listen.parse().unwrap(), upstream.parse().unwrap())
    }

    #[test]
    fn the_same_address_or_an_unspecified_one_on_either_side_is_a_loop() {
        assert!(loops("127.0.0.1:9000", "127.0.0.1:9000"));
        assert!(loops("127.0.0.1:9000", "0.0.0.0:9000"));
        assert!(loops("0.0.0.0:9000", "0.0.0.0:9000"));
        assert!(loops("0.0.0.0:9000", "127.0.0.1:9000"));
        assert!(loops("[::1]:9000", "[::]:9000"));
        assert!(loops("[::]:9000", "[::1]:9000"));
        assert!(loops("[::]:9000", "127.0.0.1:9000"));
        assert!(loops("127.0.0.1:9000", "[::ffff:127.0.0.1]:9000"));
    }

    #[test]
    fn another_port_host_or_family_is_not_a_loop() {
        assert!(!loops("127.0.0.1:9000", "127.0.0.1:9001"));
        assert!(!loops("0.0.0.0:5432", "10.0.0.3:5432"));
        // 0.0.0.0 reaches 127.0.0.1, not the rest of 127/8.
        assert!(!loops("127.0.0.2:9000", "0.0.0.0:9000"));
        // An IPv4 listener is not reached over IPv6.
        assert!(!loops("0.0.0.0:9000", "[::1]:9000"));
    }
}
