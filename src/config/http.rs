//! The HTTP listener's settings (Gregor only): where it listens, and whether it serves the
//! web console. Resolved from `http.listen` and `console.enable` by `BrokerConfig::from_raw`.

use std::net::{SocketAddr, ToSocketAddrs};

use super::raw::RawConfig;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `http.listen`: the address of `/metrics`, `/health`, the console and `/api/`;
    /// `None` (an empty value) turns the listener off.
    pub listen: Option<SocketAddr>,
    /// `console.enable`: the console at `/` and its JSON API under `/api/`.
    pub console: bool,
}

impl HttpConfig {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<HttpConfig, ConfigError> {
        let value = raw.string("http.listen", "127.0.0.1:9644");
        let value = value.trim();
        let listen = if value.is_empty() {
            None
        } else {
            let addr = value
                .to_socket_addrs()
                .map_err(|e| {
                    ConfigError::new("http.listen", format!("`{value}` is not HOST:PORT ({e})"))
                })?
                .next()
                .ok_or_else(|| {
                    ConfigError::new("http.listen", format!("`{value}` resolves to no address"))
                })?;
            Some(addr)
        };
        Ok(HttpConfig {
            listen,
            console: raw.bool("console.enable", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<HttpConfig, ConfigError> {
        HttpConfig::from_raw(&RawConfig::from_yaml(yaml).unwrap())
    }

    #[test]
    fn the_listener_defaults_to_loopback_9644_and_empty_turns_it_off() {
        let default = parse("").unwrap();
        assert_eq!(default.listen, Some("127.0.0.1:9644".parse().unwrap()));
        assert!(default.console);
        assert_eq!(parse("http.listen: ''").unwrap().listen, None);
        assert_eq!(
            parse("http.listen: 0.0.0.0:8080").unwrap().listen,
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert!(!parse("console.enable: false").unwrap().console);
    }

    #[test]
    fn a_bad_address_names_the_key() {
        assert_eq!(
            parse("http.listen: nonsense").unwrap_err().key,
            "http.listen"
        );
    }
}
