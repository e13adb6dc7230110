"""Python client for sessionstore, the gRPC service that keeps AI agents' conversation history.

>>> from sessionstore import SessionStoreClient
>>> with SessionStoreClient("127.0.0.1:50051") as store:
...     store.append("demo", [{"role": "user", "content": "hi"}])
...     store.load("demo")
"""

from sessionstore.client import (
    ACTUAL_LENGTH_KEY,
    AppendAck,
    Appender,
    SessionMeta,
    SessionStoreClient,
    SessionStoreError,
    Watch,
)

__all__ = [
    "ACTUAL_LENGTH_KEY",
    "AppendAck",
    "Appender",
    "SessionMeta",
    "SessionStoreClient",
    "SessionStoreError",
    "Watch",
]
