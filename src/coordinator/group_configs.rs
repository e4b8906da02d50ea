//! Group configs (KIP-848's dynamic group configs): per group id, overrides of the
//! consumer group settings, set with IncrementalAlterConfigs on GROUP resources and read
//! with DescribeConfigs, as `kafka-configs.sh --entity-type groups` does. Kafka keeps them
//! in its metadata log; Gregor in `__gregor_metadata/group-configs.yaml`, rewritten whole
//! and atomically before a change takes effect (docs/storage-format.md). A group id needs
//! no group to have configs, as in Kafka.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::config::ConsumerGroupConfig;
use crate::security::metadata_file::{self, MetadataFileError};
use crate::storage::Storage;

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// The group configs Gregor knows (Kafka 4.1 also has share.* and streams.* ones, for
/// group types Gregor does not have yet).
pub const GROUP_CONFIGS: [&str; 2] = [CONSUMER_SESSION_TIMEOUT_MS, CONSUMER_HEARTBEAT_INTERVAL_MS];

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    group: String,
    configs: BTreeMap<String, String>,
}

pub struct GroupConfigs {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    configs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl std::fmt::Debug for GroupConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConfigs")
            .field("path", &self.path)
            .finish()
    }
}

impl GroupConfigs {
    /// Loads `path` (missing: no group has configs).
    pub fn open(
        storage: Arc<dyn Storage>,
        path: PathBuf,
    ) -> Result<GroupConfigs, MetadataFileError> {
        let configs = metadata_file::read::<Entry>(storage.as_ref(), &path)?
            .into_iter()
            .map(|e| (e.group, e.configs))
            .collect();
        Ok(GroupConfigs {
            storage,
            path,
            configs: Mutex::new(configs),
        })
    }

    /// No configs, nothing on disk (tests).
    pub fn none(storage: Arc<dyn Storage>) -> GroupConfigs {
        GroupConfigs {
            storage,
            path: PathBuf::new(),
            configs: Mutex::default(),
        }
    }

    /// The overrides of `group`.
    pub fn get(&self, group: &str) -> BTreeMap<String, String> {
        self.configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the overrides of `group` (validated first, durable before they apply).
    pub fn set(
        &self,
        group: &str,
        configs: BTreeMap<String, String>,
        broker: &ConsumerGroupConfig,
        validate_only: bool,
    ) -> Result<(), SetError> {
        validate(&configs, broker).map_err(SetError::Invalid)?;
        if validate_only {
            return Ok(());
        }
        let mut all = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = all.clone();
        if configs.is_empty() {
            next.remove(group);
        } else {
            next.insert(group.to_string(), configs);
        }
        let entries: Vec<Entry> = next
            .iter()
            .map(|(group, configs)| Entry {
                group: group.clone(),
                configs: configs.clone(),
            })
            .collect();
        metadata_file::write(self.storage.as_ref(), &self.path, &entries)
            .map_err(SetError::Write)?;
        *all = next;
        Ok(())
    }

    /// `consumer.session.timeout.ms` of `group`, else the broker's.
    pub fn session_timeout_ms(&self, group: &str, broker: &ConsumerGroupConfig) -> i32 {
        self.int(group, CONSUMER_SESSION_TIMEOUT_MS)
            .unwrap_or(broker.session_timeout_ms)
    }

    /// `consumer.heartbeat.interval.ms` of `group`, else the broker's.
    pub fn heartbeat_interval_ms(&self, group: &str, broker: &ConsumerGroupConfig) -> i32 {
        self.int(group, CONSUMER_HEARTBEAT_INTERVAL_MS)
            .unwrap_or(broker.heartbeat_interval_ms)
    }

    fn int(&self, group: &str, key: &str) -> Option<i32> {
        self.configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)?
            .get(key)?
            .trim()
            .parse()
            .ok()
    }
}

/// Why a change was refused.
#[derive(Debug)]
pub enum SetError {
    /// INVALID_CONFIG, with Kafka's kind of message.
    Invalid(String),
    Write(MetadataFileError),
}

/// Kafka's `GroupConfig.validate`: known names, integers within the broker's bounds, and a
/// heartbeat interval below the session timeout.
pub fn validate(
    configs: &BTreeMap<String, String>,
    broker: &ConsumerGroupConfig,
) -> Result<(), String> {
    let mut session = broker.session_timeout_ms;
    let mut heartbeat = broker.heartbeat_interval_ms;
    for (key, value) in configs {
        let (min, max) = match key.as_str() {
            CONSUMER_SESSION_TIMEOUT_MS => {
                (broker.min_session_timeout_ms, broker.max_session_timeout_ms)
            }
            CONSUMER_HEARTBEAT_INTERVAL_MS => (
                broker.min_heartbeat_interval_ms,
                broker.max_heartbeat_interval_ms,
            ),
            _ => return Err(format!("Unknown group config name: {key}")),
        };
        let v: i32 = value.trim().parse().map_err(|_| {
            format!("Invalid value {value} for configuration {key}: Not a number of type INT")
        })?;
        if v < min {
            return Err(format!("{key} must be greater than or equal to {min}"));
        }
        if v > max {
            return Err(format!("{key} must be less than or equal to {max}"));
        }
        if key == CONSUMER_SESSION_TIMEOUT_MS {
            session = v;
        } else {
            heartbeat = v;
        }
    }
    if heartbeat >= session {
        return Err(format!(
            "{CONSUMER_HEARTBEAT_INTERVAL_MS} must be less than {CONSUMER_SESSION_TIMEOUT_MS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::simulated::SimulatedStorage;
    use std::path::Path;

    fn broker() -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            min_session_timeout_ms: 45_000,
            max_session_timeout_ms: 60_000,
            min_heartbeat_interval_ms: 5_000,
            max_heartbeat_interval_ms: 15_000,
            max_size: 10,
            assignors: vec!["uniform".into()],
        }
    }

    #[test]
    fn configs_are_validated_durable_and_apply_per_group() {
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/m"));
        let path = PathBuf::from("/m/group-configs.yaml");
        let store = GroupConfigs::open(sim.shared(), path.clone()).unwrap();
        let b = broker();
        let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(matches!(
            store.set("g", set("consumer.session.timeout.ms", "1000"), &b, false),
            Err(SetError::Invalid(m)) if m.contains("greater than or equal to 45000")
        ));
        assert!(matches!(
            store.set("g", set("share.x", "1"), &b, false),
            Err(SetError::Invalid(_))
        ));
        assert!(matches!(
            store.set("g", set("consumer.heartbeat.interval.ms", "abc"), &b, false),
            Err(SetError::Invalid(_))
        ));
        store
            .set("g", set("consumer.session.timeout.ms", "50000"), &b, true)
            .unwrap();
        assert_eq!(
            store.session_timeout_ms("g", &b),
            45_000,
            "validate_only changes nothing"
        );
        store
            .set("g", set("consumer.session.timeout.ms", "50000"), &b, false)
            .unwrap();
        assert_eq!(store.session_timeout_ms("g", &b), 50_000);
        assert_eq!(store.session_timeout_ms("other", &b), 45_000);
        assert_eq!(store.heartbeat_interval_ms("g", &b), 5_000);
        // Durable: a power loss keeps it.
        sim.power_loss();
        let again = GroupConfigs::open(sim.shared(), path).unwrap();
        assert_eq!(again.session_timeout_ms("g", &b), 50_000);
    }
}
