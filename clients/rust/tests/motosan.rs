//! motosan's SessionStore trait through RemoteSessionStore, and an agent session of motosan's
//! keeping its history in the server (SESSIONSTORE_ADDRESS), with a scripted LLM.

#![cfg(feature = "motosan")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{address, session};
use motosan_agent_loop::{
    AgentLoop, AgentSession, ChatOutput, LlmClient, LlmResponse, Message, SessionStore,
};
use sessionstore::motosan::RemoteSessionStore;

fn values(messages: &[Message]) -> Vec<serde_json::Value> {
    messages
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect()
}

#[tokio::test]
async fn the_session_store_trait_over_grpc() {
    let store = RemoteSessionStore::connect(&address()).await.unwrap();
    let id = session("motosan");
    let conversation = [
        Message::system("Be brief."),
        Message::user("Weather in Kyōto? 🌦️"),
        Message::assistant("Sunny, 21.5°C."),
    ];
    for message in &conversation {
        store.append(&id, message).await.unwrap();
    }
    store.flush(&id).await.unwrap();
    assert_eq!(
        values(&store.load(&id).await.unwrap()),
        values(&conversation)
    );
    // Stored as serde writes motosan's Message, which other clients read as is.
    let stored = store.client().load(&id).await.unwrap();
    assert_eq!(
        stored[1].json,
        serde_json::to_string(&conversation[1]).unwrap()
    );
    assert!(store.list().await.unwrap().contains(&id));
    store.delete(&id).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_empty());
    assert!(!store.list().await.unwrap().contains(&id));

    let error = store.append("../bad", &conversation[0]).await.unwrap_err();
    let motosan_agent_loop::AgentError::Io(io) = error else {
        panic!("an I/O error, not {error:?}")
    };
    let inner = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<sessionstore::Error>())
        .unwrap();
    assert_eq!(inner.code(), sessionstore::Code::InvalidArgument);
}

/// An LLM that answers every conversation with the same text.
struct Scripted(&'static str);

#[async_trait]
impl LlmClient for Scripted {
    async fn chat(
        &self,
        _messages: &[Message],
        _tools: &[motosan_agent_tool::ToolDef],
    ) -> motosan_agent_loop::Result<ChatOutput> {
        Ok(ChatOutput::new(LlmResponse::Message(self.0.to_string())))
    }
}

#[tokio::test]
async fn an_agent_session_keeps_its_history_in_the_server_and_resumes_from_it() {
    let store: Arc<dyn SessionStore> =
        Arc::new(RemoteSessionStore::connect(&address()).await.unwrap());
    let id = session("agent");
    let llm: Arc<dyn LlmClient> = Arc::new(Scripted("4"));
    let (agent, _task) = AgentSession::new_with_store(
        &id,
        store.clone(),
        AgentLoop::builder().build(),
        llm.clone(),
        |_| {},
    );
    agent.send("What is 2 + 2?").await;
    let client = sessionstore::Client::connect(&address()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.load(&id).await.unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the turn was not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.close().await.unwrap();
    let stored: Vec<serde_json::Value> = client
        .load(&id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.decode().unwrap())
        .collect();
    assert_eq!(
        stored,
        values(&[Message::user("What is 2 + 2?"), Message::assistant("4")])
    );

    let (resumed, _task) =
        AgentSession::resume(&id, store, AgentLoop::builder().build(), llm, |_| {})
            .await
            .unwrap();
    assert_eq!(values(&resumed.history().await), stored);
}
