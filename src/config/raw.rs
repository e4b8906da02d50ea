//! The raw configuration: flat `key: value` pairs from YAML, before validation. Typed
//! getters parse one key each and name it in their errors.

use std::collections::{BTreeMap, BTreeSet};

use super::ConfigError;

/// Flat key/value pairs as strings; later `set` calls (command-line flags) replace earlier values.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    values: BTreeMap<String, String>,
    /// Keys that come from the embedded default configuration, not from the user.
    shipped: BTreeSet<String>,
}

impl RawConfig {
    /// Parses a YAML mapping of scalar values. Nested mappings and lists are rejected.
    pub fn from_yaml(text: &str) -> Result<RawConfig, ConfigError> {
        let doc: serde_yaml::Value = serde_yaml::from_str(text)
            .map_err(|e| ConfigError::new("<file>", format!("not valid YAML: {e}")))?;
        let mut values = BTreeMap::new();
        match doc {
            serde_yaml::Value::Null => {}
            serde_yaml::Value::Mapping(map) => {
                for (key, value) in map {
                    let key = match key {
                        serde_yaml::Value::String(s) => s,
                        other => {
                            return Err(ConfigError::new(
                                format!("{other:?}"),
                                "keys must be strings",
                            ))
                        }
                    };
                    let value = match value {
                        serde_yaml::Value::Null => String::new(),
                        serde_yaml::Value::Bool(b) => b.to_string(),
                        serde_yaml::Value::Number(n) => n.to_string(),
                        serde_yaml::Value::String(s) => s,
                        _ => return Err(ConfigError::new(key, "must be a single value")),
                    };
                    values.insert(key, value);
                }
            }
            _ => {
                return Err(ConfigError::new(
                    "<file>",
                    "the configuration must be a mapping of keys to values",
                ))
            }
        }
        Ok(RawConfig {
            values,
            shipped: BTreeSet::new(),
        })
    }

    /// Marks every key so far as shipped with Gregor (the embedded default configuration):
    /// a shipped key that holds its built-in default is not reported as set by the user.
    pub fn mark_shipped(&mut self) {
        self.shipped = self.values.keys().cloned().collect();
    }

    pub fn is_shipped(&self, key: &str) -> bool {
        self.shipped.contains(key)
    }

    /// Sets a key as the user's (a command-line override).
    pub fn set(&mut self, key: &str, value: &str) {
        self.shipped.remove(key);
        self.values.insert(key.to_string(), value.to_string());
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// A key's value as given, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.values.keys()
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// An integer in `min..=max`, or `default` when the key is absent.
    pub fn int(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64, ConfigError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => parse_int(key, v, min, max),
        }
    }

    /// Like [`RawConfig::int`], but an absent or empty value is `None`.
    pub fn optional_int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        match self.values.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => parse_int(key, v, min, max).map(Some),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.values.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(ConfigError::new(
                key,
                format!("`{v}` is not a boolean (true or false)"),
            )),
        }
    }
}

pub(crate) fn parse_int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, format!("`{value}` is not an integer")))?;
    if n < min || n > max {
        return Err(ConfigError::new(
            key,
            format!("{n} is out of range [{min}, {max}]"),
        ));
    }
    Ok(n)
}
