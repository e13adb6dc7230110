//! The client: one method per call of the API.

use std::time::Duration;

use futures_core::Stream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::connect::{ConnectOptions, TokenInterceptor};
use crate::error::{describe, Code, Error, Result};
use crate::pb::session_store_client::SessionStoreClient;
use crate::pb::{self, SessionMeta};
use crate::types::*;

/// The generated client this one wraps, with the token interceptor.
pub type RawClient = SessionStoreClient<InterceptedService<Channel, TokenInterceptor>>;

const DEFAULT_WATCH_RETRIES: u32 = 10;

/// A client of a sessionstore server. Cheap to clone: clones share one connection, which is
/// re-established after it drops (a server restart), and may be used from many tasks at once.
#[derive(Clone)]
pub struct Client {
    raw: RawClient,
    watch_retries: u32,
}

impl Client {
    /// Connects to `address` (host:port): in plaintext to a loopback address, else over TLS
    /// trusting the system's CAs. `Unavailable` if the server cannot be reached.
    pub async fn connect(address: &str) -> Result<Self> {
        Self::connect_with(address, ConnectOptions::new()).await
    }

    /// Connects to `address` with `options` (TLS, certificates, a token).
    pub async fn connect_with(address: &str, options: ConnectOptions) -> Result<Self> {
        let (endpoint, interceptor) = options.endpoint(address)?;
        let channel = endpoint.connect().await.map_err(|error| {
            Error::new(
                Code::Unavailable,
                format!("cannot connect to {address}: {}", describe(&error)),
            )
        })?;
        Ok(Self {
            raw: SessionStoreClient::with_interceptor(channel, interceptor),
            watch_retries: options.watch_retries.unwrap_or(DEFAULT_WATCH_RETRIES),
        })
    }

    /// The generated client, for anything this one does not cover.
    pub fn raw(&self) -> RawClient {
        self.raw.clone()
    }

