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

/// A Kafka enum with its wire codes and the names its tools print (`TOPIC`, `READ`).
macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($variant = $code,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn from_code(code: i8) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| *v as i8 == code)
            }

            pub fn code(self) -> i8 {
                self as i8
            }

            /// Kafka's name of the value, as its tools print it.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(name))
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType` codes (ANY and UNKNOWN are filter-only).
    ResourceType {
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// Kafka's `AclOperation` codes (ANY and UNKNOWN are filter-only).
    Operation {
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

kafka_enum!(
    /// `PatternType` codes of a binding (ANY and MATCH are filter-only).
    PatternType {
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// `AclPermissionType` codes.
    Permission {
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// The name of the one cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The resource name or principal that matches every one.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";

impl ResourceType {
    /// The operations ACLs on this resource type can grant (Kafka's
    /// `AclEntry.supportedOperations`), whose bits `authorized_operations` fields report.
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::{
            Alter, AlterConfigs, ClusterAction, Create, CreateTokens, Delete, Describe,
            DescribeConfigs, DescribeTokens, IdempotentWrite, Read, TwoPhaseCommit, Write,
        };
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write, TwoPhaseCommit],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
        }
    }
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
                PatternType::Literal => {
                    self.resource_name == WILDCARD || self.resource_name == name
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    fn matches_who(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == WILDCARD || self.host == host)
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

/// Whether `principal` at `host` may do `operation` on some resource of `resource_type`
/// (Kafka's `authorizeByResourceType`; InitProducerId without a transactional id asks it
/// for WRITE on any topic). Allowed when a hard-coded name would be allowed (super users,
/// `allow.everyone.if.no.acl.found`), when a wildcard ALLOW exists, or when some ALLOW
/// pattern is not covered by a DENY: a LITERAL one not denied by the same literal, and
/// neither kind denied by a DENY prefix of it. No operations are implied here.
pub fn authorize_by_resource_type(
    bindings: &[AclBinding],
    settings: &AuthorizerSettings,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
) -> bool {
    if authorize(
        bindings,
        settings,
        principal,
        host,
        operation,
        resource_type,
        "hardcode",
    ) {
        return true;
    }
    let mut denied_literals = std::collections::BTreeSet::new();
    let mut denied_prefixes = std::collections::BTreeSet::new();
    let mut allowed = Vec::new();
    let mut wildcard_allowed = false;
    for b in bindings.iter().filter(|b| {
        b.resource_type == resource_type
            && b.matches_who(principal, host)
            && (b.operation == operation || b.operation == Operation::All)
    }) {
        match (b.permission, b.pattern_type) {
            (Permission::Deny, PatternType::Literal) if b.resource_name == WILDCARD => {
                return false
            }
            (Permission::Deny, PatternType::Literal) => {
                denied_literals.insert(b.resource_name.as_str());
            }
            (Permission::Deny, PatternType::Prefixed) => {
                denied_prefixes.insert(b.resource_name.as_str());
            }
            (Permission::Allow, PatternType::Literal) if b.resource_name == WILDCARD => {
                wildcard_allowed = true;
            }
            (Permission::Allow, pattern) => allowed.push((pattern, b.resource_name.as_str())),
        }
    }
    wildcard_allowed
        || allowed.into_iter().any(|(pattern, name)| {
            let denied_literally =
                pattern == PatternType::Literal && denied_literals.contains(name);
            let denied_by_prefix = denied_prefixes.iter().any(|p| name.starts_with(p));
            !denied_literally && !denied_by_prefix
        })
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

    #[test]
    fn by_resource_type_needs_an_allow_that_no_deny_covers() {
        let settings = AuthorizerSettings::default();
        let write = |name: &str, pattern, permission| AclBinding {
            host: "*".into(),
            ..binding(name, pattern, "User:alice", Operation::Write, permission)
        };
        let any_topic = |acls: &[AclBinding]| {
            authorize_by_resource_type(
                acls,
                &settings,
                "User:alice",
                "127.0.0.1",
                Operation::Write,
                ResourceType::Topic,
            )
        };
        assert!(!any_topic(&[]));
        assert!(any_topic(&[write(
            "t",
            PatternType::Literal,
            Permission::Allow
        )]));
        assert!(!any_topic(&[
            write("t", PatternType::Literal, Permission::Allow),
            write("t", PatternType::Literal, Permission::Deny),
        ]));
        assert!(!any_topic(&[
            write("team-a", PatternType::Prefixed, Permission::Allow),
            write("team", PatternType::Prefixed, Permission::Deny),
        ]));
        assert!(any_topic(&[
            write("team-a", PatternType::Prefixed, Permission::Allow),
            write("team-a-x", PatternType::Prefixed, Permission::Deny),
        ]));
        assert!(!any_topic(&[
            write("*", PatternType::Literal, Permission::Allow),
            write("*", PatternType::Literal, Permission::Deny),
        ]));
        assert!(any_topic(&[write(
            "*",
            PatternType::Literal,
            Permission::Allow
        )]));
        // READ does not imply WRITE, and nothing is implied here.
        assert!(!any_topic(&[AclBinding {
            operation: Operation::Read,
            ..write("t", PatternType::Literal, Permission::Allow)
        }]));
    }
}
