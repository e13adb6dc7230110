//! Drives motosan_agent_loop's own `FileSessionStore` and `Message` for the interop tests
//! (test/interop/polyglot.test.ts). Every output line is one JSON value.
//!
//!   messages               the sample conversation, one `Message` per line as serde writes it
//!   write DIR SESSION      FileSessionStore in DIR appends the conversation to SESSION, flushes
//!   read DIR SESSION       FileSessionStore in DIR loads SESSION; one `Message` per line
//!   meta DIR SESSION       FileSessionStore in DIR reads SESSION's header (`SessionMeta`)
//!   append-timed DIR SESSION COUNT
//!                          FileSessionStore in DIR appends COUNT user messages of about 450 B
//!                          to SESSION one `append` at a time, then flushes; prints
//!                          {"messages":COUNT,"seconds":…} (the bench's seed comparison: each of
//!                          motosan's flushes, every 20 appends, rewrites the whole file)
//!
//! and the same through motosan's `SessionStore` trait over gRPC (`RemoteSessionStore`, of the
//! Rust client in clients/rust), against the server at ADDRESS:
//!
//!   remote-write ADDRESS SESSION   appends the conversation, one message per call, and flushes
//!   remote-read ADDRESS SESSION    loads SESSION; one `Message` per line
//!   remote-list ADDRESS            the session ids, as a JSON array
//!   remote-delete ADDRESS SESSION  deletes SESSION
//!
//! and, to learn what motosan's reader accepts at all:
//!
//!   check-json    reads one JSON string per line of stdin, the text to check (encoded so that it
//!                 may hold any character, CR and LF included), and prints for each whether
//!                 `serde_json::from_str::<serde_json::Value>` accepts that text:
//!                 {"accepted":true} or {"accepted":false,"error":"…"}

use motosan_agent_loop::{FileSessionStore, Message, SessionStore, ToolCallRef};
use sessionstore::motosan::RemoteSessionStore;
use serde_json::json;
use std::io::BufRead;

/// A conversation that exercises every part of `Message`: each role, a tool call with nested
/// arguments, a tool result, and text that needs escaping.
fn conversation() -> Vec<Message> {
    vec![
        Message::system("You are a careful agent. Use tools when you need facts."),
        Message::user("What's the weather in Kyōto? Answer in 日本語, please 🌦️"),
        Message::assistant_with_tool_call(
            "Let me check.",
            ToolCallRef {
                id: "call_1".to_string(),
                name: "weather".to_string(),
                args: json!({
                    "city": "Kyōto",
                    "units": ["metric", "°C"],
                    "max_id": u64::MAX,
                    "options": {"hourly": true, "days": 3, "ratio": 0.25},
                }),
            },
        ),
        Message::tool_result(
            "call_1",
            "{\"temp\": 21.5, \"sky\": \"clear\\nand \\\"calm\\\"\"}",
        ),
        Message::assistant(
            "京都は晴れ、21.5°C です。\tTabs, \"quotes\" and \\backslashes\\ survive.",
        ),
    ]
}

fn print_messages(messages: &[Message]) {
    for message in messages {
        println!(
            "{}",
            serde_json::to_string(message).expect("a Message serializes")
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["messages"] => print_messages(&conversation()),
        ["check-json"] => check_json(),
        ["write", dir, session] => {
            let store = FileSessionStore::new(*dir);
            for message in conversation() {
                store
                    .append(session, &message)
                    .await
                    .expect("motosan append");
            }
            store.flush(session).await.expect("motosan flush");
        }
        ["append-timed", dir, session, count] => {
            let count: usize = count.parse().expect("COUNT is a whole number");
            let store = FileSessionStore::new(*dir);
            // Lines of 450 bytes as motosan writes them (its empty tool fields included), the
            // size of the bench's messages.
            let text = "the agent called a tool and read the result ".repeat(10);
            let message = Message::user(&text[..385]);
            let started = std::time::Instant::now();
            for _ in 0..count {
                store
                    .append(session, &message)
                    .await
                    .expect("motosan append");
            }
            store.flush(session).await.expect("motosan flush");
            println!(
                "{}",
                json!({"messages": count, "seconds": started.elapsed().as_secs_f64()})
            );
        }
        ["read", dir, session] => {
            let store = FileSessionStore::new(*dir);
            print_messages(&store.load(session).await.expect("motosan load"));
        }
        [command, address, rest @ ..] if command.starts_with("remote-") => {
            let store = RemoteSessionStore::connect(address).await.expect("connect");
            if let Err(error) = remote(&store, command, rest).await {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
        }
        ["meta", dir, session] => {
            let store = FileSessionStore::new(*dir);
            let meta = store.load_meta(session).await.expect("motosan load_meta");
            println!(
                "{}",
                serde_json::to_string(&meta).expect("SessionMeta serializes")
            );
        }
        _ => {
            eprintln!(
                "usage: sessionstore-motosan-interop messages | check-json \
                 | write|read|meta DIR SESSION | append-timed DIR SESSION COUNT \
                 | remote-write|remote-read|remote-delete ADDRESS SESSION | remote-list ADDRESS"
            );
            std::process::exit(2);
        }
    }
}

/// The check-json command. `Value`, not `Message`: motosan reads lines as its `Message`, but the
/// messages sessionstore keeps are any agent's JSON objects, so what matters is what serde_json
/// accepts as JSON at all (its grammar, number range, string escapes and recursion limit).
fn check_json() {
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin is UTF-8 text");
        let text: String = serde_json::from_str(&line).expect("each line is one JSON string");
        let verdict = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(_) => json!({"accepted": true}),
            Err(error) => json!({"accepted": false, "error": error.to_string()}),
        };
        println!("{verdict}");
    }
}

/// The remote-* commands: motosan's `SessionStore` calls, served by sessionstore.
async fn remote(
    store: &dyn SessionStore,
    command: &str,
    args: &[&str],
) -> motosan_agent_loop::Result<()> {
    match (command, args) {
        ("remote-write", [session]) => {
            for message in conversation() {
                store.append(session, &message).await?;
            }
            store.flush(session).await?;
        }
        ("remote-read", [session]) => print_messages(&store.load(session).await?),
        ("remote-list", []) => println!("{}", serde_json::to_string(&store.list().await?)?),
        ("remote-delete", [session]) => store.delete(session).await?,
        _ => {
            eprintln!("unknown command {command} {args:?}");
            std::process::exit(2);
        }
    }
    Ok(())
}
