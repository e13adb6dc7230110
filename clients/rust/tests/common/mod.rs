//! What the integration tests share: the server they run against, named by environment variables
//! that test/interop/rust-client.test.ts sets after starting it (on 127.0.0.1:0).

#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable `name`; these tests fail, saying so, without it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need a sessionstore server. \
             test/interop/rust-client.test.ts starts one and runs them; by hand, start one \
             (npm start) and set SESSIONSTORE_ADDRESS=127.0.0.1:50051"
        )
    })
}

/// The plaintext server's address.
pub fn address() -> String {
    env("SESSIONSTORE_ADDRESS")
}

/// A session id no other test run has used, so that a long-running server does not matter.
pub fn session(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

pub async fn client() -> sessionstore::Client {
    sessionstore::Client::connect(&address())
        .await
        .expect("connect")
}
