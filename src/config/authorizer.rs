//! `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`: whether
//! requests are authorized against ACLs, and who skips them.

use super::{ConfigError, RawConfig};
use crate::security::acl::AuthorizerSettings;
use crate::security::authorizer::STANDARD_AUTHORIZER;

/// The authorizer's settings, or `None` when `authorizer.class.name` is empty (every
/// request allowed, and the ACL APIs answer SECURITY_DISABLED).
pub fn parse(raw: &RawConfig) -> Result<Option<AuthorizerSettings>, ConfigError> {
    let class = raw.string("authorizer.class.name", "");
    match class.trim() {
        "" => return Ok(None),
        STANDARD_AUTHORIZER => {}
        other => {
            return Err(ConfigError::new(
                "authorizer.class.name",
                format!("`{other}` is not available: use {STANDARD_AUTHORIZER} (ACLs kept by the broker), or leave it empty"),
            ))
        }
    }
    let mut super_users = Vec::new();
    for user in raw
        .string("super.users", "")
        .split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        if !user.contains(':') {
            return Err(ConfigError::new(
                "super.users",
                format!(
                    "`{user}` is not a principal: write TYPE:NAME (User:admin), separated by `;`"
                ),
            ));
        }
        super_users.push(user.to_string());
    }
    Ok(Some(AuthorizerSettings {
        super_users,
        allow_everyone_if_no_acl_found: raw.bool("allow.everyone.if.no.acl.found", false)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_authorizer_with_its_super_users_and_nothing_else() {
        let raw = RawConfig::from_yaml("super.users: User:admin\n").unwrap();
        assert_eq!(parse(&raw).unwrap(), None, "no class: no authorizer");
        let raw = RawConfig::from_yaml(&format!(
            "authorizer.class.name: {STANDARD_AUTHORIZER}\nsuper.users: User:admin; User:CN=ops\nallow.everyone.if.no.acl.found: true\n"
        ))
        .unwrap();
        assert_eq!(
            parse(&raw).unwrap(),
            Some(AuthorizerSettings {
                super_users: vec!["User:admin".into(), "User:CN=ops".into()],
                allow_everyone_if_no_acl_found: true,
            })
        );
        let raw = RawConfig::from_yaml(
            "authorizer.class.name: kafka.security.authorizer.AclAuthorizer\n",
        )
        .unwrap();
        assert_eq!(parse(&raw).unwrap_err().key, "authorizer.class.name");
        let raw = RawConfig::from_yaml(&format!(
            "authorizer.class.name: {STANDARD_AUTHORIZER}\nsuper.users: admin\n"
        ))
        .unwrap();
        assert_eq!(parse(&raw).unwrap_err().key, "super.users");
    }
}
