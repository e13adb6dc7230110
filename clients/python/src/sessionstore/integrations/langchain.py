"""A LangChain chat message history kept in sessionstore (the ``langchain`` extra).

>>> from langchain_core.messages import AIMessage, HumanMessage
>>> from sessionstore.integrations.langchain import SessionStoreChatMessageHistory
>>> history = SessionStoreChatMessageHistory(session_id="chat-1", address="127.0.0.1:50051")
>>> history.add_messages([HumanMessage("Hi"), AIMessage("Hello!")])
>>> history.messages
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from sessionstore.client import SessionStoreClient

__all__ = ["SessionStoreChatMessageHistory"]


class SessionStoreChatMessageHistory(BaseChatMessageHistory):
    """A LangChain ``BaseChatMessageHistory`` whose messages are one sessionstore session.

    Each message is stored as one JSON object in LangChain's own serialized form,
    ``message_to_dict``'s ``{"type": ..., "data": ...}`` (the form langchain-core's documented
    file history and the community histories store), and read back with ``messages_from_dict``:
    every field round-trips, tool calls, ids and metadata included, so the messages read are equal
    to those added. Whatever else reads the session (another client, ``Watch``) sees that form.

    ``add_messages`` is one Append request: its messages are stored together or not at all, after
    whatever other writers appended before it. ``clear`` deletes the session. The async variants
    (``aget_messages``, ``aadd_messages``, ``aclear``) are langchain-core's defaults, which run
    these in its executor.

    Give ``client=`` to share one ``SessionStoreClient`` (and its connection) between histories,
    e.g. in ``RunnableWithMessageHistory``'s ``get_session_history``; it stays yours to close.
    Otherwise the history opens its own to ``address`` (the client's default target when omitted),
    closed by ``close()`` or at the end of a ``with`` block.
    """

    def __init__(
        self,
        *,
        session_id: str,
        address: str | None = None,
        client: SessionStoreClient | None = None,
    ) -> None:
        """Binds the history to ``session_id`` on ``client``, or on a new client to ``address``."""
        super().__init__()
        if client is not None and address is not None:
            raise TypeError("give either address= or client=, not both")
        self.session_id = session_id
        self._owns_client = client is None
        self._client = client if client is not None else _open(address)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages, in order; ``[]`` for a session that does not exist."""
        return messages_from_dict(self._client.load(self.session_id))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Appends ``messages`` to the session, in one request (creating the session)."""
        if messages:
            self._client.append(self.session_id, [message_to_dict(m) for m in messages])

    def clear(self) -> None:
        """Deletes the session: its messages are gone, and adding starts it anew."""
        self._client.delete(self.session_id)

    def close(self) -> None:
        """Closes the client the history opened itself; a client given as ``client=`` stays open."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> SessionStoreChatMessageHistory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open(address: str | None) -> SessionStoreClient:
    return SessionStoreClient() if address is None else SessionStoreClient(address)
