//! Listen endpoints as Collector configs write them (`localhost:4317`, `0.0.0.0:4318`,
//! `[::]:4317`, `:8888`), turned into socket addresses without any name lookup, so that config
//! validation stays pure and can compare the ports components will bind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::model::split_host_port;

/// Why an endpoint could not be turned into a socket address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not `host:port` with a port from 0 to 65535.
    #[error("`{endpoint}` is not `host:port` (for example `0.0.0.0:4317`, `localhost:4317` or `[::]:4317`)")]
    Malformed {
        /// The endpoint as written.
        endpoint: String,
    },
    /// A host name other than `localhost`: it would need a DNS lookup to bind.
    #[error("`{host}` is a host name; listen on an IP address (`0.0.0.0` for every interface) or `localhost`")]
    HostName {
        /// The host.
        host: String,
    },
}

/// Parses a listen endpoint. `localhost` is 127.0.0.1 and an empty host (`:8888`) is every
/// interface, as Go's listeners read them.
///
/// # Errors
/// When the text is not `host:port`, or the host is a name other than `localhost`.
pub fn parse_listen_endpoint(endpoint: &str) -> Result<SocketAddr, EndpointError> {
    let (host, port) =
        split_host_port(endpoint).ok_or_else(|| EndpointError::Malformed { endpoint: endpoint.to_owned() })?;
    Ok(SocketAddr::new(listen_host(host)?, port))
}

/// The address a listen host stands for: an IP literal, `localhost`, or empty for every
/// interface.
///
/// # Errors
/// When `host` is a name other than `localhost`.
pub fn listen_host(host: &str) -> Result<IpAddr, EndpointError> {
    match host {
        "" => Ok(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => host.parse().map_err(|_| EndpointError::HostName { host: host.to_owned() }),
    }
}

/// Whether two listeners would fight over a port: the same port (other than 0, which picks a free
/// one) on the same address, or on any address where one side listens on every interface (an
/// IPv6 wildcard takes IPv4 too, as Linux's dual-stack sockets do).
#[must_use]
pub fn listen_addresses_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let (a, b) = (a.ip().to_canonical(), b.ip().to_canonical());
    let covers = |wildcard: IpAddr, other: IpAddr| {
        wildcard.is_unspecified() && (wildcard.is_ipv6() || wildcard.is_ipv4() == other.is_ipv4())
    };
    a == b || covers(a, b) || covers(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        parse_listen_endpoint(text).unwrap()
    }

    #[test]
    fn parses_the_endpoints_collector_configs_use() {
        assert_eq!(addr("0.0.0.0:4317"), "0.0.0.0:4317".parse().unwrap());
        assert_eq!(addr("localhost:4318"), "127.0.0.1:4318".parse().unwrap());
        assert_eq!(addr("[::1]:4317"), "[::1]:4317".parse().unwrap());
        assert_eq!(addr(":8888"), "[::]:8888".parse().unwrap());
        assert_eq!(
            parse_listen_endpoint("collector.internal:4317"),
            Err(EndpointError::HostName { host: "collector.internal".into() })
        );
        assert_eq!(parse_listen_endpoint("4317"), Err(EndpointError::Malformed { endpoint: "4317".into() }));
        assert_eq!(parse_listen_endpoint("host:port"), Err(EndpointError::Malformed { endpoint: "host:port".into() }));
    }

    #[test]
    fn wildcards_conflict_with_specific_addresses_on_the_same_port() {
        let conflicts = [
            ("0.0.0.0:4317", "127.0.0.1:4317"),
            ("127.0.0.1:4317", "0.0.0.0:4317"),
            ("127.0.0.1:4317", "127.0.0.1:4317"),
            ("[::]:4317", "10.0.0.1:4317"),
            ("[::]:4317", "0.0.0.0:4317"),
            ("[::]:4317", "[::1]:4317"),
            ("[::ffff:127.0.0.1]:4317", "127.0.0.1:4317"),
        ];
        for (a, b) in conflicts {
            assert!(listen_addresses_conflict(addr(a), addr(b)), "{a} {b}");
        }
        let separate = [
            ("0.0.0.0:4317", "0.0.0.0:4318"),
            ("127.0.0.1:4317", "127.0.0.2:4317"),
            ("0.0.0.0:4317", "[::1]:4317"),
            ("0.0.0.0:0", "0.0.0.0:0"),
        ];
        for (a, b) in separate {
            assert!(!listen_addresses_conflict(addr(a), addr(b)), "{a} {b}");
        }
    }
}
