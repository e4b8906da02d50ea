//! Connection counts at accept (Kafka's `ConnectionQuotas`): `max.connections` over all
//! clients and `max.connections.per.ip` (with its overrides) per client address. A connection
//! over either limit is closed right after accept, as Kafka does.
//!
//! Shared as `Arc<ConnectionQuotas>` by the accept loop and every connection's permit; one
//! mutex guards the counts, held only to add or subtract.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::SocketServerConfig;

pub struct ConnectionQuotas {
    config: SocketServerConfig,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a new connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    MaxConnections { max: usize },
    MaxConnectionsPerIp { ip: IpAddr, max: usize },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::MaxConnections { max } => write!(f, "max.connections ({max}) reached"),
            Refused::MaxConnectionsPerIp { ip, max } => {
                write!(f, "max.connections.per.ip ({max}) reached for {ip}")
            }
        }
    }
}

/// One counted connection; dropping it gives the slot back.
pub struct ConnectionPermit {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl ConnectionQuotas {
    pub fn new(config: SocketServerConfig) -> Arc<ConnectionQuotas> {
        Arc::new(ConnectionQuotas {
            config,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a connection from `ip`, or says which limit it would break.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let mut counts = self.lock();
        if counts.total >= self.config.max_connections {
            return Err(Refused::MaxConnections {
                max: self.config.max_connections,
            });
        }
        let max = self.config.max_connections_for(ip);
        let mine = counts.per_ip.entry(ip).or_insert(0);
        if *mine >= max {
            if *mine == 0 {
                counts.per_ip.remove(&ip);
            }
            return Err(Refused::MaxConnectionsPerIp { ip, max });
        }
        *mine += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            quotas: self.clone(),
            ip,
        })
    }

    /// Open connections from `ip`.
    #[cfg(test)]
    pub fn count(&self, ip: IpAddr) -> usize {
        self.lock().per_ip.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.quotas.lock();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, RawConfig};

    fn quotas(pairs: &[(&str, &str)]) -> Arc<ConnectionQuotas> {
        let mut raw = RawConfig::from_yaml("").unwrap();
        for (k, v) in pairs {
            raw.set(k, v);
        }
        ConnectionQuotas::new(BrokerConfig::from_raw(&raw).unwrap().socket_server)
    }

    #[test]
    fn per_ip_limits_with_overrides_and_slots_come_back_on_drop() {
        let q = quotas(&[
            ("max.connections.per.ip", "1"),
            ("max.connections.per.ip.overrides", "127.0.0.2:2"),
        ]);
        let (one, two): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let a = q.try_acquire(one).unwrap();
        assert_eq!(
            q.try_acquire(one).err(),
            Some(Refused::MaxConnectionsPerIp { ip: one, max: 1 })
        );
        let b = q.try_acquire(two).unwrap();
        let c = q.try_acquire(two).unwrap();
        assert!(q.try_acquire(two).is_err());
        drop(a);
        assert_eq!(q.count(one), 0);
        let _a = q.try_acquire(one).unwrap();
        drop((b, c));
        assert_eq!(q.count(two), 0);
    }

    #[test]
    fn max_connections_counts_every_address() {
        let q = quotas(&[("max.connections", "2")]);
        let _a = q.try_acquire("127.0.0.1".parse().unwrap()).unwrap();
        let _b = q.try_acquire("127.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            q.try_acquire("127.0.0.3".parse().unwrap()).err(),
            Some(Refused::MaxConnections { max: 2 })
        );
    }
}
