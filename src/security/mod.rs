//! Authentication (issue 16): TLS for `SSL`/`SASL_SSL` listeners (`tls.rs`), client
//! certificate principals (`principal.rs`), SASL PLAIN and SCRAM (`sasl.rs`, `scram.rs`), and
//! the SCRAM credentials they check (`credentials.rs`). `acl.rs` is the authorization
//! decision that the ACL APIs and per-API checks (not yet built) will use.
//! The connection drives them (`network/authentication.rs`); listener settings are parsed
//! in `config/listeners.rs`.

pub mod acl;
pub mod credentials;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;
