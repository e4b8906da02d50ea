//! ACL binding filters, as DescribeAcls and DeleteAcls send them (Kafka's
//! `AclBindingFilter`): every field may be "any" (a null string, or the ANY code), and the
//! pattern type may be MATCH, which selects the bindings that would apply to the named
//! resource (the literal name, the `*` literal and every prefix of it).

use super::acl::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// The code of ANY in every ACL enum, and of MATCH among pattern types.
const ANY: i8 = 1;
const MATCH: i8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    Any,
    Match,
    Exactly(PatternType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

/// A filter as it comes off the wire: codes and nullable strings.
#[derive(Debug, Clone)]
pub struct WireFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclBindingFilter {
    /// Validates `wire`; an UNKNOWN (or unassigned) code is an error naming the field.
    pub fn parse(wire: WireFilter) -> Result<AclBindingFilter, String> {
        fn any_or<T>(
            code: i8,
            field: &str,
            parse: fn(i8) -> Option<T>,
        ) -> Result<Option<T>, String> {
            if code == ANY {
                return Ok(None);
            }
            parse(code)
                .map(Some)
                .ok_or_else(|| format!("Filter contains UNKNOWN element: {field} {code}"))
        }
        let pattern =
            match wire.pattern_type {
                ANY => PatternFilter::Any,
                MATCH => PatternFilter::Match,
                code => PatternFilter::Exactly(PatternType::from_code(code).ok_or_else(|| {
                    format!("Filter contains UNKNOWN element: patternType {code}")
                })?),
            };
        Ok(AclBindingFilter {
            resource_type: any_or(wire.resource_type, "resourceType", ResourceType::from_code)?,
            resource_name: wire.resource_name,
            pattern,
            principal: wire.principal,
            host: wire.host,
            operation: any_or(wire.operation, "operation", Operation::from_code)?,
            permission: any_or(wire.permission, "permissionType", Permission::from_code)?,
        })
    }

    /// Whether `binding` is selected (Kafka's `ResourcePatternFilter.matches` and
    /// `AccessControlEntryFilter.matches`).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self
            .resource_type
            .is_some_and(|t| t != binding.resource_type)
        {
            return false;
        }
        if let PatternFilter::Exactly(pattern) = self.pattern {
            if pattern != binding.pattern_type {
                return false;
            }
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        match self.pattern {
            PatternFilter::Any | PatternFilter::Exactly(_) => *name == binding.resource_name,
            PatternFilter::Match => match binding.pattern_type {
                PatternType::Literal => {
                    *name == binding.resource_name || binding.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&binding.resource_name),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    fn filter(name: Option<&str>, pattern_type: i8) -> AclBindingFilter {
        AclBindingFilter::parse(WireFilter {
            resource_type: ResourceType::Topic.code(),
            resource_name: name.map(str::to_string),
            pattern_type,
            principal: None,
            host: None,
            operation: ANY,
            permission: ANY,
        })
        .unwrap()
    }

    #[test]
    fn match_selects_what_applies_to_a_name_and_any_selects_the_exact_name() {
        let literal = binding("orders", PatternType::Literal);
        let wildcard = binding("*", PatternType::Literal);
        let prefix = binding("ord", PatternType::Prefixed);
        let other = binding("payments", PatternType::Literal);
        let matching = filter(Some("orders"), MATCH);
        assert!(matching.matches(&literal));
        assert!(matching.matches(&wildcard));
        assert!(matching.matches(&prefix));
        assert!(!matching.matches(&other));
        let any = filter(Some("orders"), ANY);
        assert!(any.matches(&literal));
        assert!(!any.matches(&wildcard));
        assert!(!any.matches(&prefix));
        let prefixed = filter(Some("ord"), PatternType::Prefixed.code());
        assert!(prefixed.matches(&prefix));
        assert!(!prefixed.matches(&literal));
        assert!(filter(None, ANY).matches(&other));
        assert!(!filter(None, PatternType::Prefixed.code()).matches(&other));
    }

    #[test]
    fn unknown_codes_are_refused_naming_the_field() {
        let wire = WireFilter {
            resource_type: 0,
            resource_name: None,
            pattern_type: ANY,
            principal: None,
            host: None,
            operation: ANY,
            permission: ANY,
        };
        let error = AclBindingFilter::parse(wire.clone()).unwrap_err();
        assert!(error.contains("resourceType"), "{error}");
        let error = AclBindingFilter::parse(WireFilter {
            resource_type: ANY,
            pattern_type: 0,
            ..wire
        })
        .unwrap_err();
        assert!(error.contains("patternType"), "{error}");
    }
}
