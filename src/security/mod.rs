//! Authentication (issue 16): TLS for `SSL`/`SASL_SSL` listeners (`tls.rs`), SASL PLAIN and
//! SCRAM (`sasl.rs`, `scram.rs`), and the SCRAM credentials they check (`credentials.rs`).
//! The connection drives them (`network/authentication.rs`); listener settings are parsed
//! in `config/listeners.rs`.

pub mod credentials;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;
