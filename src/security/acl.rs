//! ACLs and the authorization decision, as Kafka's `StandardAuthorizer` makes it (the
//! ground for `authorizer.class.name`; the ACL APIs and the checks in each API build on
//! it). A request is allowed when:
//!
//! 1. its principal is in `super.users`; else
//! 2. no DENY binding matches (DENY wins); and
//! 3. an ALLOW binding matches, or no binding at all exists for the resource and
//!    `allow.everyone.if.no.acl.found` is set.
//!
//! A binding matches a resource by pattern (LITERAL: the name, or `*` for every name;
//! PREFIXED: names starting with it), a principal (`User:alice`, or `User:*`), a host (the
//! client's address, or `*`) and an operation: the same one, ALL, or for DESCRIBE any of
//! READ, WRITE, DELETE and ALTER, and for DESCRIBE_CONFIGS also ALTER_CONFIGS (Kafka's
//! implied operations; DENY bindings imply nothing beyond themselves and ALL).

/// Kafka's `ResourceType` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

/// Kafka's `AclOperation` codes (ANY and UNKNOWN are filter-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

/// `PatternType` codes: LITERAL (3) and PREFIXED (4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    Literal = 3,
    Prefixed = 4,
}

/// `AclPermissionType`: DENY (2), ALLOW (3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

/// One ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl AclBinding {
    fn matches_resource(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == "*" || self.resource_name == name,
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    fn matches_who(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == "*" || self.host == host)
    }

    /// Whether this binding covers `operation` (Kafka's implied operations for ALLOW).
    fn covers(&self, operation: Operation) -> bool {
        if self.operation == operation || self.operation == Operation::All {
            return true;
        }
        self.permission == Permission::Allow
            && match operation {
                Operation::Describe => matches!(
                    self.operation,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ),
                Operation::DescribeConfigs => self.operation == Operation::AlterConfigs,
                _ => false,
            }
    }
}

/// The decision for `principal` at `host` doing `operation` on a resource.
pub fn authorize(
    bindings: &[AclBinding],
    settings: &AuthorizerSettings,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    resource_name: &str,
) -> bool {
    if settings.super_users.iter().any(|s| s == principal) {
        return true;
    }
    let mut any_for_resource = false;
    let mut allowed = false;
    for b in bindings
        .iter()
        .filter(|b| b.matches_resource(resource_type, resource_name))
    {
        any_for_resource = true;
        if !b.matches_who(principal, host) || !b.covers(operation) {
            continue;
        }
        match b.permission {
            Permission::Deny => return false,
            Permission::Allow => allowed = true,
        }
    }
    allowed || (!any_for_resource && settings.allow_everyone_if_no_acl_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    #[test]
    fn kafkas_rules_deny_wins_implied_describe_prefixes_wildcards_super_users() {
        let settings = AuthorizerSettings {
            super_users: vec!["User:admin".into()],
            allow_everyone_if_no_acl_found: false,
        };
        let acls = vec![
            binding(
                "orders",
                PatternType::Literal,
                "User:alice",
                Operation::Write,
                Permission::Allow,
            ),
            binding(
                "pay-",
                PatternType::Prefixed,
                "User:*",
                Operation::Read,
                Permission::Allow,
            ),
            binding(
                "pay-secret",
                PatternType::Literal,
                "User:bob",
                Operation::All,
                Permission::Deny,
            ),
            binding(
                "*",
                PatternType::Literal,
                "User:carol",
                Operation::AlterConfigs,
                Permission::Allow,
            ),
        ];
        let can = |who: &str, op, name: &str| {
            authorize(
                &acls,
                &settings,
                who,
                "127.0.0.1",
                op,
                ResourceType::Topic,
                name,
            )
        };
        assert!(can("User:alice", Operation::Write, "orders"));
        assert!(
            can("User:alice", Operation::Describe, "orders"),
            "WRITE implies DESCRIBE"
        );
        assert!(!can("User:alice", Operation::Read, "orders"));
        assert!(
            can("User:bob", Operation::Read, "pay-in"),
            "prefix and wildcard principal"
        );
        assert!(!can("User:bob", Operation::Read, "pay-secret"), "DENY wins");
        assert!(can("User:alice", Operation::Read, "pay-secret"));
        assert!(
            can("User:carol", Operation::DescribeConfigs, "anything"),
            "ALTER_CONFIGS implies DESCRIBE_CONFIGS"
        );
        assert!(!can("User:carol", Operation::Read, "anything"));
        assert!(
            can("User:admin", Operation::Delete, "orders"),
            "super users skip ACLs"
        );
        // No binding at all for a resource: allow.everyone.if.no.acl.found decides.
        assert!(!can("User:dave", Operation::Read, "lonely"));
        let open = AuthorizerSettings {
            allow_everyone_if_no_acl_found: true,
            ..settings.clone()
        };
        assert!(authorize(
            &[],
            &open,
            "User:dave",
            "h",
            Operation::Read,
            ResourceType::Topic,
            "lonely"
        ));
        // ...but a resource with bindings is closed to anyone they do not allow.
        assert!(!authorize(
            &acls,
            &open,
            "User:dave",
            "h",
            Operation::Write,
            ResourceType::Topic,
            "orders"
        ));
        // Hosts.
        let from_one_host = vec![AclBinding {
            host: "10.0.0.1".into(),
            ..binding(
                "t",
                PatternType::Literal,
                "User:alice",
                Operation::Read,
                Permission::Allow,
            )
        }];
        assert!(authorize(
            &from_one_host,
            &settings,
            "User:alice",
            "10.0.0.1",
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        assert!(!authorize(
            &from_one_host,
            &settings,
            "User:alice",
            "10.0.0.2",
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
    }
}