    /// Appends `messages` (each one JSON object, stored byte for byte) to the session, in order.
    pub async fn append<I, S>(&self, session_id: &str, messages: I) -> Result<Ack>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.append_with(session_id, messages, AppendOptions::default())
            .await
    }

    /// [`append`](Self::append) with an expected seq, sync or labels.
    pub async fn append_with<I, S>(
        &self,
        session_id: &str,
        messages: I,
        options: AppendOptions,
    ) -> Result<Ack>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let request = pb::AppendRequest {
            session_id: session_id.to_string(),
            messages: messages.into_iter().map(Into::into).collect(),
            expected_seq: options.expected_seq,
            sync: options.sync,
            labels: options.labels,
        };
        let mut acks = self
            .raw
            .clone()
            .append(tokio_stream_once(request))
            .await?
            .into_inner();
        match acks.message().await? {
            Some(ack) => Ok(Ack {
                first_seq: ack.first_seq,
                next_seq: ack.next_seq,
                durable_count: ack.durable_count,
            }),
            None => Err(Error::new(
                Code::Unknown,
                "the Append stream ended without an ack",
            )),
        }
    }

    /// The session's messages (empty for an unknown session).
    pub async fn load(&self, session_id: &str) -> Result<Vec<StoredMessage>> {
        self.load_with(session_id, LoadOptions::default()).await
    }

    /// The session's messages from `from_seq`, at most `limit`. `OutOfRange` with
    /// [`Error::first_seq`] from a seq below a trimmed session's first kept one.
    pub async fn load_with(
        &self,
        session_id: &str,
        options: LoadOptions,
    ) -> Result<Vec<StoredMessage>> {
        let request = pb::LoadRequest {
            session_id: session_id.to_string(),
            from_seq: options.from_seq,
            limit: options.limit,
            ..Default::default()
        };
        Ok(self.load_pages(request).await?.messages)
    }

    /// The last `n` messages, in order.
    pub async fn last(&self, session_id: &str, n: u64) -> Result<Vec<StoredMessage>> {
        let request = pb::LoadRequest {
            session_id: session_id.to_string(),
            limit: n,
            last: true,
            ..Default::default()
        };
        Ok(self.load_pages(request).await?.messages)
    }

    /// A context window that a model API accepts: the newest messages within the bounds (see
    /// [`WindowOptions`]), with the ids of the tool calls in it left without a result.
    pub async fn load_window(&self, session_id: &str, options: WindowOptions) -> Result<Window> {
        let request = pb::LoadRequest {
            session_id: session_id.to_string(),
            from_seq: options.from_seq,
            limit: options.limit,
            max_bytes: options.max_bytes,
            whole_turns: options.whole_turns,
            last: false,
        };
        self.load_pages(request).await
    }

    async fn load_pages(&self, request: pb::LoadRequest) -> Result<Window> {
        let mut pages = self.raw.clone().load(request).await?.into_inner();
        let mut window = Window {
            messages: Vec::new(),
            dangling_call_ids: Vec::new(),
        };
        while let Some(page) = pages.message().await? {
            window
                .messages
                .extend(numbered(page.first_seq, page.messages));
            window.dangling_call_ids.extend(page.dangling_call_ids);
        }
        Ok(window)
    }

    /// The session's metadata; `None` for an unknown session.
    pub async fn meta(&self, session_id: &str) -> Result<Option<SessionMeta>> {
        let request = pb::LoadMetaRequest {
            session_id: session_id.to_string(),
        };
        match self.raw.clone().load_meta(request).await {
            Ok(response) => Ok(response.into_inner().meta),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    /// The sessions, fetched page by page as the stream is read.
    pub fn list(
        &self,
        options: ListOptions,
    ) -> impl Stream<Item = Result<SessionMeta>> + Send + 'static {
        let mut raw = self.raw.clone();
        async_stream::try_stream! {
            let mut page_token = String::new();
            loop {
                let request = pb::ListRequest {
                    page_size: options.page_size,
                    page_token,
                    prefix: options.prefix.clone(),
                    label_selector: options.label_selector.clone(),
                    order: options.order.into(),
                };
                let page = raw.list(request).await.map_err(Error::from)?.into_inner();
                for meta in page.sessions {
                    yield meta;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
    }

    /// Sets labels (an empty value removes one), only at `expected_revision` if given (else
    /// `Aborted` with [`Error::actual_labels_revision`]); the new meta.
    pub async fn set_labels(
        &self,
        session_id: &str,
        labels: Labels,
        expected_revision: Option<u64>,
    ) -> Result<SessionMeta> {
        let request = pb::SetLabelsRequest {
            session_id: session_id.to_string(),
            labels,
            expected_labels_revision: expected_revision,
        };
        let response = self.raw.clone().set_labels(request).await?.into_inner();
        meta_of(response.meta)
    }

    /// Deletes the session; whether it existed. Its watchers end with `NotFound`.
    pub async fn delete(&self, session_id: &str) -> Result<bool> {
        let request = pb::DeleteRequest {
            session_id: session_id.to_string(),
        };
        Ok(self.raw.clone().delete(request).await?.into_inner().existed)
    }

    /// Writes and fsyncs the session's buffered messages; how many it wrote.
    pub async fn flush(&self, session_id: &str) -> Result<u64> {
        if session_id.is_empty() {
            return Err(Error::new(
                Code::InvalidArgument,
                "flush needs a session id; flush_all flushes every session",
            ));
        }
        Ok(self.flush_request(session_id).await?.flushed)
    }

    /// Flushes every session; the ones that failed are reported, the others flushed.
    pub async fn flush_all(&self) -> Result<FlushAll> {
        let response = self.flush_request("").await?;
        Ok(FlushAll {
            flushed: response.flushed,
            failures: response.failures,
        })
    }

    async fn flush_request(&self, session_id: &str) -> Result<pb::FlushResponse> {
        let request = pb::FlushRequest {
            session_id: session_id.to_string(),
        };
        Ok(self.raw.clone().flush(request).await?.into_inner())
    }

    /// A new session `new_session_id` whose first `at_seq` messages are the source's (nothing is
    /// copied), labelled as the source with `labels` over them; its meta. `AlreadyExists` if it
    /// exists; `OutOfRange` past the source's end or below its first kept seq.
    pub async fn fork(
        &self,
        session_id: &str,
        at_seq: u64,
        new_session_id: &str,
        labels: Labels,
    ) -> Result<SessionMeta> {
        let request = pb::ForkRequest {
            session_id: session_id.to_string(),
            at_seq,
            new_session_id: new_session_id.to_string(),
            labels,
        };
        meta_of(self.raw.clone().fork(request).await?.into_inner().meta)
    }

    /// Drops the messages from `to_seq` on, only if the session's length is `expected_seq` when
    /// given (else `Aborted` with [`Error::actual_length`]). Watchers are told.
    pub async fn rewind(
        &self,
        session_id: &str,
        to_seq: u64,
        expected_seq: Option<u64>,
    ) -> Result<Rewound> {
        let request = pb::RewindRequest {
            session_id: session_id.to_string(),
            to_seq,
            expected_seq,
        };
        let response = self.raw.clone().rewind(request).await?.into_inner();
        Ok(Rewound {
            dropped: numbered(to_seq, response.dropped_messages).collect(),
            meta: meta_of(response.meta)?,
        })
    }

    /// Removes and returns the last message (`None` for an empty or unknown session), as the
    /// OpenAI Agents SDK's `pop_item`; `Aborted` if another writer appended in between.
    pub async fn pop_last(&self, session_id: &str) -> Result<Option<StoredMessage>> {
        let Some(meta) = self.meta(session_id).await? else {
            return Ok(None);
        };
        if meta.message_count == meta.first_seq {
            return Ok(None);
        }
        let length = meta.message_count;
        let rewound = self.rewind(session_id, length - 1, Some(length)).await?;
        Ok(rewound.dropped.into_iter().next())
    }

    /// Drops the messages before `before_seq`. Seqs do not change: `meta.first_seq` is the first
    /// kept, and reading below it is `OutOfRange`.
    pub async fn trim(&self, session_id: &str, before_seq: u64) -> Result<Trimmed> {
        let request = pb::TrimRequest {
            session_id: session_id.to_string(),
            before_seq,
        };
        let response = self.raw.clone().trim(request).await?.into_inner();
        Ok(Trimmed {
            count: response.trimmed,
            meta: meta_of(response.meta)?,
        })
    }

    /// The session's messages from `from_seq`, then each new one as it is appended, until the
    /// stream is dropped. When the server becomes `Unavailable` (a restart, a dropped
    /// connection) it reconnects and goes on from the next seq: nothing is skipped or repeated.
    /// Ends with `NotFound` when the session is deleted. After a rewind below what it yielded,
    /// it goes on from the rewound seq ([`watch_events`](Self::watch_events) says so).
    pub fn watch(
        &self,
        session_id: &str,
        from_seq: u64,
    ) -> impl Stream<Item = Result<StoredMessage>> + Send + 'static {
        let events = self.watch_events(session_id, from_seq);
        async_stream::try_stream! {
            for await event in events {
                if let WatchEvent::Message(message) = event? {
                    yield message;
                }
            }
        }
    }

    /// [`watch`](Self::watch), telling of rewinds: a [`WatchEvent::Rewound`] when the session is
    /// rewound below what was yielded.
    pub fn watch_events(
        &self,
        session_id: &str,
        from_seq: u64,
    ) -> impl Stream<Item = Result<WatchEvent>> + Send + 'static {
        let mut raw = self.raw.clone();
        let session_id = session_id.to_string();
        let retries = self.watch_retries;
        async_stream::try_stream! {
            let mut next_seq = from_seq;
            let mut failures = 0;
            'watching: loop {
                let request = pb::WatchRequest { session_id: session_id.clone(), from_seq: next_seq };
                let failure = match raw.watch(request).await {
                    Err(status) => status,
                    Ok(response) => {
                        let mut pages = response.into_inner();
                        loop {
                            match pages.message().await {
                                Err(status) => break status,
                                // The server ends a watch only with a status; an end without
                                // one is the stream's end.
                                Ok(None) => break 'watching,
                                Ok(Some(page)) => {
                                    failures = 0;
                                    if let Some(to_seq) = page.rewound_to {
                                        next_seq = to_seq;
                                        yield WatchEvent::Rewound { to_seq };
                                    }
                                    for message in numbered(page.first_seq, page.messages) {
                                        next_seq = message.seq + 1;
                                        yield WatchEvent::Message(message);
                                    }
                                }
                            }
                        }
                    }
                };
                if failure.code() != Code::Unavailable || failures >= retries {
                    Err(Error::from(failure))?;
                }
                tokio::time::sleep(backoff(failures)).await;
                failures += 1;
            }
        }
    }
}

/// The wait before reconnection `attempt` (from 0): 50 ms, doubling, at most 2 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6)).min(2000))
}

/// A response's meta, which the server always sends.
fn meta_of(meta: Option<SessionMeta>) -> Result<SessionMeta> {
    meta.ok_or_else(|| Error::new(Code::Internal, "the server's response had no session meta"))
}

/// A stream of one request (an Append stream that sends one request and half-closes).
fn tokio_stream_once<T: Send + 'static>(item: T) -> impl Stream<Item = T> + Send + 'static {
    async_stream::stream! { yield item; }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnections_back_off_to_two_seconds() {
        let waits: Vec<u64> = (0..8).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
    }
}
