//! Every contract between Labwright processes, declared once.
//!
//! - `v1` (feature `host-link`): the host link, generated from `proto/labwright/v1/*.proto`.
//!   Wire types are mapped onto `labwright-core` domain types here, once for both ends, and never
//!   leak into `core`.
//! - `rest` (feature `rest`): the REST views, request bodies and error codes of `/api/v1`, which
//!   the api-server serialises, the CLI deserialises and the web UI's TypeScript types are
//!   generated from.
//!
//! Each contract sits behind a feature so a crate pulls only the transport it speaks: core never
//! depends on this crate, and the CLI takes it without tonic or lapin.

#![allow(clippy::derive_partial_eq_without_eq)]

#[cfg(feature = "rest")]
pub mod rest;

#[cfg(feature = "host-link")]
pub mod v1 {
    tonic::include_proto!("labwright.v1");
}

/// Encoded `FileDescriptorSet` of every Labwright proto file, for gRPC reflection.
#[cfg(feature = "host-link")]
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/labwright_descriptor.bin"));
