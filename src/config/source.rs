//! Where a config value comes from (Kafka's `ConfigSource`) and its synonyms, computed the
//! way Kafka's `ConfigHelper` does, so that DescribeConfigs and CreateTopics report what a
//! Kafka broker with the same settings would:
//!
//! - a topic config's synonyms are its override (if any), then every broker synonym the
//!   user set (STATIC_BROKER_CONFIG), then every broker synonym that has a default
//!   (DEFAULT_CONFIG), in `ServerTopicConfigSynonyms` order; everything before the first
//!   entry named after the primary broker synonym is dropped (so `retention.ms` without
//!   `log.retention.ms` lists no broker synonym at all, as in Kafka);
//! - the source is the first synonym's, or DEFAULT_CONFIG when there is none.

use std::collections::BTreeMap;

use super::topic::{default_value, TopicConfigDef};
use super::{BrokerConfig, BROKER_CONFIGS};

/// Kafka's `DescribeConfigsResponse.ConfigSource` codes Gregor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// One synonym of a config: a name, its value there (null when unset), where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// A config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    pub value: Option<String>,
    pub source: ConfigSource,
    pub synonyms: Vec<Synonym>,
}

/// Kafka's defaults of broker settings that appear as topic-config synonyms but that Gregor
/// does not take (`None`: no default). Other such settings default to the topic config's
/// own default, as they do in Kafka.
fn kafka_only_default(name: &str) -> Option<Option<&'static str>> {
    match name {
        "log.roll.jitter.ms" => Some(None),
        "log.roll.jitter.hours" => Some(Some("0")),
        "log.flush.scheduler.interval.ms" => Some(Some("9223372036854775807")),
        _ => None,
    }
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms`: the broker settings that stand for
/// the same value as `name`, in precedence order.
fn broker_synonyms(name: &str) -> Vec<&str> {
    const GROUPS: &[&[&str]] = &[
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
    ];
    GROUPS
        .iter()
        .find(|g| g.contains(&name))
        .map_or_else(|| vec![name], |g| g.to_vec())
}

impl BrokerConfig {
    /// The default of broker setting `name` as Kafka has it; `topic_default` for a
    /// topic-config synonym Gregor does not know.
    fn broker_default(&self, name: &str, topic_default: &str) -> Option<String> {
        if let Some(d) = BROKER_CONFIGS.iter().find(|d| d.name == name) {
            return d.default.map(str::to_string);
        }
        match kafka_only_default(name) {
            Some(default) => default.map(str::to_string),
            None => Some(topic_default.to_string()),
        }
    }

    /// Kafka's `ConfigHelper.configSynonyms` over broker settings `names`, keeping what
    /// follows the first entry named `primary`.
    fn synonyms(&self, names: &[&str], primary: &str, topic_default: &str) -> Vec<Synonym> {
        let statics = names.iter().filter_map(|n| {
            self.explicit.get(*n).map(|v| Synonym {
                name: n.to_string(),
                value: Some(v.clone()),
                source: ConfigSource::StaticBroker,
            })
        });
        let defaults = names.iter().filter_map(|n| {
            self.broker_default(n, topic_default).map(|v| Synonym {
                name: n.to_string(),
                value: Some(v),
                source: ConfigSource::Default,
            })
        });
        statics
            .chain(defaults)
            .skip_while(|s| s.name != primary)
            .collect()
    }

    /// A topic config of a topic with `overrides`.
    pub fn describe_topic_config(
        &self,
        def: &TopicConfigDef,
        overrides: &BTreeMap<String, String>,
    ) -> DescribedConfig {
        let effective = default_value(&self.log, def.name);
        let primary = def.synonyms.first().copied().unwrap_or_default();
        let mut synonyms = self.synonyms(def.synonyms, primary, &effective);
        let value = match overrides.get(def.name) {
            Some(v) => {
                synonyms.insert(
                    0,
                    Synonym {
                        name: def.name.to_string(),
                        value: Some(v.clone()),
                        source: ConfigSource::DynamicTopic,
                    },
                );
                v.clone()
            }
            None => effective,
        };
        DescribedConfig {
            value: Some(value),
            source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
            synonyms,
        }
    }

    /// A broker setting: its own value (set or default; null when neither), not the value
    /// derived from its synonyms, as Kafka reports it.
    pub fn describe_broker_config(&self, name: &str) -> DescribedConfig {
        let value = self
            .explicit
            .get(name)
            .cloned()
            .filter(|v| !v.is_empty())
            .or_else(|| self.broker_default(name, ""));
        let synonyms = self.synonyms(&broker_synonyms(name), name, "");
        DescribedConfig {
            value,
            source: synonyms.first().map_or(ConfigSource::Default, |s| s.source),
            synonyms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::topic::topic_config_def;
    use crate::config::RawConfig;

    fn config(yaml: &str) -> BrokerConfig {
        BrokerConfig::from_raw(&RawConfig::from_yaml(yaml).unwrap()).unwrap()
    }

    #[test]
    fn retention_without_log_retention_ms_has_no_broker_synonym() {
        // Kafka drops the log.retention.hours default: it comes before no log.retention.ms.
        let c = config("");
        let d =
            c.describe_topic_config(topic_config_def("retention.ms").unwrap(), &BTreeMap::new());
        assert_eq!(d.value.as_deref(), Some("604800000"));
        assert_eq!(d.source, ConfigSource::Default);
        assert!(d.synonyms.is_empty());
    }

    #[test]
    fn a_set_broker_synonym_is_static_and_listed_before_the_default() {
        let c = config("log.segment.bytes: 1048576\n");
        let d =
            c.describe_topic_config(topic_config_def("segment.bytes").unwrap(), &BTreeMap::new());
        assert_eq!(d.value.as_deref(), Some("1048576"));
        assert_eq!(d.source, ConfigSource::StaticBroker);
        let sources: Vec<_> = d.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            vec![ConfigSource::StaticBroker, ConfigSource::Default]
        );
        assert_eq!(d.synonyms[1].value.as_deref(), Some("1073741824"));
    }

    #[test]
    fn a_topic_override_comes_first() {
        let c = config("");
        let mut o = BTreeMap::new();
        o.insert("max.message.bytes".to_string(), "100000".to_string());
        let d = c.describe_topic_config(topic_config_def("max.message.bytes").unwrap(), &o);
        assert_eq!(d.source, ConfigSource::DynamicTopic);
        assert_eq!(d.synonyms[0].name, "max.message.bytes");
        assert_eq!(d.synonyms[1].name, "message.max.bytes");
        assert_eq!(d.synonyms[1].source, ConfigSource::Default);
    }

    #[test]
    fn broker_settings_without_a_default_are_null() {
        let c = config("");
        let d = c.describe_broker_config("log.retention.ms");
        assert_eq!(d.value, None);
        assert_eq!(d.source, ConfigSource::Default);
        assert!(d.synonyms.is_empty());
        let hours = c.describe_broker_config("log.retention.hours");
        assert_eq!(hours.value.as_deref(), Some("168"));
        assert_eq!(hours.synonyms.len(), 1);
        let set = config("log.retention.minutes: 30\n").describe_broker_config("log.retention.ms");
        assert_eq!(set.value, None, "the key's own value, not the derived one");
        assert!(
            set.synonyms.is_empty(),
            "log.retention.minutes comes after the primary name"
        );
    }

    #[test]
    fn shipped_defaults_are_not_static() {
        let mut raw =
            RawConfig::from_yaml("num.partitions: 1\ngroup.initial.rebalance.delay.ms: 0\n")
                .unwrap();
        raw.mark_shipped();
        let c = BrokerConfig::from_raw(&raw).unwrap();
        assert_eq!(
            c.describe_broker_config("num.partitions").source,
            ConfigSource::Default
        );
        // A shipped value that differs from the built-in default is reported as set, as
        // Kafka reports its example server.properties.
        assert_eq!(
            c.describe_broker_config("group.initial.rebalance.delay.ms")
                .source,
            ConfigSource::StaticBroker
        );
        raw.set("num.partitions", "1");
        let c = BrokerConfig::from_raw(&raw).unwrap();
        assert_eq!(
            c.describe_broker_config("num.partitions").source,
            ConfigSource::StaticBroker
        );
    }
}
