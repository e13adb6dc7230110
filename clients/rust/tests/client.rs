//! The client's calls against the real server (SESSIONSTORE_ADDRESS).

mod common;

use std::collections::HashMap;

use common::{client, session};
use futures::{StreamExt, TryStreamExt};
use sessionstore::{
    AppendOptions, Code, ListOptions, ListOrder, LoadOptions, StoredMessage, WatchEvent,
};

fn jsons(messages: &[StoredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.json.as_str()).collect()
}

#[tokio::test]
async fn appended_messages_load_byte_for_byte() {
    let store = client().await;
    let id = session("bytes");
    // Spacing, key order, escapes and non-ASCII text are kept as sent, not re-encoded.
    let messages = [
        r#"{"role":"user",  "content":"Kyōto 日本語 🌦️ \u00e9 \"q\" \\b\\"}"#,
        r#"{ "z": 1, "a": [1.50, -0, 1e3], "n": null }"#,
        r#"{"role":"assistant","content":"tab\there"}"#,
    ];
    let ack = store.append(&id, messages).await.unwrap();
    assert_eq!((ack.first_seq, ack.next_seq), (0, 3));
    let loaded = store.load(&id).await.unwrap();
    assert_eq!(jsons(&loaded), messages);
    assert_eq!(loaded.iter().map(|m| m.seq).collect::<Vec<_>>(), [0, 1, 2]);
    let value: serde_json::Value = loaded[0].decode().unwrap();
    assert_eq!(value["content"], "Kyōto 日本語 🌦️ é \"q\" \\b\\");

    let page = store
        .load_with(
            &id,
            LoadOptions {
                from_seq: 1,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        [StoredMessage {
            seq: 1,
            json: messages[1].to_string()
        }]
    );
    assert_eq!(jsons(&store.last(&id, 2).await.unwrap()), messages[1..]);
    assert!(store.load(&session("never")).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expected_seq_that_is_not_the_length_stores_nothing_and_reports_the_length() {
    let store = client().await;
    let id = session("expected");
    let first = [r#"{"n":0}"#, r#"{"n":1}"#];
    store.append(&id, first).await.unwrap();

    let expect = |seq| AppendOptions {
        expected_seq: Some(seq),
        ..Default::default()
    };
    let error = store
        .append_with(&id, [r#"{"n":"other"}"#], expect(1))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Aborted);
    assert_eq!(error.actual_length(), Some(2));
    // A retry of a stored request stores nothing twice and gets the original's ack.
    let retry = store.append_with(&id, first, expect(0)).await.unwrap();
    assert_eq!((retry.first_seq, retry.next_seq), (0, 2));
    let ack = store
        .append_with(&id, [r#"{"n":2}"#], expect(2))
        .await
        .unwrap();
    assert_eq!((ack.first_seq, ack.next_seq), (2, 3));
    assert_eq!(store.load(&id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn meta_is_none_for_a_missing_session() {
    let store = client().await;
    assert_eq!(store.meta(&session("missing")).await.unwrap(), None);
    let id = session("meta");
    let labels = HashMap::from([("user".to_string(), "alice".to_string())]);
    let options = AppendOptions {
        labels,
        sync: true,
        ..Default::default()
    };
    let ack = store
        .append_with(&id, [r#"{"n":0}"#], options)
        .await
        .unwrap();
    assert_eq!(ack.durable_count, 1);
    let meta = store.meta(&id).await.unwrap().expect("the session exists");
    assert_eq!((meta.message_count, meta.durable_count), (1, 1));
    assert_eq!(meta.labels["user"], "alice");
    let error = store.meta("../bad").await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn list_pages_through_the_sessions_a_selector_matches() {
    let store = client().await;
    let prefix = session("list");
    for (n, team) in ["a", "b", "a", "a", "b"].iter().enumerate() {
        let labels = HashMap::from([("team".to_string(), team.to_string())]);
        let options = AppendOptions {
            labels,
            ..Default::default()
        };
        store
            .append_with(&format!("{prefix}-{n}"), [r#"{"n":0}"#], options)
            .await
            .unwrap();
    }
    let list = |order| {
        store.list(ListOptions {
            prefix: prefix.clone(),
            label_selector: "team=a".into(),
            order,
            page_size: 2,
        })
    };
    let ids: Vec<String> = list(ListOrder::ById)
        .map_ok(|meta| meta.session_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, [0, 2, 3].map(|n| format!("{prefix}-{n}")));
    let newest: Vec<String> = list(ListOrder::ByUpdatedDesc)
        .map_ok(|meta| meta.session_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0], format!("{prefix}-3"));
    let bad = store.list(ListOptions {
        label_selector: "team=(".into(),
        ..Default::default()
    });
    let error = bad.try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn pop_last_removes_the_last_message_and_rewind_checks_the_length() {
    let store = client().await;
    let id = session("pop");
    assert_eq!(store.pop_last(&id).await.unwrap(), None);
    store
        .append(&id, [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#])
        .await
        .unwrap();
    let popped = store.pop_last(&id).await.unwrap();
    assert_eq!(
        popped,
        Some(StoredMessage {
            seq: 2,
            json: r#"{"n":2}"#.into()
        })
    );
    assert_eq!(store.meta(&id).await.unwrap().unwrap().message_count, 2);

    let error = store.rewind(&id, 0, Some(5)).await.unwrap_err();
    assert_eq!(
        (error.code(), error.actual_length()),
        (Code::Aborted, Some(2))
    );
    let rewound = store.rewind(&id, 1, Some(2)).await.unwrap();
    assert_eq!(jsons(&rewound.dropped), [r#"{"n":1}"#]);
    assert_eq!(rewound.meta.message_count, 1);
    store
        .pop_last(&id)
        .await
        .unwrap()
        .expect("one message left");
    assert_eq!(store.pop_last(&id).await.unwrap(), None);
}

#[tokio::test]
async fn a_fork_shares_the_start_and_a_trim_drops_it_keeping_seqs() {
    let store = client().await;
    let id = session("source");
    let messages = [r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#];
    store.append(&id, messages).await.unwrap();
    let fork_id = format!("{id}-fork");
    let labels = HashMap::from([("branch".to_string(), "retry".to_string())]);
    let fork = store.fork(&id, 2, &fork_id, labels.clone()).await.unwrap();
    assert_eq!(
        (fork.parent_session_id.as_str(), fork.parent_seq),
        (id.as_str(), 2)
    );
    assert_eq!(fork.labels, labels);
    store.append(&fork_id, [r#"{"n":"fork"}"#]).await.unwrap();
    assert_eq!(
        jsons(&store.load(&fork_id).await.unwrap()),
        [messages[0], messages[1], r#"{"n":"fork"}"#]
    );
    assert_eq!(jsons(&store.load(&id).await.unwrap()), messages);
    let error = store
        .fork(&id, 1, &fork_id, HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists);

    let trimmed = store.trim(&id, 2).await.unwrap();
    assert_eq!((trimmed.count, trimmed.meta.first_seq), (2, 2));
    let kept = store.load(&id).await.unwrap();
    assert_eq!(kept.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
    let error = store
        .load_with(
            &id,
            LoadOptions {
                from_seq: 1,
                limit: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.first_seq()),
        (Code::OutOfRange, Some(2))
    );
    assert_eq!(store.load(&fork_id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn watch_streams_then_follows_rewinds_and_ends_on_delete() {
    let store = client().await;
    let id = session("watch");
    store
        .append(&id, [r#"{"n":0}"#, r#"{"n":1}"#])
        .await
        .unwrap();
    let mut events = Box::pin(store.watch_events(&id, 1));
    let next = |event: Option<sessionstore::Result<WatchEvent>>| event.expect("an event").unwrap();
    assert_eq!(
        next(events.next().await),
        WatchEvent::Message(StoredMessage {
            seq: 1,
            json: r#"{"n":1}"#.into()
        })
    );
    store.append(&id, [r#"{"n":2}"#]).await.unwrap();
    assert_eq!(
        next(events.next().await),
        WatchEvent::Message(StoredMessage {
            seq: 2,
            json: r#"{"n":2}"#.into()
        })
    );
    store.rewind(&id, 1, None).await.unwrap();
    assert_eq!(next(events.next().await), WatchEvent::Rewound { to_seq: 1 });
    store.append(&id, [r#"{"n":"again"}"#]).await.unwrap();
    assert_eq!(
        next(events.next().await),
        WatchEvent::Message(StoredMessage {
            seq: 1,
            json: r#"{"n":"again"}"#.into()
        })
    );
    assert!(store.delete(&id).await.unwrap());
    let end = events.next().await.expect("the watch ends with an error");
    assert_eq!(end.unwrap_err().code(), Code::NotFound);
    assert!(!store.delete(&id).await.unwrap());
}

#[tokio::test]
async fn flush_writes_the_buffered_messages() {
    let store = client().await;
    let id = session("flush");
    store
        .append(&id, [r#"{"n":0}"#, r#"{"n":1}"#])
        .await
        .unwrap();
    store.flush(&id).await.unwrap();
    assert_eq!(store.meta(&id).await.unwrap().unwrap().durable_count, 2);
    let all = store.flush_all().await.unwrap();
    assert!(all.failures.is_empty());
    assert_eq!(
        store.flush("").await.unwrap_err().code(),
        Code::InvalidArgument
    );
}
