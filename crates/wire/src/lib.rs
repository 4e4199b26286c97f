//! Every contract between Labwright processes, declared once.
//!
//! - `v1` (feature `host-link`): the host link, generated from `proto/labwright/v1/*.proto`.
//! - `host_link` (feature `host-link`): the same link in domain terms (`FromHost`, `ToHost`,
//!   `HostCommand`, `Report`, ...) over `labwright-core` types, and the one `From`/`TryFrom`
//!   mapping to and from `v1`, used by both ends. Only the link modules of the api-server and
//!   the host-agent name `v1`; wire types never leak into `core`.
//! - [`bus`] (feature `bus`): the RabbitMQ contract between the api-server and build workers:
//!   names, routing keys, topology, consumer setup, message encoding.
//! - [`docker`]: the Docker labels and image names of what build workers create.
//! - [`ws`]: WebSocket control messages and close codes (terminal, live view, events); closing an
//!   actix-ws socket with them behind feature `actix-ws`.
//! - `rest` (feature `rest`): the REST views, request bodies and error codes of `/api/v1`, which
//!   the api-server serialises, the CLI deserialises and the web UI's TypeScript types are
//!   generated from.
//!
//! Each contract sits behind a feature so a crate pulls only the transport it speaks: core never
//! depends on this crate, and the CLI takes it without tonic or lapin.

#![allow(clippy::derive_partial_eq_without_eq)]

#[cfg(feature = "bus")]
pub mod bus;
pub mod docker;
pub mod ws;

#[cfg(feature = "host-link")]
pub mod host_link;

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
