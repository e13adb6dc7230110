"""The OpenAI Agents SDK's ``Session``, kept in sessionstore.

    from agents import Agent, Runner
    from sessionstore.integrations.openai_agents import SessionStoreSession

    session = SessionStoreSession("chat-42", address="127.0.0.1:50051")
    result = await Runner.run(agent, "Hello", session=session)

Each item the Runner records (a user message, a tool call, its output, a reply: a JSON object
in the SDK's Responses input format) is one message of the sessionstore session ``session_id``,
stored as its JSON text and read back as a dict. Other processes, in any language, can load,
watch, fork or list the same session with the sessionstore clients.

The SDK's protocol is asyncio; the sessionstore Python client is synchronous today, so each call
runs the client in a worker thread (``asyncio.to_thread``). An asyncio client is being built, and
will replace the threads without changing this class's interface.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from sessionstore.client import SessionStoreClient, SessionStoreError

try:
    from agents import SessionSettings, TResponseInputItem
except ImportError as error:  # the extra is not installed
    raise ImportError(
        "sessionstore.integrations.openai_agents needs the OpenAI Agents SDK: "
        'pip install "sessionstore-client[openai-agents]"'
    ) from error

#: How many times pop_item tries again when other writers keep changing the session's length
#: between its read of the length and its conditional rewind (each try is one round trip).
POP_ATTEMPTS = 100


class SessionStoreSession:
    """An OpenAI Agents SDK session (the ``agents.memory.Session`` protocol) whose items are the
    messages of one sessionstore session.

    ``session_id`` names the sessionstore session: 1-200 characters of ``[A-Za-z0-9._:@~-]``, not
    starting with ``.`` (the server refuses any other with INVALID_ARGUMENT). Give ``address``
    (``host:port``; plaintext to a loopback address, TLS to any other) or ``client``, a
    ``SessionStoreClient`` of your own, e.g. one with a token, TLS options or a timeout, which
    ``close()`` leaves open; with neither, the client's default address, 127.0.0.1:50051.
    ``session_settings`` are the SDK's: their ``limit`` is what ``get_items()`` returns by default.

    Failures of the server are raised as ``sessionstore.SessionStoreError``, carrying the gRPC
    status code.
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        *,
        address: str | None = None,
        client: SessionStoreClient | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        if address is not None and client is not None:
            raise ValueError("give address or client, not both")
        self.session_id = session_id
        self.session_settings = (
            session_settings if session_settings is not None else SessionSettings()
        )
        self._owns_client = client is None
        if client is not None:
            self._client = client
        elif address is not None:
            self._client = SessionStoreClient(address)
        else:
            self._client = SessionStoreClient()

    @property
    def client(self) -> SessionStoreClient:
        """The sessionstore client, for what the protocol does not cover: a context window
        (``window``), forks, labels, watching the session as the Runner records it."""
        return self._client

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's items, oldest first: all of them, or the latest ``limit`` (by default
        ``session_settings.limit``, where set). ``limit=0`` returns none."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        if limit is None:
            return await asyncio.to_thread(self._client.load, self.session_id)
        if limit < 0:
            raise ValueError(f"limit must be None or at least 0, not {limit}")
        if limit == 0:
            return []
        return await asyncio.to_thread(self._client.last, self.session_id, limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Appends the items, in order, in one request: all of them are stored or none (each must
        be a JSON object: a dict of JSON values)."""
        if not items:
            return
        await asyncio.to_thread(self._client.append, self.session_id, list(items))

    async def pop_item(self) -> TResponseInputItem | None:
        """Removes and returns the latest item; None when the session is empty. Atomic: the
        rewind is conditional on the session's length, so an item another writer appends in
        between is never dropped unseen; on such a conflict it pops the new latest item."""
        return await asyncio.to_thread(self._pop_latest)

    async def clear_session(self) -> None:
        """Deletes the session (its labels too); adding items afterwards starts it again."""
        await asyncio.to_thread(self._client.delete, self.session_id)

    def close(self) -> None:
        """Closes the client, if this session created it."""
        if self._owns_client:
            self._client.close()

    async def __aenter__(self) -> SessionStoreSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _pop_latest(self) -> Any:
        """pop_item's work, in one worker thread: read the length, then rewind by one on the
        condition that the length is still that; on ABORTED, again at the length reported."""
        try:
            meta = self._client.meta(self.session_id)
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        length = meta.message_count
        if length == meta.first_seq:  # empty, or every message trimmed
            return None
        attempts = 1
        while True:
            try:
                rewound = self._client.rewind(self.session_id, length - 1, expected_seq=length)
                return rewound.dropped[0]
            except SessionStoreError as error:
                if error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OUT_OF_RANGE):
                    # Deleted meanwhile, or trimmed to nothing (the length matched, so the seq
                    # is below the first kept one): empty either way.
                    return None
                if (
                    error.code != grpc.StatusCode.ABORTED
                    or error.actual_length is None
                    or attempts == POP_ATTEMPTS
                ):
                    raise
                # Another writer changed the session's length since it was read: pop at its
                # length now.
                attempts += 1
                length = error.actual_length
                if length == 0:
                    return None
