//! `ssl.principal.mapping.rules`, as Kafka's `SslPrincipalMapper` applies them to a client
//! certificate's subject (RFC 2253, `principal.rs`): a comma-separated list of `DEFAULT` (the
//! subject as it is) and `RULE:pattern/replacement/[L|U]` (when the Java-style regex
//! `pattern` matches the whole subject, the subject with `replacement` substituted, `$1`
//! for groups, then lower- or upper-cased). The first rule that applies names the
//! principal `User:<name>`; when none does, the client is refused, as in Kafka.

use regex::Regex;

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        /// The pattern anchored at both ends (Java's `Matcher.matches`).
        whole: Regex,
        /// The pattern as given (Java's `replaceAll`).
        pattern: Regex,
        /// In the regex crate's syntax (`${1}`, `$$`).
        replacement: String,
        case: Option<char>,
    },
}

/// Parsed rules; compared by their text.
#[derive(Debug, Clone)]
pub struct PrincipalMappingRules {
    rules: Vec<Rule>,
    text: String,
}

impl PartialEq for PrincipalMappingRules {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PrincipalMappingRules {}

impl Default for PrincipalMappingRules {
    fn default() -> Self {
        PrincipalMappingRules {
            rules: vec![Rule::Default],
            text: "DEFAULT".into(),
        }
    }
}

/// Reads up to the next unescaped `/`; `\x` stays two characters (a regex escape).
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A Java replacement string (`$1` groups, `\x` a literal x) in the regex crate's syntax.
fn rust_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut group = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    group.push(d);
                    chars.next();
                }
                out.push_str(&format!("${{{group}}}"));
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

impl PrincipalMappingRules {
    /// Parses the setting; the error says which rule is wrong.
    pub fn parse(text: &str) -> Result<PrincipalMappingRules, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let invalid =
                    || format!("invalid rule `{rest}`: want RULE:pattern/replacement/[L|U]");
                let (pattern, after) = until_slash(after).ok_or_else(invalid)?;
                let (replacement, after) = until_slash(after).ok_or_else(invalid)?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let compile = |p: &str| {
                    Regex::new(p).map_err(|e| format!("invalid pattern `{pattern}` in a rule: {e}"))
                };
                rules.push(Rule::Replace {
                    whole: compile(&format!("^(?:{pattern})$"))?,
                    pattern: compile(pattern)?,
                    replacement: rust_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "invalid rule `{rest}`: want DEFAULT or RULE:pattern/replacement/[L|U]"
                ));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("invalid rule: unexpected `{rest}`")),
            }
        }
        Ok(PrincipalMappingRules {
            rules,
            text: text.trim().to_string(),
        })
    }

    /// The principal's name for a certificate subject, or `None` when no rule applies.
    pub fn name(&self, subject: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(subject.to_string()),
            Rule::Replace {
                whole,
                pattern,
                replacement,
                case,
                ..
            } => {
                if !whole.is_match(subject) {
                    return None;
                }
                let name = pattern
                    .replace_all(subject, replacement.as_str())
                    .into_owned();
                Some(match case {
                    Some('L') => name.to_lowercase(),
                    Some('U') => name.to_uppercase(),
                    _ => name,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_documented_rules_map_subjects_and_the_first_that_applies_wins() {
        let rules = PrincipalMappingRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .name("CN=kafka-client,OU=ServiceUsers,O=Unknown")
                .as_deref(),
            Some("kafka-client")
        );
        assert_eq!(
            rules
                .name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(rules.name("O=x,cn=alice.b").as_deref(), Some("ALICE.B"));
        assert_eq!(
            rules.name("O=nobody").as_deref(),
            Some("O=nobody"),
            "DEFAULT"
        );
        let strict = PrincipalMappingRules::parse("RULE:^CN=([a-z]+)$/$1/").unwrap();
        assert_eq!(strict.name("CN=bob").as_deref(), Some("bob"));
        assert_eq!(strict.name("CN=bob,O=x"), None, "no rule applies");
        assert_eq!(
            PrincipalMappingRules::default().name("CN=a,O=b").as_deref(),
            Some("CN=a,O=b")
        );
    }

    #[test]
    fn escapes_and_malformed_rules() {
        let rules = PrincipalMappingRules::parse(r"RULE:^CN=(.*)\/x$/$1\$/").unwrap();
        assert_eq!(rules.name("CN=a/x").as_deref(), Some("a$"));
        for bad in ["RULE:^CN=(.*)$/$1", "NOPE", "DEFAULT DEFAULT", "RULE:([/x/"] {
            assert!(PrincipalMappingRules::parse(bad).is_err(), "{bad}");
        }
    }
}
