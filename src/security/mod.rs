//! Authentication (issue 16): TLS for `SSL`/`SASL_SSL` listeners (`tls.rs`), client
//! certificate principals (`principal.rs`, mapped by `principal_mapping.rs`), SASL PLAIN and SCRAM (`sasl.rs`, `scram.rs`), and
//! the SCRAM credentials they check (`credentials.rs`, in a file as `metadata_file.rs` keeps them). Authorization (`authorizer.rs`):
//! ACL bindings and Kafka's decision (`acl.rs`), the filters of DescribeAcls and DeleteAcls
//! (`acl_filter.rs`) and the durable ACLs (`acl_store.rs`); the APIs ask it through
//! `api/authorization.rs`.
//! The connection drives them (`network/authentication.rs`); listener settings are parsed
//! in `config/listeners.rs`.

pub mod acl;
pub mod acl_filter;
pub mod acl_store;
pub mod authorizer;
pub mod credentials;
pub mod metadata_file;
pub mod principal;
pub mod principal_mapping;
pub mod sasl;
pub mod scram;
pub mod tls;
