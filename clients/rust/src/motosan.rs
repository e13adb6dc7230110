//! motosan_agent_loop's `SessionStore` trait over sessionstore: a motosan agent keeps its history
//! in a sessionstore server by using [`RemoteSessionStore`] instead of `FileSessionStore`.

use std::any::Any;

use async_trait::async_trait;
use futures_core::Stream;
use motosan_agent_loop::{AgentError, Message, SessionStore};

use crate::{Client, ConnectOptions, Error, ListOptions};

/// A `SessionStore` whose sessions live in a sessionstore server. Each message is stored as the
/// JSON serde writes for motosan's `Message`, so the server's files load in `FileSessionStore`
/// and other clients read the messages as motosan wrote them.
///
/// motosan's errors have no variant for a remote store: a failed call is an
/// `AgentError::Io` whose inner error is this crate's [`Error`] (with its gRPC code), e.g.
/// `io_error.get_ref().and_then(|e| e.downcast_ref::<sessionstore::Error>())`.
#[derive(Clone)]
pub struct RemoteSessionStore {
    client: Client,
}

impl RemoteSessionStore {
    /// Connects to the server at `address`, as [`Client::connect`].
    pub async fn connect(address: &str) -> crate::Result<Self> {
        Ok(Self::new(Client::connect(address).await?))
    }

    /// Connects with TLS, certificates or a token, as [`Client::connect_with`].
    pub async fn connect_with(address: &str, options: ConnectOptions) -> crate::Result<Self> {
        Ok(Self::new(Client::connect_with(address, options).await?))
    }

    /// A store over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client, for what the trait does not cover (watch, fork, rewind, ...).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn agent_error(error: Error) -> AgentError {
    AgentError::Io(std::io::Error::other(error))
}

#[async_trait]
impl SessionStore for RemoteSessionStore {
    async fn append(&self, session_id: &str, message: &Message) -> motosan_agent_loop::Result<()> {
        let json = serde_json::to_string(message)?;
        self.client
            .append(session_id, [json])
            .await
            .map_err(agent_error)?;
        Ok(())
    }

    async fn flush(&self, session_id: &str) -> motosan_agent_loop::Result<()> {
        self.client.flush(session_id).await.map_err(agent_error)?;
        Ok(())
    }

    async fn load(&self, session_id: &str) -> motosan_agent_loop::Result<Vec<Message>> {
        let stored = self.client.load(session_id).await.map_err(agent_error)?;
        Ok(stored
            .iter()
            .map(|message| message.decode())
            .collect::<serde_json::Result<_>>()?)
    }

    async fn delete(&self, session_id: &str) -> motosan_agent_loop::Result<()> {
        self.client.delete(session_id).await.map_err(agent_error)?;
        Ok(())
    }

    async fn list(&self) -> motosan_agent_loop::Result<Vec<String>> {
        let sessions = self.client.list(ListOptions::default());
        collect_ids(sessions).await.map_err(agent_error)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

async fn collect_ids(
    sessions: impl Stream<Item = crate::Result<crate::SessionMeta>>,
) -> crate::Result<Vec<String>> {
    let mut sessions = std::pin::pin!(sessions);
    let mut ids = Vec::new();
    while let Some(meta) = std::future::poll_fn(|cx| sessions.as_mut().poll_next(cx)).await {
        ids.push(meta?.session_id);
    }
    Ok(ids)
}
