//! A watch across a server restart. Run by test/interop/rust-client.test.ts alone (it is
//! ignored otherwise): once this test has watched the first messages it creates the file
//! SESSIONSTORE_RESTART_SIGNAL, and the vitest side restarts the server on the same address and
//! data, then creates that file's name with `.restarted` added.

mod common;

use std::time::{Duration, Instant};

use common::{client, env, session};
use futures::StreamExt;
use sessionstore::{AppendOptions, Code};

fn numbered(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|n| format!(r#"{{"n":{n}}}"#)).collect()
}

#[tokio::test]
#[ignore = "needs test/interop/rust-client.test.ts to restart the server"]
async fn watch_goes_on_from_the_next_seq_after_the_server_restarts() {
    let store = client().await;
    let id = session("resume");
    store.append(&id, numbered(0, 12)).await.unwrap();
    let mut watch = Box::pin(store.watch(&id, 0));
    let mut received = Vec::new();
    while received.len() < 12 {
        received.push(watch.next().await.unwrap().unwrap());
    }
    let signal = env("SESSIONSTORE_RESTART_SIGNAL");
    std::fs::write(&signal, "watched").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(&format!("{signal}.restarted")).exists() {
        assert!(Instant::now() < deadline, "the server was not restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The new server may not have answered the client's reconnection yet: retry UNAVAILABLE.
    let options = AppendOptions {
        expected_seq: Some(12),
        ..Default::default()
    };
    loop {
        match store
            .append_with(&id, numbered(12, 20), options.clone())
            .await
        {
            Ok(_) => break,
            Err(error) if error.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("append after the restart: {error}"),
        }
    }
    while received.len() < 20 {
        received.push(watch.next().await.unwrap().unwrap());
    }
    let seqs: Vec<u64> = received.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<u64>>());
    let jsons: Vec<String> = received.into_iter().map(|m| m.json).collect();
    assert_eq!(jsons, numbered(0, 20));
}
