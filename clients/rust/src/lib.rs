//! A client for [sessionstore](https://github.com/sessionstore/sessionstore), the gRPC service
//! that keeps AI agents' conversation history: append, load, watch, list, fork, rewind and trim
//! sessions of JSON messages, stored byte for byte.
//!
//! With the `motosan` feature, [`motosan::RemoteSessionStore`] implements motosan_agent_loop's
//! `SessionStore` trait, so a motosan agent keeps its history in a sessionstore server.
//!
//! See the README for a quick start.

mod client;
mod connect;
mod error;
mod types;

#[cfg(feature = "motosan")]
pub mod motosan;

/// The code generated from proto/ (prost messages and the tonic client).
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("sessionstore.v1");
}

pub use client::{Client, RawClient};
pub use connect::{is_loopback, ConnectOptions, TokenInterceptor, TokenResult};
pub use error::{Code, Error, Result};
pub use pb::SessionMeta;
pub use types::{
    Ack, AppendOptions, FlushAll, Labels, ListOptions, ListOrder, LoadOptions, Rewound,
    StoredMessage, Trimmed, WatchEvent, Window, WindowOptions,
};

/// The address `npm start` serves.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:50051";
