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

/// Why a filter cannot be used: an UNKNOWN (0) code, or a code Kafka does not assign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// Code 0 in `field`: Kafka refuses the request.
    Unknown(&'static str),
    /// An unassigned code in a pattern field (`resourceType`, `patternType`) or an entry
    /// field (`operation`, `permissionType`): such a filter selects nothing.
    Unassigned { pattern_field: bool },
}

impl FilterError {
    /// Kafka's message for the filter in DescribeAcls and DeleteAcls answers.
    pub fn message(&self) -> String {
        match self {
            FilterError::Unknown(field) => format!("Filter contains UNKNOWN element: {field}"),
            FilterError::Unassigned {
                pattern_field: true,
            } => "Unknown patternFilter.".into(),
            FilterError::Unassigned {
                pattern_field: false,
            } => "Unknown entryFilter.".into(),
        }
    }
}

impl AclBindingFilter {
    /// Validates `wire`.
    pub fn parse(wire: WireFilter) -> Result<AclBindingFilter, FilterError> {
        fn any_or<T>(
            code: i8,
            field: &'static str,
            pattern_field: bool,
            parse: fn(i8) -> Option<T>,
        ) -> Result<Option<T>, FilterError> {
            match code {
                ANY => Ok(None),
                0 => Err(FilterError::Unknown(field)),
                _ => parse(code)
                    .map(Some)
                    .ok_or(FilterError::Unassigned { pattern_field }),
            }
        }
        let pattern = match wire.pattern_type {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            0 => return Err(FilterError::Unknown("patternType")),
            code => PatternFilter::Exactly(PatternType::from_code(code).ok_or(
                FilterError::Unassigned {
                    pattern_field: true,
                },
            )?),
        };
        Ok(AclBindingFilter {
            resource_type: any_or(
                wire.resource_type,
                "resourceType",
                true,
                ResourceType::from_code,
            )?,
            resource_name: wire.resource_name,
            pattern,
            principal: wire.principal,
            host: wire.host,
            operation: any_or(wire.operation, "operation", false, Operation::from_code)?,
            permission: any_or(
                wire.permission,
                "permissionType",
                false,
                Permission::from_code,
            )?,
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
    fn unknown_and_unassigned_codes_are_told_apart() {
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
        assert_eq!(error, FilterError::Unknown("resourceType"));
        let error = AclBindingFilter::parse(WireFilter {
            resource_type: ANY,
            pattern_type: 0,
            ..wire.clone()
        })
        .unwrap_err();
        assert_eq!(error, FilterError::Unknown("patternType"));
        let error = AclBindingFilter::parse(WireFilter {
            resource_type: ANY,
            operation: 99,
            ..wire
        })
        .unwrap_err();
        assert_eq!(error.message(), "Unknown entryFilter.");
    }
}
