//! What the calls take and return, beside the generated `SessionMeta`.

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::pb;

/// A session's labels (`user=alice`).
pub type Labels = HashMap<String, String>;

/// A stored message: its seq (its position in the session, from 0) and its JSON text, byte for
/// byte as it was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub json: String,
}

impl StoredMessage {
    /// The message as a `T` (serde_json).
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.json)
    }
}

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The seq of the first message appended.
    pub first_seq: u64,
    /// The session's length after the append.
    pub next_seq: u64,
    /// Messages `[0, durable_count)` are fsynced.
    pub durable_count: u64,
}

/// Options of [`Client::append_with`](crate::Client::append_with).
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// The seq the first message must get, else `Aborted` with
    /// [`Error::actual_length`](crate::Error::actual_length); a retry of a stored request
    /// stores nothing twice.
    pub expected_seq: Option<u64>,
    /// Acknowledge only once the messages are fsynced.
    pub sync: bool,
    /// The session's labels if this append creates it (an existing session keeps its own).
    pub labels: Labels,
}

/// Options of [`Client::load_with`](crate::Client::load_with).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// The first seq returned.
    pub from_seq: u64,
    /// At most this many (0: no limit).
    pub limit: u64,
}

/// Options of [`Client::load_window`](crate::Client::load_window).
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowOptions {
    /// Nothing before this seq.
    pub from_seq: u64,
    /// At most this many messages (0: no limit).
    pub limit: u64,
    /// At most this many bytes of JSON, UTF-8 as stored (0: no limit).
    pub max_bytes: u64,
    /// Starting at a turn boundary, never with a tool result whose call is outside the window.
    pub whole_turns: bool,
}

/// A context window: the newest messages within the bounds, and the ids of the tool calls in it
/// that have no result (with `whole_turns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub messages: Vec<StoredMessage>,
    pub dangling_call_ids: Vec<String>,
}

pub use pb::ListOrder;

/// Options of [`Client::list`](crate::Client::list).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only sessions whose id starts with this.
    pub prefix: String,
    /// Only sessions whose labels match, in Kubernetes syntax:
    /// `user=alice,env!=prod,team,!draft,tier in (a,b),tier notin (c)`.
    pub label_selector: String,
    /// By id (the default), or most recently appended first.
    pub order: ListOrder,
    /// Sessions per request (0: the server's default, 100; at most 1000).
    pub page_size: u32,
}

/// What [`Client::flush_all`](crate::Client::flush_all) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushAll {
    /// How many messages it wrote.
    pub flushed: u64,
    /// The sessions it could not flush, each with its status code and why; the others were.
    pub failures: Vec<pb::FlushFailure>,
}

/// What a rewind dropped, and the session's meta after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewound {
    /// The dropped messages, oldest first.
    pub dropped: Vec<StoredMessage>,
    pub meta: pb::SessionMeta,
}

/// What a trim dropped, and the session's meta after it (`meta.first_seq` is the first kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Trimmed {
    /// How many messages this call dropped.
    pub count: u64,
    pub meta: pb::SessionMeta,
}

/// What a watch yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The next message.
    Message(StoredMessage),
    /// The session was rewound to this seq, below what was yielded: the messages from it on are
    /// gone, and the next message yielded has this seq.
    Rewound { to_seq: u64 },
}

/// The messages of a page whose first has seq `first_seq`.
pub(crate) fn numbered(
    first_seq: u64,
    messages: Vec<String>,
) -> impl Iterator<Item = StoredMessage> {
    (first_seq..)
        .zip(messages)
        .map(|(seq, json)| StoredMessage { seq, json })
}
