"""The OpenAI Agents SDK's ``Session``, kept in sessionstore.

    from agents import Agent, Runner
    from sessionstore.integrations.openai_agents import SessionStoreSession

    session = SessionStoreSession("chat-42", address="127.0.0.1:50051")
    result = await Runner.run(agent, "Hello", session=session)

Each item the Runner records (a user message, a tool call, its output, a reply: a JSON object
in the SDK's Responses input format) is one message of the sessionstore session ``session_id``,
stored as its JSON text and read back as a dict. Other processes, in any language, can load,
watch, fork or list the same session with the sessionstore clients.

The SDK's protocol is asyncio, and so is the client under it: sessionstore.aio's
AsyncSessionStoreClient, on the event loop the Runner runs on (no worker threads).
"""

from __future__ import annotations

import asyncio

import grpc

from sessionstore.aio import AsyncSessionStoreClient
from sessionstore.client import SessionStoreError

try:
    from agents import SessionSettings, TResponseInputItem
except ImportError as error:  # the extra is not installed
    raise ImportError(
        "sessionstore.integrations.openai_agents needs the OpenAI Agents SDK: "
        'pip install "sessionstore[openai-agents]"'
    ) from error

#: How many times pop_item tries again when other writers keep changing the session's length
#: between its read of the length and its conditional rewind (each try is one round trip).
POP_ATTEMPTS = 100


class SessionStoreSession:
    """An OpenAI Agents SDK session (the ``agents.memory.Session`` protocol) whose items are the
    messages of one sessionstore session.

    ``session_id`` names the sessionstore session: 1-200 characters of ``[A-Za-z0-9._:@~-]``, not
    starting with ``.`` (the server refuses any other with INVALID_ARGUMENT). Give ``address``
    (``host:port``; plaintext to a loopback address, TLS to any other) or ``client``, an
    ``AsyncSessionStoreClient`` of your own, e.g. one with a token, TLS options, a timeout or a
    retry policy, which ``close()`` leaves open; with neither, the client's default address,
    127.0.0.1:50051. A client the session makes itself is made on first use, on the event loop
    that uses it (so the session can be made before ``asyncio.run``; another loop gets its own).
    ``session_settings`` are the SDK's: their ``limit`` is what ``get_items()`` returns by default.

    Failures of the server are raised as ``sessionstore.SessionStoreError``, carrying the gRPC
    status code. The client retries what is safe to retry after UNAVAILABLE (a server
    restarting): reads, and nothing that writes (an append without a seq to claim, a rewind, a
    delete could take effect twice).
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        *,
        address: str | None = None,
        client: AsyncSessionStoreClient | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        if address is not None and client is not None:
            raise ValueError("give address or client, not both")
        self.session_id = session_id
        self.session_settings = (
            session_settings if session_settings is not None else SessionSettings()
        )
        self._owns_client = client is None
        self._address = address
        self._client = client
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> AsyncSessionStoreClient:
        """The sessionstore asyncio client, for what the protocol does not cover: a context
        window (``load_window``), forks, labels, watching the session as the Runner records it."""
        if not self._owns_client:
            assert self._client is not None
            return self._client
        # A grpc.aio channel works on the loop it was made on: a session used from one
        # asyncio.run, then another, makes a client for each (the old loop is gone with it).
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._loop = loop
            self._client = (
                AsyncSessionStoreClient()
                if self._address is None
                else AsyncSessionStoreClient(self._address)
            )
        return self._client

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's items, oldest first: all of them, or the latest ``limit`` (by default
        ``session_settings.limit``, where set). ``limit=0`` returns none."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        if limit is None:
            return await self.client.load(self.session_id)
        if limit < 0:
            raise ValueError(f"limit must be None or at least 0, not {limit}")
        if limit == 0:
            return []
        return await self.client.last(self.session_id, limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Appends the items, in order, in one request: all of them are stored or none (each must
        be a JSON object: a dict of JSON values; any other fails with INVALID_ARGUMENT before
        anything is sent)."""
        if not items:
            return
        await self.client.append(self.session_id, list(items))

    async def pop_item(self) -> TResponseInputItem | None:
        """Removes and returns the latest item; None when the session is empty. Atomic: the
        rewind is conditional on the session's length, so an item another writer appends in
        between is never dropped unseen; on such a conflict it pops the new latest item.

        It reads the length, then rewinds by one on the condition that the length is still
        that; on ABORTED, again at the length reported."""
        meta = await self.client.meta(self.session_id)
        if meta is None or meta.message_count == meta.first_seq:  # empty, or all trimmed
            return None
        length = meta.message_count
        attempts = 1
        while True:
            try:
                rewound = await self.client.rewind(
                    self.session_id, length - 1, expected_seq=length
                )
                item: TResponseInputItem = rewound.dropped[0]
                return item
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

    async def clear_session(self) -> None:
        """Deletes the session (its labels too); adding items afterwards starts it again."""
        await self.client.delete(self.session_id)

    async def close(self) -> None:
        """Closes the client, if this session made it."""
        client, self._client = self._client, None
        if self._owns_client and client is not None:
            await client.close()
        elif not self._owns_client:
            self._client = client

    async def __aenter__(self) -> SessionStoreSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
