//! motosan's `SessionStore` trait over sessionstore's gRPC API: a motosan agent keeps its history
//! in a sessionstore server by using this store instead of `FileSessionStore`.

use std::any::Any;

use async_trait::async_trait;
use motosan_agent_loop::{AgentError, Message, Result, SessionStore};
use tonic::transport::Channel;

pub mod pb {
    tonic::include_proto!("sessionstore.v1");
}

use pb::session_store_client::SessionStoreClient;

/// A `SessionStore` whose sessions live in a sessionstore server. Each message is stored as the
/// JSON serde writes for motosan's `Message`, so the server's files load in `FileSessionStore`.
#[derive(Clone)]
pub struct RemoteSessionStore {
    client: SessionStoreClient<Channel>,
}

impl RemoteSessionStore {
    /// Connects to the server at `address` (host:port, plaintext).
    pub async fn connect(address: &str) -> std::result::Result<Self, tonic::transport::Error> {
        let client = SessionStoreClient::connect(format!("http://{address}")).await?;
        Ok(Self { client })
    }
}

/// motosan's errors have no variant for a remote store: a failed call is an I/O error that names
/// the gRPC status.
fn remote_error(status: tonic::Status) -> AgentError {
    AgentError::Io(std::io::Error::other(format!(
        "sessionstore: {:?}: {}",
        status.code(),
        status.message()
    )))
}

#[async_trait]
impl SessionStore for RemoteSessionStore {
    async fn append(&self, session_id: &str, message: &Message) -> Result<()> {
        let request = pb::AppendRequest {
            session_id: session_id.to_string(),
            messages: vec![serde_json::to_string(message)?],
            ..Default::default()
        };
        let mut acks = self
            .client
            .clone()
            .append(futures::stream::iter([request]))
            .await
            .map_err(remote_error)?
            .into_inner();
        match acks.message().await.map_err(remote_error)? {
            Some(_) => Ok(()),
            None => Err(remote_error(tonic::Status::unknown(
                "the Append stream ended without an ack",
            ))),
        }
    }

    async fn flush(&self, session_id: &str) -> Result<()> {
        let request = pb::FlushRequest {
            session_id: session_id.to_string(),
        };
        self.client
            .clone()
            .flush(request)
            .await
            .map_err(remote_error)?;
        Ok(())
    }

    async fn load(&self, session_id: &str) -> Result<Vec<Message>> {
        let request = pb::LoadRequest {
            session_id: session_id.to_string(),
            ..Default::default()
        };
        let mut pages = self
            .client
            .clone()
            .load(request)
            .await
            .map_err(remote_error)?
            .into_inner();
        let mut messages = Vec::new();
        while let Some(page) = pages.message().await.map_err(remote_error)? {
            for text in &page.messages {
                messages.push(serde_json::from_str(text)?);
            }
        }
        Ok(messages)
    }

    async fn delete(&self, session_id: &str) -> Result<()> {
        let request = pb::DeleteRequest {
            session_id: session_id.to_string(),
        };
        self.client
            .clone()
            .delete(request)
            .await
            .map_err(remote_error)?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>> {
        let mut client = self.client.clone();
        let mut ids = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::ListRequest {
                page_token,
                ..Default::default()
            };
            let page = client
                .list(request)
                .await
                .map_err(remote_error)?
                .into_inner();
            ids.extend(page.sessions.into_iter().map(|meta| meta.session_id));
            if page.next_page_token.is_empty() {
                return Ok(ids);
            }
            page_token = page.next_page_token;
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
