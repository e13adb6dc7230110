"""A LangChain chat message history kept in sessionstore (the ``langchain`` extra).

>>> from langchain_core.messages import AIMessage, HumanMessage
>>> from sessionstore.integrations.langchain import SessionStoreChatMessageHistory
>>> history = SessionStoreChatMessageHistory(session_id="chat-1", address="127.0.0.1:50051")
>>> history.add_messages([HumanMessage("Hi"), AIMessage("Hello!")])
>>> history.messages
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from sessionstore.aio import AsyncSessionStoreClient
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
    (``aget_messages``, ``aadd_messages``, ``aclear``) do the same through sessionstore's asyncio
    client, on the caller's event loop, without a thread.

    Give ``client=`` (a ``SessionStoreClient``) and, for the async variants, ``async_client=`` (an
    ``AsyncSessionStoreClient``) to share clients (and their connections) between histories, e.g.
    in ``RunnableWithMessageHistory``'s ``get_session_history``; they stay yours to close. A
    history given ``client=`` alone runs its async variants in langchain-core's executor, on that
    client. Otherwise the history opens its own to ``address`` (the client's default target when
    omitted): the sync one at once, the asyncio one on the first async call, on its event loop;
    ``close()`` (or ``with``) closes the first, ``aclose()`` (or ``async with``) both.
    """

    def __init__(
        self,
        *,
        session_id: str,
        address: str | None = None,
        client: SessionStoreClient | None = None,
        async_client: AsyncSessionStoreClient | None = None,
    ) -> None:
        """Binds the history to ``session_id`` on the clients given, or on clients of its own to
        ``address``."""
        super().__init__()
        if address is not None and (client is not None or async_client is not None):
            raise TypeError("give either address= or clients (client=, async_client=), not both")
        self.session_id = session_id
        self._address = address
        self._owns_client = client is None
        self._client = client if client is not None else _open(address)
        # Made on the first async call when the history owns its clients; None with client= alone.
        self._owns_async_client = client is None and async_client is None
        self._async_client = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None

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

    async def aget_messages(self) -> list[BaseMessage]:
        """The session's messages, in order, read by the asyncio client."""
        store = self._async()
        if store is None:
            return await super().aget_messages()
        return messages_from_dict(await store.load(self.session_id))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Appends ``messages`` to the session in one request, by the asyncio client."""
        store = self._async()
        if store is None:
            await super().aadd_messages(messages)
        elif messages:
            await store.append(self.session_id, [message_to_dict(m) for m in messages])

    async def aclear(self) -> None:
        """Deletes the session, by the asyncio client."""
        store = self._async()
        if store is None:
            await super().aclear()
        else:
            await store.delete(self.session_id)

    def close(self) -> None:
        """Closes the sync client the history opened itself; a client given stays open. (An
        asyncio client it opened needs ``aclose()``.)"""
        if self._owns_client:
            self._client.close()

    async def aclose(self) -> None:
        """Closes the clients the history opened itself, sync and asyncio."""
        self.close()
        store, self._async_client = self._async_client, None
        if self._owns_async_client and store is not None:
            await store.close()
        elif not self._owns_async_client:
            self._async_client = store

    def __enter__(self) -> SessionStoreChatMessageHistory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> SessionStoreChatMessageHistory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _async(self) -> AsyncSessionStoreClient | None:
        """The asyncio client, made now if the history owns its clients; None when it was given
        a sync client alone (its async variants then run that one in an executor)."""
        if not self._owns_async_client:
            return self._async_client
        # A grpc.aio channel works on the loop it was made on: a history used from one
        # asyncio.run, then another, makes one for each (the old loop is gone with its channel).
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            self._async_loop = loop
            self._async_client = (
                AsyncSessionStoreClient()
                if self._address is None
                else AsyncSessionStoreClient(self._address)
            )
        return self._async_client


def _open(address: str | None) -> SessionStoreClient:
    return SessionStoreClient() if address is None else SessionStoreClient(address)
