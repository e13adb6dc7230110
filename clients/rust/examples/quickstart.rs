use futures::TryStreamExt;
use sessionstore::{AppendOptions, Client, Code, ListOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::var("SESSIONSTORE_ADDRESS")
        .unwrap_or_else(|_| sessionstore::DEFAULT_ADDRESS.to_string());
    let store = Client::connect(&address).await?; // plaintext to loopback, else TLS

    let turn = [
        serde_json::to_string(&serde_json::json!({"role": "user", "content": "Hello"}))?,
        r#"{"role":"assistant","content":"Hi!"}"#.to_string(), // raw text, stored as is
    ];
    let ack = store.append("chat-42", turn.clone()).await?;
    println!("{} {}", ack.first_seq, ack.next_seq);

    for message in store.load("chat-42").await? {
        let value: serde_json::Value = message.decode()?;
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        println!("{} {} {}", message.seq, text("role"), text("content"));
    }

    // Optimistic concurrency: the first message must get seq 1, or nothing is stored.
    let options = AppendOptions {
        expected_seq: Some(1),
        ..Default::default()
    };
    match store
        .append_with("chat-42", [turn[0].clone()], options)
        .await
    {
        Err(error) if error.code() == Code::Aborted => {
            let length = error.actual_length().unwrap_or_default();
            println!("someone else appended; the session has {length} messages");
        }
        other => println!("{other:?}"),
    }

    let options = ListOptions {
        prefix: "chat-".into(),
        ..Default::default()
    };
    let sessions: Vec<_> = store.list(options).try_collect().await?;
    for meta in sessions {
        println!(
            "{} {} {}",
            meta.session_id, meta.message_count, meta.durable_count
        );
    }
    Ok(())
}
