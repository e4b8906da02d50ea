//! Group configs (KIP-848's dynamic group configs): per group id, overrides of the
//! consumer and share group settings, set with IncrementalAlterConfigs on GROUP resources
//! and read with DescribeConfigs, as `kafka-configs.sh --entity-type groups` does. Kafka
//! keeps them in its metadata log; Gregor in `__gregor_metadata/group-configs.yaml`,
//! rewritten whole and atomically before a change takes effect (docs/storage-format.md). A
//! group id needs no group to have configs, as in Kafka.
//!
//! Synchronisation: the overrides live behind one mutex, held while the file is rewritten
//! so that two changes cannot interleave their writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::CoordinatorConfig;
use crate::security::metadata_file::{self, MetadataFileError};
use crate::storage::Storage;

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";
pub const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
pub const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
pub const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
pub const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
pub const SHARE_ISOLATION_LEVEL: &str = "share.isolation.level";

/// A group config: its name, Kafka's type id (DescribeConfigs), documentation, and its
/// default (the broker setting it overrides).
#[derive(Debug, Clone, Copy)]
pub struct GroupConfigDef {
    pub name: &'static str,
    /// 2: STRING, 3: INT.
    pub config_type: i8,
    pub doc: &'static str,
    pub default: fn(&CoordinatorConfig) -> String,
}

/// The group configs Gregor knows (Kafka 4.2 also has streams.* ones, for a group type
/// Gregor does not have).
pub const GROUP_CONFIGS: [GroupConfigDef; 7] = [
    GroupConfigDef {
        name: CONSUMER_SESSION_TIMEOUT_MS,
        config_type: 3,
        doc: "The timeout to detect client failures when using the consumer group protocol.",
        default: |c| c.consumer.session_timeout_ms.to_string(),
    },
    GroupConfigDef {
        name: CONSUMER_HEARTBEAT_INTERVAL_MS,
        config_type: 3,
        doc: "The heartbeat interval given to the members of a consumer group.",
        default: |c| c.consumer.heartbeat_interval_ms.to_string(),
    },
    GroupConfigDef {
        name: SHARE_SESSION_TIMEOUT_MS,
        config_type: 3,
        doc: "The timeout to detect client failures when using the share group protocol.",
        default: |c| c.share.session_timeout_ms.to_string(),
    },
    GroupConfigDef {
        name: SHARE_HEARTBEAT_INTERVAL_MS,
        config_type: 3,
        doc: "The heartbeat interval given to the members of a share group.",
        default: |c| c.share.heartbeat_interval_ms.to_string(),
    },
    GroupConfigDef {
        name: SHARE_RECORD_LOCK_DURATION_MS,
        config_type: 3,
        doc: "The record acquisition lock duration in milliseconds for share groups.",
        default: |c| c.share.record_lock_duration_ms.to_string(),
    },
    GroupConfigDef {
        name: SHARE_AUTO_OFFSET_RESET,
        config_type: 2,
        doc: "The strategy to initialize the share-partition start offset: earliest, latest, or by_duration:<ISO-8601 duration> from the current time.",
        default: |_| "latest".to_string(),
    },
    GroupConfigDef {
        name: SHARE_ISOLATION_LEVEL,
        config_type: 2,
        doc: "Whether a share group reads transactional records only once committed (read_committed) or all of them (read_uncommitted).",
        default: |_| "read_uncommitted".to_string(),
    },
];

/// The definition of group config `name`.
pub fn group_config(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// Where a share group's start offset begins when it has none (`share.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// The first offset whose timestamp is at most this long ago.
    ByDuration(Duration),
}

