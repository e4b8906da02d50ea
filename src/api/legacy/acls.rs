//! DescribeAcls, CreateAcls and DeleteAcls v0, asked as v1. v0 came before prefixed ACLs
//! (KIP-290): its filters and bindings have no pattern type, which means LITERAL, and its
//! answers leave the pattern type out.
//!
//! ```text
//! DescribeAcls v0 request:   resource_type i8 | resource_name string (nullable) | principal string (nullable)
//!                            | host string (nullable) | operation i8 | permission_type i8
//! DescribeAcls v0 response:  throttle_time_ms i32 | error_code i16 | error_message string
//!                            | [resource_type i8 | resource_name string | [principal string | host string
//!                            | operation i8 | permission_type i8]]
//! CreateAcls v0 request:     [resource_type i8 | resource_name string | principal string | host string
//!                            | operation i8 | permission_type i8]
//! CreateAcls v0 response:    v1's: throttle_time_ms i32 | [error_code i16 | error_message string]
//! DeleteAcls v0 request:     [a DescribeAcls v0 filter]
//! DeleteAcls v0 response:    throttle_time_ms i32 | [error_code i16 | error_message string
//!                            | [error_code i16 | error_message string | resource_type i8 | resource_name string
//!                            | principal string | host string | operation i8 | permission_type i8]]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::wire::{put_array_len, put_nullable_string, put_string, Reader};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest version of the three ACL APIs Kafka 4 serves.
const FLOOR: i16 = 1;
/// Kafka's PatternType.LITERAL: the only kind of binding before KIP-290.
const LITERAL: i8 = 3;

/// A v0 filter: (resource type, name, principal, host, operation, permission type).
type Filter = (i8, Option<String>, Option<String>, Option<String>, i8, i8);

fn read_filter(r: &mut Reader) -> Result<Filter, RequestError> {
    Ok((
        r.i8()?,
        r.nullable_string()?,
        r.nullable_string()?,
        r.nullable_string()?,
        r.i8()?,
        r.i8()?,
    ))
}

fn str_bytes(s: Option<String>) -> Option<StrBytes> {
    s.map(StrBytes::from_string)
}

pub fn describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let (resource_type, name, principal, host, operation, permission) =
        read_filter(&mut Reader::new(body, "DescribeAcls v0"))?;
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(resource_type)
        .with_resource_name_filter(str_bytes(name))
        .with_pattern_type_filter(LITERAL)
        .with_principal_filter(str_bytes(principal))
        .with_host_filter(str_bytes(host))
        .with_operation(operation)
        .with_permission_type(permission);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        |response: DescribeAclsResponse| {
            let mut out = BytesMut::new();
            out.put_i32(response.throttle_time_ms);
            out.put_i16(response.error_code);
            put_nullable_string(&mut out, response.error_message.as_deref());
            put_array_len(&mut out, response.resources.len());
            for res in &response.resources {
                out.put_i8(res.resource_type);
                put_string(&mut out, &res.resource_name);
                put_array_len(&mut out, res.acls.len());
                for acl in &res.acls {
                    put_string(&mut out, &acl.principal);
                    put_string(&mut out, &acl.host);
                    out.put_i8(acl.operation);
                    out.put_i8(acl.permission_type);
                }
            }
            out
        },
    )
}

pub fn create(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let mut r = Reader::new(body, "CreateAcls v0");
    let mut creations = Vec::new();
    for _ in 0..r.array_len()? {
        creations.push(
            AclCreation::default()
                .with_resource_type(r.i8()?)
                .with_resource_name(StrBytes::from_string(r.string()?))
                .with_resource_pattern_type(LITERAL)
                .with_principal(StrBytes::from_string(r.string()?))
                .with_host(StrBytes::from_string(r.string()?))
                .with_operation(r.i8()?)
                .with_permission_type(r.i8()?),
        );
    }
    let request = CreateAclsRequest::default().with_creations(creations);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        |response: CreateAclsResponse| {
            let mut out = BytesMut::new();
            // v0's answer is v1's.
            if let Err(e) = response.encode(&mut out, FLOOR) {
                tracing::error!(error = %e, "re-encoding a CreateAcls answer failed");
            }
            out
        },
    )
}

pub fn delete(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let mut r = Reader::new(body, "DeleteAcls v0");
    let mut filters = Vec::new();
    for _ in 0..r.array_len()? {
        let (resource_type, name, principal, host, operation, permission) = read_filter(&mut r)?;
        filters.push(
            DeleteAclsFilter::default()
                .with_resource_type_filter(resource_type)
                .with_resource_name_filter(str_bytes(name))
                .with_pattern_type_filter(LITERAL)
                .with_principal_filter(str_bytes(principal))
                .with_host_filter(str_bytes(host))
                .with_operation(operation)
                .with_permission_type(permission),
        );
    }
    let request = DeleteAclsRequest::default().with_filters(filters);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        |response: DeleteAclsResponse| {
            let mut out = BytesMut::new();
            out.put_i32(response.throttle_time_ms);
            put_array_len(&mut out, response.filter_results.len());
            for f in &response.filter_results {
                out.put_i16(f.error_code);
                put_nullable_string(&mut out, f.error_message.as_deref());
                put_array_len(&mut out, f.matching_acls.len());
                for m in &f.matching_acls {
                    out.put_i16(m.error_code);
                    put_nullable_string(&mut out, m.error_message.as_deref());
                    out.put_i8(m.resource_type);
                    put_string(&mut out, &m.resource_name);
                    put_string(&mut out, &m.principal);
                    put_string(&mut out, &m.host);
                    out.put_i8(m.operation);
                    out.put_i8(m.permission_type);
                }
            }
            out
        },
    )
}
