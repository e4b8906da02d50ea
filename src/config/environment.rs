//! Configuration from environment variables, for containers: `KAFKA_ADVERTISED_LISTENERS`
//! or `GREGOR_ADVERTISED_LISTENERS` sets `advertised.listeners`. The name after the prefix
//! is lower-cased and `_` becomes `.`, `__` becomes `_` and `___` becomes `-`, as the
//! Confluent and Apache Kafka images map them (`KAFKA_LISTENER_NAME_SASL__SSL_...` is
//! `listener.name.sasl_ssl...`).
//!
//! Variables apply over the configuration file and under command-line overrides. Only
//! names that map to a broker setting are taken: `KAFKA_*` names are also used by Kafka's
//! own scripts (`KAFKA_HOME`, `KAFKA_OPTS`) and are skipped quietly; a `GREGOR_*` name that
//! maps to no setting is returned so that `main` can warn about it.

/// What the environment sets: `(key, value)` pairs, and the `GREGOR_*` names that map to
/// no setting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FromEnvironment {
    pub settings: Vec<(String, String)>,
    pub unknown: Vec<String>,
}

/// The settings `vars` (name, value) hold; `known` says whether a key is a broker setting.
pub fn settings(
    vars: impl IntoIterator<Item = (String, String)>,
    known: impl Fn(&str) -> bool,
) -> FromEnvironment {
    let mut out = FromEnvironment::default();
    let mut vars: Vec<(String, String)> = vars.into_iter().collect();
    // KAFKA_ first so that GREGOR_ wins when both name the same key.
    vars.sort_by_key(|(name, _)| !name.starts_with("KAFKA_"));
    for (name, value) in vars {
        let (rest, strict) = if let Some(rest) = name.strip_prefix("GREGOR_") {
            // The test suites' own switches, not settings.
            (rest, !rest.starts_with("TEST_"))
        } else if let Some(rest) = name.strip_prefix("KAFKA_") {
            (rest, false)
        } else {
            continue;
        };
        let key = key_of(rest);
        if known(&key) {
            out.settings.retain(|(k, _)| *k != key);
            out.settings.push((key, value));
        } else if strict {
            out.unknown.push(name);
        }
    }
    out
}

/// `ADVERTISED_LISTENERS` → `advertised.listeners`; `__` → `_`, `___` → `-`.
pub fn key_of(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            key.push(c.to_ascii_lowercase());
            continue;
        }
        let mut run = 1;
        while chars.peek() == Some(&'_') {
            chars.next();
            run += 1;
        }
        // Runs longer than three are read as threes, then what is left.
        for _ in 0..run / 3 {
            key.push('-');
        }
        match run % 3 {
            1 => key.push('.'),
            2 => key.push('_'),
            _ => {}
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_map_as_the_kafka_images_map_them() {
        assert_eq!(key_of("ADVERTISED_LISTENERS"), "advertised.listeners");
        assert_eq!(key_of("LOG_DIRS"), "log.dirs");
        assert_eq!(
            key_of("LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG"),
            "listener.name.sasl_ssl.plain.sasl.jaas.config"
        );
        assert_eq!(key_of("SOME___DASHED"), "some-dashed");
    }

    #[test]
    fn only_settings_are_taken_and_gregor_wins_over_kafka() {
        let known = |k: &str| matches!(k, "log.dirs" | "advertised.listeners" | "num.partitions");
        let got = settings(
            vars(&[
                ("GREGOR_LOG_DIRS", "/data"),
                ("KAFKA_LOG_DIRS", "/kafka"),
                ("KAFKA_HOME", "/opt/kafka"),
                ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://host:9092"),
                ("GREGOR_TEST_LOG_LEVEL", "debug"),
                ("GREGOR_NUM_PARTITIONZ", "3"),
                ("PATH", "/bin"),
            ]),
            known,
        );
        let mut taken = got.settings.clone();
        taken.sort();
        assert_eq!(
            taken,
            vec![
                (
                    "advertised.listeners".to_string(),
                    "PLAINTEXT://host:9092".to_string()
                ),
                ("log.dirs".to_string(), "/data".to_string()),
            ]
        );
        assert_eq!(got.unknown, vec!["GREGOR_NUM_PARTITIONZ".to_string()]);
    }
}
