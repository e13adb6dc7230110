"""Python client for sessionstore, the gRPC service that keeps AI agents' conversation history.

>>> from sessionstore import SessionStoreClient
>>> with SessionStoreClient("127.0.0.1:50051") as store:
...     store.append("demo", [{"role": "user", "content": "hi"}])
...     store.load("demo")

The asyncio client is sessionstore.aio.AsyncSessionStoreClient; the contract both keep (with the
TypeScript, Go and Rust clients) is clients/README.md.
"""

from sessionstore.client import (
    ACTUAL_LABELS_REVISION_KEY,
    ACTUAL_LENGTH_KEY,
    FIRST_SEQ_KEY,
    AppendAck,
    FlushAllResult,
    ListOrder,
    Message,
    RetryPolicy,
    RewindResult,
    Rewound,
    SessionAppender,
    SessionMeta,
    SessionStoreClient,
    SessionStoreError,
    TrimResult,
    Watch,
    Window,
)

__all__ = [
    "ACTUAL_LABELS_REVISION_KEY",
    "ACTUAL_LENGTH_KEY",
    "FIRST_SEQ_KEY",
    "AppendAck",
    "FlushAllResult",
    "ListOrder",
    "Message",
    "RetryPolicy",
    "RewindResult",
    "Rewound",
    "SessionAppender",
    "SessionMeta",
    "SessionStoreClient",
    "SessionStoreError",
    "TrimResult",
    "Watch",
    "Window",
]
