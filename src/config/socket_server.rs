//! The limits of the network layer (Kafka's `SocketServerConfigs`): request size, connection
//! counts overall and per client address, idle connections, and the memory of requests read
//! but not yet answered. Resolved from broker config keys by `BrokerConfig::from_raw`.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use super::raw::RawConfig;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct SocketServerConfig {
    /// `socket.request.max.bytes`: a bigger request closes the connection.
    pub socket_request_max_bytes: usize,
    /// `max.connections`: further connections are closed on accept.
    pub max_connections: usize,
    /// `max.connections.per.ip`, for addresses without an override.
    pub max_connections_per_ip: usize,
    /// `max.connections.per.ip.overrides`, resolved to addresses at start-up.
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
    /// `connections.max.idle.ms`: a connection that completes no request for this long is
    /// closed, whether it sends nothing or trickles a request a byte at a time.
    pub connections_max_idle: Duration,
    /// `queued.max.request.bytes`: request bytes read but not yet answered, over all
    /// connections; at the cap, connections stop reading. `None` (-1): no cap.
    pub queued_max_request_bytes: Option<usize>,
    /// `socket.sendfile.enable` (Gregor only): Fetch records go from the segment file to a
    /// plain TCP socket by `sendfile` instead of one read into a buffer and a write.
    pub sendfile: bool,
}

impl SocketServerConfig {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<SocketServerConfig, ConfigError> {
        let socket_request_max_bytes = raw.int(
            "socket.request.max.bytes",
            104_857_600,
            1024,
            i32::MAX as i64,
        )? as usize;
        let key = "queued.max.request.bytes";
        let queued_max_request_bytes = match raw.int(key, -1, -1, i64::MAX)? {
            -1 => None,
            // Kafka's rule: one request of the largest size must fit.
            n if n < socket_request_max_bytes as i64 => {
                return Err(ConfigError::new(
                    key,
                    format!(
                    "must be -1 or at least socket.request.max.bytes ({socket_request_max_bytes})"
                ),
                ))
            }
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let max_connections_per_ip = raw.int(
            "max.connections.per.ip",
            i32::MAX as i64,
            0,
            i32::MAX as i64,
        )? as usize;
        let key = "max.connections.per.ip.overrides";
        let max_connections_per_ip_overrides = parse_overrides(key, &raw.string(key, ""))?;
        if max_connections_per_ip == 0 && max_connections_per_ip_overrides.is_empty() {
            // As Kafka: 0 without overrides would refuse every client.
            return Err(ConfigError::new(
                "max.connections.per.ip",
                "0 is allowed only with max.connections.per.ip.overrides",
            ));
        }
        Ok(SocketServerConfig {
            socket_request_max_bytes,
            max_connections: raw.int("max.connections", i32::MAX as i64, 1, i32::MAX as i64)?
                as usize,
            max_connections_per_ip,
            max_connections_per_ip_overrides,
            connections_max_idle: Duration::from_millis(raw.int(
                "connections.max.idle.ms",
                600_000,
                1,
                i64::MAX,
            )? as u64),
            queued_max_request_bytes,
            sendfile: raw.bool("socket.sendfile.enable", false)?,
        })
    }

    /// The most connections one client address may hold.
    pub fn max_connections_for(&self, ip: IpAddr) -> usize {
        self.max_connections_per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }
}

/// `host:count,host:count`: each host an IP address or a name that resolves at start-up.
fn parse_overrides(key: &str, text: &str) -> Result<HashMap<IpAddr, usize>, ConfigError> {
    let mut out = HashMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| ConfigError::new(key, format!("{entry:?}: {why}"));
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:count"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| bad("the count is not a non-negative integer"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| bad(&format!("the host does not resolve: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in addrs {
            out.insert(ip, count);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<SocketServerConfig, ConfigError> {
        let mut raw = RawConfig::from_yaml("").unwrap();
        for (k, v) in pairs {
            raw.set(k, v);
        }
        SocketServerConfig::from_raw(&raw)
    }

    #[test]
    fn overrides_are_per_address_and_the_rest_get_the_default() {
        let c = config(&[
            ("max.connections.per.ip", "3"),
            (
                "max.connections.per.ip.overrides",
                "127.0.0.2:1, [::1]:7,localhost:5",
            ),
        ])
        .unwrap();
        assert_eq!(c.max_connections_for("127.0.0.2".parse().unwrap()), 1);
        assert_eq!(c.max_connections_for("10.0.0.1".parse().unwrap()), 3);
        // localhost resolves to 127.0.0.1 (and maybe ::1, which it then overrides).
        assert_eq!(c.max_connections_for("127.0.0.1".parse().unwrap()), 5);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (pairs, key) in [
            (
                vec![("max.connections.per.ip.overrides", "127.0.0.1")],
                "max.connections.per.ip.overrides",
            ),
            (
                vec![("max.connections.per.ip.overrides", "127.0.0.1:-2")],
                "max.connections.per.ip.overrides",
            ),
            (
                vec![("max.connections.per.ip", "0")],
                "max.connections.per.ip",
            ),
            (
                vec![("queued.max.request.bytes", "0")],
                "queued.max.request.bytes",
            ),
            (
                vec![("queued.max.request.bytes", "1000")],
                "queued.max.request.bytes",
            ),
            (
                vec![("connections.max.idle.ms", "0")],
                "connections.max.idle.ms",
            ),
        ] {
            assert_eq!(config(&pairs).unwrap_err().key, key, "{pairs:?}");
        }
        let ok = config(&[("queued.max.request.bytes", "104857600")]).unwrap();
        assert_eq!(ok.queued_max_request_bytes, Some(104_857_600));
    }
}
