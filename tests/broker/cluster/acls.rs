//! ACLs and SCRAM credentials changed through one broker hold at every broker.

use super::*;

/// Produces one record to `topic` through `addr`; the partition's error code.
fn produce_once(addr: &str, topic: &str) -> i16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    crate::acls::produce(&mut stream, topic, None)
}

/// Waits until a produce to `topic` through each of `addrs` answers `code`.
fn wait_produce_code(addrs: &[String], topic: &str, code: i16) {
    for addr in addrs {
        wait_for(30, || {
            let got = produce_once(addr, topic);
            (got == code)
                .then_some(())
                .ok_or_else(|| format!("{addr} answers {got}, not {code}"))
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_and_credentials_changed_through_one_broker_hold_at_every_broker() {
    use crate::acls::{acl, create_acls, DENY, LITERAL, TOPIC, TOPIC_AUTHORIZATION_FAILED, WRITE};
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let Some((_one, _engines, _dirs, brokers)) =
        three_brokers("acls_and_credentials_changed_through_one_broker_hold_at_every_broker").await
    else {
        return;
    };
    let addrs: Vec<String> = brokers.iter().map(|b| b.addr.clone()).collect();
    create_topic(&bootstrap(&brokers), "vault", 1).await;
    wait_produce_code(&addrs, "vault", 0);

    // A DENY created through the first broker holds at every broker.
    let mut first = std::net::TcpStream::connect(&addrs[0]).unwrap();
    let created = create_acls(
        &mut first,
        vec![acl(TOPIC, "vault", LITERAL, "User:*", WRITE, DENY)],
    );
    assert_eq!(created.results[0].error_code, 0);
    wait_produce_code(&addrs, "vault", TOPIC_AUTHORIZATION_FAILED);

    // Deleted through the third broker, it is gone everywhere.
    let deleted: DeleteAclsResponse = crate::raw::call(
        &addrs[2],
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(StrBytes::from_static_str("vault")))
            .with_pattern_type_filter(LITERAL)
            .with_operation(WRITE)
            .with_permission_type(DENY)
            .with_host_filter(None)
            .with_principal_filter(None)]),
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    wait_produce_code(&addrs, "vault", 0);

    // SCRAM credentials set through the second broker are described by the others.
    let altered: AlterUserScramCredentialsResponse = crate::raw::call(
        &addrs[1],
        ApiKey::AlterUserScramCredentials,
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_static_str("dora"))
                .with_mechanism(1)
                .with_iterations(4096)
                .with_salt(bytes::Bytes::from_static(b"0123456789abcdef"))
                .with_salted_password(bytes::Bytes::from(vec![7u8; 32])),
        ]),
    );
    assert_eq!(altered.results[0].error_code, 0, "{altered:?}");
    for addr in &addrs {
        wait_for(30, || {
            let described: DescribeUserScramCredentialsResponse = crate::raw::call(
                addr,
                ApiKey::DescribeUserScramCredentials,
                0,
                &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                    UserName::default().with_name(StrBytes::from_static_str("dora")),
                ])),
            );
            (described.results[0].error_code == 0
                && described.results[0].credential_infos.len() == 1)
                .then_some(())
                .ok_or_else(|| format!("{addr}: {described:?}"))
        });
    }
}
