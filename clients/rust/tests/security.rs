//! TLS, client certificates and tokens against the servers test/interop/rust-client.test.ts
//! starts: SESSIONSTORE_TLS_ADDRESS (TLS, JWT auth), SESSIONSTORE_MTLS_ADDRESS (mTLS, tenants
//! from client certificates), with the PEM files and a token file it names.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{env, session};
use sessionstore::{Client, Code, ConnectOptions};

fn read(variable: &str) -> Vec<u8> {
    std::fs::read(env(variable)).unwrap_or_else(|e| panic!("{variable}: {e}"))
}

fn token() -> String {
    String::from_utf8(read("SESSIONSTORE_TOKEN_FILE"))
        .unwrap()
        .trim()
        .to_string()
}

/// An append and a load, each a call of its own.
async fn calls(store: &Client) -> sessionstore::Result<()> {
    let id = session("secure");
    store.append(&id, [r#"{"n":0}"#]).await?;
    assert_eq!(store.load(&id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn tls_trusting_the_ca_given_with_a_token() {
    let address = env("SESSIONSTORE_TLS_ADDRESS");
    let options = ConnectOptions::new().ca_certificate(read("SESSIONSTORE_CA_FILE"));
    let store = Client::connect_with(&address, options.clone().token(token()))
        .await
        .unwrap();
    calls(&store).await.unwrap();

    let anonymous = Client::connect_with(&address, options).await.unwrap();
    assert_eq!(
        calls(&anonymous).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn another_ca_is_not_trusted() {
    let options = ConnectOptions::new()
        .ca_certificate(read("SESSIONSTORE_OTHER_CA_FILE"))
        .token(token());
    let error = match Client::connect_with(&env("SESSIONSTORE_TLS_ADDRESS"), options).await {
        Ok(store) => calls(&store).await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.code(), Code::Unavailable);
}

#[tokio::test]
async fn the_token_function_is_asked_before_every_call() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let token = token();
    let options = ConnectOptions::new()
        .ca_certificate(read("SESSIONSTORE_CA_FILE"))
        .token_fn(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(token.clone())
        });
    let store = Client::connect_with(&env("SESSIONSTORE_TLS_ADDRESS"), options)
        .await
        .unwrap();
    calls(&store).await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    let failing = ConnectOptions::new()
        .ca_certificate(read("SESSIONSTORE_CA_FILE"))
        .token_fn(|| Err("the identity provider is down".into()));
    let store = Client::connect_with(&env("SESSIONSTORE_TLS_ADDRESS"), failing)
        .await
        .unwrap();
    let error = calls(&store).await.unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    assert!(
        error.message().contains("the identity provider is down"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_certificate_for_mtls() {
    let address = env("SESSIONSTORE_MTLS_ADDRESS");
    let ca = ConnectOptions::new().ca_certificate(read("SESSIONSTORE_CA_FILE"));
    let options = ca.clone().client_certificate(
        read("SESSIONSTORE_CLIENT_CERT_FILE"),
        read("SESSIONSTORE_CLIENT_KEY_FILE"),
    );
    let store = Client::connect_with(&address, options).await.unwrap();
    let id = env("SESSIONSTORE_MTLS_SESSION");
    store.append(&id, [r#"{"n":0}"#]).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().len(), 1);

    // Without a certificate the server ends the handshake: the connection or the call fails.
    let refused = match Client::connect_with(&address, ca).await {
        Ok(store) => calls(&store).await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
}