impl AutoOffsetReset {
    /// Kafka's `ShareGroupAutoOffsetResetStrategy.fromString`: `earliest`, `latest`, or
    /// `by_duration:` and a non-negative ISO-8601 duration (`PnDTnHnMn.nS`).
    pub fn parse(value: &str) -> Option<AutoOffsetReset> {
        let lower = value.trim().to_ascii_lowercase();
        match lower.as_str() {
            "earliest" => Some(AutoOffsetReset::Earliest),
            "latest" => Some(AutoOffsetReset::Latest),
            _ => {
                let iso = value.trim().get("by_duration:".len()..)?;
                if !lower.starts_with("by_duration:") {
                    return None;
                }
                parse_iso_duration(iso).map(AutoOffsetReset::ByDuration)
            }
        }
    }
}

/// Java's `Duration.parse` for the non-negative forms `PnDTnHnMn.nS` (days, hours, minutes,
/// seconds with a fraction), case-insensitive.
fn parse_iso_duration(s: &str) -> Option<Duration> {
    let s = s.to_ascii_uppercase();
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut millis: u128 = 0;
    let mut any = false;
    if !days.is_empty() {
        let n: u128 = days.strip_suffix('D')?.parse().ok()?;
        millis += n * 86_400_000;
        any = true;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return None;
        }
        for (unit, ms) in [('H', 3_600_000u128), ('M', 60_000)] {
            if let Some((n, after)) = t.split_once(unit) {
                millis += n.parse::<u128>().ok()? * ms;
                t = after;
                any = true;
            }
        }
        if let Some(secs) = t.strip_suffix('S') {
            let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
            millis += whole.parse::<u128>().ok()? * 1000;
            if !frac.is_empty() {
                if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let padded = format!("{frac:0<9}");
                millis += padded.parse::<u128>().ok()? / 1_000_000;
            }
            any = true;
        } else if !t.is_empty() {
            return None;
        }
    }
    any.then(|| Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX)))
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    group: String,
    configs: BTreeMap<String, String>,
}

/// The file's name under `__gregor_metadata/`.
pub const FILE_NAME: &str = "group-configs.yaml";

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

    /// Reads the file again (cluster mode: another broker changed it).
    pub fn reload(&self) -> Result<(), MetadataFileError> {
        let mut all = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        *all = metadata_file::read::<Entry>(self.storage.as_ref(), &self.path)?
            .into_iter()
            .map(|e| (e.group, e.configs))
            .collect();
        Ok(())
    }

    /// The file's path, and the storage it is on (cluster mode commits it).
    pub fn file(&self) -> (&dyn Storage, &std::path::Path) {
        (self.storage.as_ref(), &self.path)
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
        broker: &CoordinatorConfig,
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
    pub fn session_timeout_ms(&self, group: &str, broker: &CoordinatorConfig) -> i32 {
        self.int(group, CONSUMER_SESSION_TIMEOUT_MS)
            .unwrap_or(broker.consumer.session_timeout_ms)
    }

    /// `consumer.heartbeat.interval.ms` of `group`, else the broker's.
    pub fn heartbeat_interval_ms(&self, group: &str, broker: &CoordinatorConfig) -> i32 {
        self.int(group, CONSUMER_HEARTBEAT_INTERVAL_MS)
            .unwrap_or(broker.consumer.heartbeat_interval_ms)
    }

    /// `share.session.timeout.ms` of `group`, else the broker's.
    pub fn share_session_timeout_ms(&self, group: &str, broker: &CoordinatorConfig) -> i32 {
        self.int(group, SHARE_SESSION_TIMEOUT_MS)
            .unwrap_or(broker.share.session_timeout_ms)
    }

    /// `share.heartbeat.interval.ms` of `group`, else the broker's.
    pub fn share_heartbeat_interval_ms(&self, group: &str, broker: &CoordinatorConfig) -> i32 {
        self.int(group, SHARE_HEARTBEAT_INTERVAL_MS)
            .unwrap_or(broker.share.heartbeat_interval_ms)
    }

    /// `share.record.lock.duration.ms` of `group`, else the broker's.
    pub fn share_record_lock_duration_ms(&self, group: &str, broker: &CoordinatorConfig) -> i32 {
        self.int(group, SHARE_RECORD_LOCK_DURATION_MS)
            .unwrap_or(broker.share.record_lock_duration_ms)
    }

    /// `share.auto.offset.reset` of `group` (latest when unset).
    pub fn share_auto_offset_reset(&self, group: &str) -> AutoOffsetReset {
        self.string(group, SHARE_AUTO_OFFSET_RESET)
            .and_then(|v| AutoOffsetReset::parse(&v))
            .unwrap_or(AutoOffsetReset::Latest)
    }

    /// Whether `share.isolation.level` of `group` is read_committed.
    pub fn share_read_committed(&self, group: &str) -> bool {
        self.string(group, SHARE_ISOLATION_LEVEL)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("read_committed"))
    }

    fn string(&self, group: &str, key: &str) -> Option<String> {
        self.configs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)?
            .get(key)
            .cloned()
    }

    fn int(&self, group: &str, key: &str) -> Option<i32> {
        self.string(group, key)?.trim().parse().ok()
    }
}

