//! The Labwright wire protocol: code generated from `proto/labwright/v1/*.proto`.
//!
//! Only edge crates (api-server, host-agent) depend on this crate; wire types are mapped onto
//! `labwright-core` domain types at the boundary and never leak into `core`.

#![allow(clippy::derive_partial_eq_without_eq)]

pub mod v1 {
    tonic::include_proto!("labwright.v1");
}

/// Encoded `FileDescriptorSet` of every Labwright proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/labwright_descriptor.bin"));
