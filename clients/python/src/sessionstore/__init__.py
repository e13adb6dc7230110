"""Python client for sessionstore, the gRPC service that keeps AI agents' conversation history.

>>> from sessionstore import SessionStoreClient
>>> with SessionStoreClient("127.0.0.1:50051") as store:
...     store.append("demo", [{"role": "user", "content": "hi"}])
...     store.load("demo")
"""

from sessionstore.client import (
    ACTUAL_LABELS_REVISION_KEY,
    ACTUAL_LENGTH_KEY,
    FIRST_SEQ_KEY,
    AppendAck,
    Appender,
    ListOrder,
    Message,
    RewindResult,
    Rewound,
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
    "Appender",
    "ListOrder",
    "Message",
    "RewindResult",
    "Rewound",
    "SessionMeta",
    "SessionStoreClient",
    "SessionStoreError",
    "TrimResult",
    "Watch",
    "Window",
]