/// Why a change was refused.
#[derive(Debug)]
pub enum SetError {
    /// INVALID_CONFIG, with Kafka's kind of message.
    Invalid(String),
    Write(MetadataFileError),
}

/// Kafka's `GroupConfig.validate`: known names, values of their type within the broker's
/// bounds, and heartbeat intervals below session timeouts (the unset ones at their
/// defaults).
pub fn validate(
    configs: &BTreeMap<String, String>,
    broker: &CoordinatorConfig,
) -> Result<(), String> {
    let (consumer, share) = (&broker.consumer, &broker.share);
    let mut values: BTreeMap<&str, i32> = BTreeMap::from([
        (CONSUMER_SESSION_TIMEOUT_MS, consumer.session_timeout_ms),
        (
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            consumer.heartbeat_interval_ms,
        ),
        (SHARE_SESSION_TIMEOUT_MS, share.session_timeout_ms),
        (SHARE_HEARTBEAT_INTERVAL_MS, share.heartbeat_interval_ms),
    ]);
    for (key, value) in configs {
        let Some(def) = group_config(key) else {
            return Err(format!("Unknown group config name: {key}"));
        };
        match def.name {
            SHARE_AUTO_OFFSET_RESET => {
                if AutoOffsetReset::parse(value).is_none() {
                    return Err(format!("Invalid value `{value}` for configuration {key}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."));
                }
                continue;
            }
            SHARE_ISOLATION_LEVEL => {
                if !["read_committed", "read_uncommitted"].contains(&value.trim()) {
                    return Err(format!("Invalid value {value} for configuration {key}: String must be one of: read_committed, read_uncommitted"));
                }
                continue;
            }
            _ => {}
        }
        let v: i32 = value.trim().parse().map_err(|_| {
            format!("Invalid value {value} for configuration {key}: Not a number of type INT")
        })?;
        let (min, max, min_name, max_name) = match def.name {
            CONSUMER_SESSION_TIMEOUT_MS => (
                consumer.min_session_timeout_ms,
                consumer.max_session_timeout_ms,
                "",
                "",
            ),
            CONSUMER_HEARTBEAT_INTERVAL_MS => (
                consumer.min_heartbeat_interval_ms,
                consumer.max_heartbeat_interval_ms,
                "",
                "",
            ),
            SHARE_SESSION_TIMEOUT_MS => (
                share.min_session_timeout_ms,
                share.max_session_timeout_ms,
                "group.share.min.session.timeout.ms",
                "group.share.max.session.timeout.ms",
            ),
            SHARE_HEARTBEAT_INTERVAL_MS => (
                share.min_heartbeat_interval_ms,
                share.max_heartbeat_interval_ms,
                "group.share.min.heartbeat.interval.ms",
                "group.share.max.heartbeat.interval.ms",
            ),
            _ => (
                share.min_record_lock_duration_ms,
                share.max_record_lock_duration_ms,
                "group.share.min.record.lock.duration.ms",
                "group.share.max.record.lock.duration.ms",
            ),
        };
        // Kafka names the broker setting for share configs; the consumer ones keep the
        // number, as they were first written.
        let bound = |name: &str, n: i32| {
            if name.is_empty() {
                n.to_string()
            } else {
                name.to_string()
            }
        };
        if v < min {
            return Err(format!(
                "{key} must be greater than or equal to {}",
                bound(min_name, min)
            ));
        }
        if v > max {
            return Err(format!(
                "{key} must be less than or equal to {}",
                bound(max_name, max)
            ));
        }
        values.insert(def.name, v);
    }
    if values[CONSUMER_HEARTBEAT_INTERVAL_MS] >= values[CONSUMER_SESSION_TIMEOUT_MS] {
        return Err(format!(
            "{CONSUMER_HEARTBEAT_INTERVAL_MS} must be less than {CONSUMER_SESSION_TIMEOUT_MS}"
        ));
    }
    if values[SHARE_HEARTBEAT_INTERVAL_MS] >= values[SHARE_SESSION_TIMEOUT_MS] {
        return Err(format!(
            "{SHARE_SESSION_TIMEOUT_MS} must be greater than {SHARE_HEARTBEAT_INTERVAL_MS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, RawConfig};
    use crate::storage::simulated::SimulatedStorage;
    use std::path::Path;

    fn broker() -> CoordinatorConfig {
        let mut c = BrokerConfig::from_raw(&RawConfig::from_yaml("").unwrap())
            .unwrap()
            .coordinator;
        c.consumer.max_size = 10;
        c
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

    #[test]
    fn share_configs_are_validated_as_kafka_does() {
        let b = broker();
        let check =
            |k: &str, v: &str| validate(&BTreeMap::from([(k.to_string(), v.to_string())]), &b);
        assert!(check(SHARE_AUTO_OFFSET_RESET, "earliest").is_ok());
        assert!(check(SHARE_AUTO_OFFSET_RESET, "LATEST").is_ok());
        assert!(check(SHARE_AUTO_OFFSET_RESET, "by_duration:PT1H30M").is_ok());
        assert!(check(SHARE_AUTO_OFFSET_RESET, "by_duration:P1DT0.5S").is_ok());
        for bad in [
            "none",
            "by_duration:",
            "by_duration:PT",
            "by_duration:-PT1H",
            "by_duration:1H",
        ] {
            assert!(check(SHARE_AUTO_OFFSET_RESET, bad).is_err(), "{bad}");
        }
        assert!(check(SHARE_ISOLATION_LEVEL, "read_committed").is_ok());
        assert!(check(SHARE_ISOLATION_LEVEL, "committed").is_err());
        assert_eq!(
            check(SHARE_RECORD_LOCK_DURATION_MS, "5000").unwrap_err(),
            "share.record.lock.duration.ms must be greater than or equal to group.share.min.record.lock.duration.ms"
        );
        assert!(check(SHARE_RECORD_LOCK_DURATION_MS, "20000").is_ok());
        assert!(check(SHARE_HEARTBEAT_INTERVAL_MS, "15000").is_ok());
        assert_eq!(
            check(SHARE_HEARTBEAT_INTERVAL_MS, "20000").unwrap_err(),
            "share.heartbeat.interval.ms must be less than or equal to group.share.max.heartbeat.interval.ms"
        );
    }

    #[test]
    fn iso_durations_parse_as_java_does() {
        let ms = |s: &str| parse_iso_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("PT1H"), Some(3_600_000));
        assert_eq!(ms("P2D"), Some(172_800_000));
        assert_eq!(ms("PT1M30.25S"), Some(90_250));
        assert_eq!(ms("pt10s"), Some(10_000));
        assert_eq!(ms("P"), None);
        assert_eq!(ms("PT"), None);
        assert_eq!(ms("PT5X"), None);
    }
}
