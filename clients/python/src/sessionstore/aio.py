"""AsyncSessionStoreClient: the sessionstore API for asyncio, on grpc.aio; and
AsyncSessionAppender, an appender to one session that reconnects and resends.

The same operations, names, options, results and errors as the sync SessionStoreClient
(sessionstore.client), awaited: ``await store.append(...)``, ``async with`` for the client, an
appender and a watch, ``async for`` over list(), messages() and watches. Requests are built,
responses decoded and failures mapped to SessionStoreError by the code both clients share
(sessionstore._common), so that the two behave alike.

    async with AsyncSessionStoreClient("127.0.0.1:50051") as store:
        await store.append("demo", [{"role": "user", "content": "hi"}])
        print(await store.load("demo"))
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, Callable, Generic, List, Optional, TypeVar, Union

import grpc
import grpc.aio

from sessionstore._common import (
    AppendAck,
    Credentials,
    ListOrder,
    Message,
    MessageIn,
    Pem,
    RewindResult,
    Rewound,
    SessionMeta,
    SessionStoreError,
    TrimResult,
    Window,
    _about,
    _ack,
    _bearer,
    _channel_credentials,
    _fork_request,
    _list_request,
    _load_request,
    _meta,
    _page_events,
    _page_messages,
    _pop_from,
    _request,
    _rewind_request,
    _rewind_result,
    _set_labels_request,
    _token_failed,
    _trim_result,
    _WindowPages,
)
from sessionstore.v1 import session_store_pb2 as pb
from sessionstore.v1 import session_store_pb2_grpc as pb_grpc

__all__ = [
    "RETRY_DELAYS",
    "AsyncAppender",
    "AsyncSessionAppender",
    "AsyncSessionStoreClient",
    "AsyncTokenSource",
    "AsyncWatch",
    "token_interceptors",
]

T = TypeVar("T")
Item = TypeVar("Item")

#: A bearer token: the token itself, or a function returning it (or an awaitable of it, so that
#: it may refresh the token without blocking the event loop), asked before every call.
AsyncTokenSource = Union[str, Callable[[], Union[str, Awaitable[str]]]]


#: The pauses (seconds) before each new attempt of AsyncSessionAppender after UNAVAILABLE: a
#: stream that breaks more times in a row than there are pauses fails the appender.
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


class _BearerToken:
    """Adds ``authorization: Bearer <token>`` to a call's details, asking a token function for
    it each time, as the sync client's interceptor does (and for the same reason: call
    credentials are refused over plaintext)."""

    def __init__(self, token: AsyncTokenSource):
        self._token = token

    async def details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        if callable(self._token):
            try:
                token = self._token()
                if inspect.isawaitable(token):
                    token = await token
            except Exception as error:
                raise _token_failed(error) from error
        else:
            token = self._token
        metadata = grpc.aio.Metadata(*(details.metadata or ()), _bearer(token))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files an interceptor under the first kind of call it intercepts: one class a kind.


class _UnaryUnaryToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: _BearerToken):
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(await self._token.details(details), request)


class _UnaryStreamToken(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: _BearerToken):
        self._token = token

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(await self._token.details(details), request)


class _StreamUnaryToken(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, token: _BearerToken):
        self._token = token

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, requests: Any
    ) -> Any:
        return await continuation(await self._token.details(details), requests)


class _StreamStreamToken(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, token: _BearerToken):
        self._token = token

    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, requests: Any
    ) -> Any:
        return await continuation(await self._token.details(details), requests)


def token_interceptors(token: AsyncTokenSource) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors that send ``token`` on every call, for a grpc.aio channel of your own
    (``grpc.aio.secure_channel(target, credentials, interceptors=token_interceptors(token))``):
    grpc.aio takes interceptors only when a channel is created."""
    bearer = _BearerToken(token)
    return [
        _UnaryUnaryToken(bearer),
        _UnaryStreamToken(bearer),
        _StreamUnaryToken(bearer),
        _StreamStreamToken(bearer),
    ]


async def _unary(call: Awaitable[T]) -> T:
    """The response of a unary call, its failure raised as SessionStoreError."""
    try:
        return await call
    except grpc.RpcError as error:
        raise SessionStoreError.from_rpc_error(error) from None


async def _pages(pages: AsyncIterable[T]) -> AsyncIterator[T]:
    """The pages of a Load or Watch stream, its failure raised as SessionStoreError."""
    try:
        async for page in pages:
            yield page
    except grpc.RpcError as error:
        raise SessionStoreError.from_rpc_error(error) from None


async def _messages(
    pages: AsyncIterable[Union[pb.LoadResponse, pb.WatchResponse]], raw: bool
) -> AsyncIterator[tuple[int, Any]]:
    """(seq, message) for every message of a Load or Watch stream's pages."""
    async for page in _pages(pages):
        for item in _page_messages(page, raw):
            yield item


async def _events(
    pages: AsyncIterable[pb.WatchResponse], raw: bool
) -> AsyncIterator[Union[Message, Rewound]]:
    """Message and Rewound items for the pages of a Watch stream."""
    async for page in _pages(pages):
        for event in _page_events(page, raw):
            yield event


class AsyncSessionStoreClient:
    """A client of a sessionstore server for asyncio; its coroutines may run concurrently.

    The options are the sync SessionStoreClient's: ``target``, ``credentials``,
    ``root_certificates``, ``certificate_chain``, ``private_key``, ``timeout`` and ``token``
    (here the token function may also return an awaitable). Create it, and use it, within the
    event loop it runs on. ``channel`` is a grpc.aio.Channel of your own; grpc.aio adds
    interceptors only when a channel is created, so with a token, create it with
    ``interceptors=token_interceptors(token)`` rather than pass ``token`` here.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        channel: Optional[grpc.aio.Channel] = None,
        timeout: Optional[float] = None,
        credentials: Optional[Credentials] = None,
        root_certificates: Optional[Pem] = None,
        certificate_chain: Optional[Pem] = None,
        private_key: Optional[Pem] = None,
        token: Optional[AsyncTokenSource] = None,
    ):
        self._own_channel = channel is None
        if channel is None:
            channel_credentials = _channel_credentials(
                target, credentials, root_certificates, certificate_chain, private_key
            )
            interceptors = token_interceptors(token) if token is not None else None
            if channel_credentials is None:
                channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
            else:
                channel = grpc.aio.secure_channel(
                    target, channel_credentials, interceptors=interceptors
                )
        elif any(
            option is not None
            for option in (credentials, root_certificates, certificate_chain, private_key)
        ):
            raise ValueError(
                "a channel of your own carries its own credentials: pass no TLS options with it"
            )
        elif token is not None:
            raise ValueError(
                "grpc.aio adds interceptors only when a channel is created: create yours with "
                "interceptors=token_interceptors(token) instead of passing token"
            )
        self._channel = channel
        # The generated gRPC code is untyped: its calls return Any, typed where they are awaited.
        self._stub = pb_grpc.SessionStoreStub(channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout

    async def close(self) -> None:
        """Closes the channel (unless it is one of your own), cancelling calls in progress."""
        if self._own_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncSessionStoreClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def stub(self) -> pb_grpc.SessionStoreStub:
        """The generated gRPC stub on the grpc.aio channel, for what this client does not wrap."""
        return self._stub

    async def append(
        self,
        session_id: str,
        messages: Sequence[MessageIn],
        *,
        expected_seq: Optional[int] = None,
        sync: bool = False,
        labels: Optional[Mapping[str, str]] = None,
    ) -> AppendAck:
        """Appends messages to a session, in order; see SessionStoreClient.append (ABORTED with
        ``actual_length`` when ``expected_seq`` is not the session's length)."""
        async with AsyncAppender(self._stub, _about(session_id)) as appender:
            return await appender.append(
                session_id, messages, expected_seq=expected_seq, sync=sync, labels=labels
            )

    def appender(self) -> AsyncAppender:
        """A streaming appender: one Append stream for many appends (to any sessions)."""
        return AsyncAppender(self._stub, ())

    def session_appender(
        self,
        session_id: str,
        *,
        expected_seq: Optional[int] = None,
        sync: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> AsyncSessionAppender:
        """An appender to one session that survives a broken stream: it reopens the stream and
        resends what was not acknowledged, at the seq it claimed (see AsyncSessionAppender)."""
        return AsyncSessionAppender(
            self,
            session_id,
            expected_seq=expected_seq,
            sync=sync,
            labels=labels,
            retry_delays=retry_delays,
        )

    async def load(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> List[Any]:
        """A session's messages from ``from_seq`` (at most ``limit``; 0: all), as dicts or, with
        ``raw``, as the exact JSON text appended. An unknown session loads as []."""
        return [
            m async for _, m in self.messages(session_id, from_seq=from_seq, limit=limit, raw=raw)
        ]

    async def last(self, session_id: str, n: int, *, raw: bool = False) -> List[Any]:
        """A session's last ``n`` messages, in order."""
        request = _load_request(session_id, limit=n, last=True)
        pages = self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        return [m async for _, m in _messages(pages, raw)]

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> AsyncIterator[tuple[int, Any]]:
        """Streams (seq, message) pairs of a session, as load() selects them (``async for``)."""
        request = _load_request(session_id, from_seq=from_seq, limit=limit)
        pages = self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        return _messages(pages, raw)

    async def window(
        self,
        session_id: str,
        *,
        max_bytes: int = 0,
        whole_turns: bool = False,
        limit: int = 0,
        from_seq: int = 0,
        raw: bool = False,
    ) -> Window:
        """A context window; see SessionStoreClient.window."""
        request = _load_request(
            session_id,
            from_seq=from_seq,
            limit=limit,
            max_bytes=max_bytes,
            whole_turns=whole_turns,
        )
        pages = self._stub.Load(request, timeout=self._timeout, metadata=_about(session_id))
        window = _WindowPages(raw)
        async for page in _pages(pages):
            window.add(page)
        return window.window()

    async def list(
        self,
        prefix: str = "",
        *,
        page_size: int = 0,
        label_selector: str = "",
        order: ListOrder = ListOrder.BY_ID,
    ) -> AsyncIterator[SessionMeta]:
        """Every session whose id starts with ``prefix`` and whose labels match
        ``label_selector``, in ``order``, fetched page by page (``async for``)."""
        token = ""
        while True:
            request = _list_request(prefix, page_size, token, label_selector, order)
            response = await _unary(self._stub.List(request, timeout=self._timeout))
            for meta in response.sessions:
                yield _meta(meta)
            token = response.next_page_token
            if not token:
                return

    async def meta(self, session_id: str) -> SessionMeta:
        """A session's metadata; SessionStoreError(NOT_FOUND) for an unknown session."""
        request = pb.LoadMetaRequest(session_id=session_id)
        call = self._stub.LoadMeta(request, timeout=self._timeout, metadata=_about(session_id))
        return _meta((await _unary(call)).meta)

    async def set_labels(
        self,
        session_id: str,
        labels: Mapping[str, str],
        *,
        expected_labels_revision: Optional[int] = None,
    ) -> SessionMeta:
        """Sets labels of a session; see SessionStoreClient.set_labels (ABORTED with
        ``actual_labels_revision`` when ``expected_labels_revision`` is not the session's)."""
        request = _set_labels_request(session_id, labels, expected_labels_revision)
        call = self._stub.SetLabels(request, timeout=self._timeout, metadata=_about(session_id))
        return _meta((await _unary(call)).meta)

    async def fork(
        self,
        session_id: str,
        at_seq: int,
        new_session_id: str,
        *,
        labels: Optional[Mapping[str, str]] = None,
    ) -> SessionMeta:
        """Creates ``new_session_id`` holding the first ``at_seq`` messages of ``session_id``;
        see SessionStoreClient.fork."""
        request = _fork_request(session_id, at_seq, new_session_id, labels)
        call = self._stub.Fork(request, timeout=self._timeout, metadata=_about(session_id))
        return _meta((await _unary(call)).meta)

    async def rewind(
        self,
        session_id: str,
        to_seq: int,
        *,
        expected_seq: Optional[int] = None,
        raw: bool = False,
    ) -> RewindResult:
        """Drops the messages from ``to_seq`` on and returns them; see SessionStoreClient.rewind."""
        request = _rewind_request(session_id, to_seq, expected_seq)
        call = self._stub.Rewind(request, timeout=self._timeout, metadata=_about(session_id))
        return _rewind_result(await _unary(call), raw)

    async def pop_item(self, session_id: str, *, raw: bool = False) -> Optional[Any]:
        """Removes and returns a session's last message; None for an empty or unknown session.
        ABORTED if another writer appends in between (see SessionStoreClient.pop_item)."""
        try:
            meta = await self.meta(session_id)
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        length = _pop_from(meta)
        if length is None:
            return None
        return (await self.rewind(session_id, length - 1, expected_seq=length, raw=raw)).dropped[0]

    async def trim(self, session_id: str, before_seq: int) -> TrimResult:
        """Drops the messages before ``before_seq``; see SessionStoreClient.trim."""
        request = pb.TrimRequest(session_id=session_id, before_seq=before_seq)
        call = self._stub.Trim(request, timeout=self._timeout, metadata=_about(session_id))
        return _trim_result(await _unary(call))

    async def delete(self, session_id: str) -> bool:
        """Deletes a session; returns whether it existed."""
        request = pb.DeleteRequest(session_id=session_id)
        call = self._stub.Delete(request, timeout=self._timeout, metadata=_about(session_id))
        response: pb.DeleteResponse = await _unary(call)
        return response.existed

    async def flush(self, session_id: str = "") -> int:
        """Writes and fsyncs a session's buffered messages ("": every session's); returns how
        many messages it wrote."""
        request = pb.FlushRequest(session_id=session_id)
        metadata = _about(session_id) if session_id else ()
        call = self._stub.Flush(request, timeout=self._timeout, metadata=metadata)
        response: pb.FlushResponse = await _unary(call)
        return response.flushed

    def watch(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> AsyncWatch[tuple[int, Any]]:
        """Streams (seq, message) pairs of a session from ``from_seq``, then live; it ends as
        SessionStoreClient.watch does (NOT_FOUND on delete, UNAVAILABLE on shutdown,
        CANCELLED after cancel())."""
        request = pb.WatchRequest(session_id=session_id, from_seq=from_seq)
        call = self._stub.Watch(request, metadata=_about(session_id))
        return AsyncWatch(call, _messages(call, raw))

    def watch_events(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> AsyncWatch[Union[Message, Rewound]]:
        """As watch(), telling of rewinds: Message(seq, message) and Rewound(to_seq) items."""
        request = pb.WatchRequest(session_id=session_id, from_seq=from_seq)
        call = self._stub.Watch(request, metadata=_about(session_id))
        return AsyncWatch(call, _events(call, raw))


class AsyncAppender:
    """One Append stream: each append() sends a request and waits for its ack; concurrent
    appends take turns. Use it with ``async with``, or await close(). Once an append fails the
    stream is over, and every later append raises that error."""

    def __init__(self, stub: pb_grpc.SessionStoreStub, metadata: tuple[tuple[str, str], ...]):
        self._call: Any = stub.Append(metadata=metadata)
        self._turn = asyncio.Lock()
        self._error: Optional[SessionStoreError] = None
        self._closed = False

    async def append(
        self,
        session_id: str,
        messages: Sequence[MessageIn],
        *,
        expected_seq: Optional[int] = None,
        sync: bool = False,
        labels: Optional[Mapping[str, str]] = None,
    ) -> AppendAck:
        """Appends to a session and returns the ack; see SessionStoreClient.append."""
        request = _request(session_id, messages, expected_seq, sync, labels)
        async with self._turn:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ValueError("append on a closed AsyncAppender")
            try:
                await self._call.write(request)
                response = await self._call.read()
            except grpc.RpcError as error:
                self._error = SessionStoreError.from_rpc_error(error)
                raise self._error from None
            except SessionStoreError as error:  # the token function failed: no stream opened
                self._error = error
                raise
            if response is grpc.aio.EOF:
                self._error = SessionStoreError(
                    grpc.StatusCode.UNKNOWN, "the server ended the Append stream without an ack"
                )
                raise self._error
            return _ack(response)

    async def close(self) -> None:
        """Ends the stream and waits for the server to end it."""
        async with self._turn:
            if self._closed:
                return
            self._closed = True
            if self._error is not None:
                self._call.cancel()
                return
            try:
                await self._call.done_writing()
                while await self._call.read() is not grpc.aio.EOF:
                    pass
            except grpc.RpcError as error:
                raise SessionStoreError.from_rpc_error(error) from None

    async def __aenter__(self) -> AsyncAppender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncSessionAppender:
    """Appends to one session, one append() at a time, over an Append stream that it reopens
    when it breaks (UNAVAILABLE: a dropped connection, a server restart).

    Every request carries ``expected_seq``, the seq its first message claims: the session's
    length when the appender starts (or the ``expected_seq`` given), then the last ack's
    ``next_seq``. When the stream breaks before the ack, the appender opens another and sends
    the same request again: the server stores it if it lacks it, and acknowledges it if it
    already holds it byte for byte (its ack was what got lost), so each message is stored once.
    Without ``expected_seq``, an ABORTED because another writer appended moves this appender's
    messages after theirs; with it, the appender is strict and fails with ABORTED. It fails on
    any other status, and when the stream breaks more times in a row than ``retry_delays`` has
    pauses; once failed, every append raises that error. As the TypeScript client's appender
    does, this holds while the appender is the session's only writer (a resend after another
    writer's append could be stored twice: see clients/ts/README.md).
    """

    def __init__(
        self,
        client: AsyncSessionStoreClient,
        session_id: str,
        *,
        expected_seq: Optional[int] = None,
        sync: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ):
        self._client = client
        self._session_id = session_id
        self._strict = expected_seq is not None
        self._next_seq = expected_seq
        self._sync = sync
        self._labels = labels
        self._retry_delays = retry_delays
        self._stream: Optional[AsyncAppender] = None
        self._turn = asyncio.Lock()
        self._error: Optional[SessionStoreError] = None

    @property
    def next_seq(self) -> Optional[int]:
        """The seq the next message appended will claim; None until the first append."""
        return self._next_seq

    async def append(self, messages: Sequence[MessageIn]) -> AppendAck:
        """Appends messages to the session, in order, and returns the ack."""
        async with self._turn:
            if self._error is not None:
                raise self._error
            pauses = iter(self._retry_delays)
            while True:
                try:
                    if self._next_seq is None:
                        self._next_seq = await self._length()
                    ack = await self._send(messages, self._next_seq)
                except SessionStoreError as error:
                    await self._drop_stream()
                    pause = next(pauses, None)
                    if error.code == grpc.StatusCode.UNAVAILABLE and pause is not None:
                        await asyncio.sleep(pause)
                        continue
                    # Another writer appended: go after their messages. (A session shorter
                    # than acknowledged, deleted or having lost unsynced messages, fails.)
                    moved = error.actual_length
                    if (
                        error.code == grpc.StatusCode.ABORTED
                        and not self._strict
                        and moved is not None
                        and self._next_seq is not None
                        and moved > self._next_seq
                    ):
                        self._next_seq = moved
                        continue
                    self._error = error
                    raise
                self._next_seq = ack.next_seq
                return ack

    async def _length(self) -> int:
        try:
            return (await self._client.meta(self._session_id)).message_count
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return 0
            raise

    async def _send(self, messages: Sequence[MessageIn], expected_seq: int) -> AppendAck:
        if self._stream is None:
            self._stream = self._client.appender()
        return await self._stream.append(
            self._session_id,
            messages,
            expected_seq=expected_seq,
            sync=self._sync,
            labels=self._labels,
        )

    async def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()  # a failed stream is only cancelled: this does not raise

    async def close(self) -> None:
        """Ends the stream (every append returned has been acknowledged)."""
        async with self._turn:
            stream, self._stream = self._stream, None
            if stream is not None:
                await stream.close()

    async def __aenter__(self) -> AsyncSessionAppender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncWatch(Generic[Item]):
    """An async iterator of what AsyncSessionStoreClient.watch (``(seq, message)`` pairs) or
    watch_events (Message and Rewound) yields; cancel(), or leaving ``async with``, ends it."""

    def __init__(self, call: Any, items: AsyncIterator[Item]):
        self._call = call
        self._items = items
        self._cancelled = False

    def __aiter__(self) -> AsyncWatch[Item]:
        return self

    async def __anext__(self) -> Item:
        try:
            return await self._items.__anext__()
        except asyncio.CancelledError:
            # grpc.aio ends a cancelled call's stream with CancelledError; the sync client's
            # watch ends with SessionStoreError(CANCELLED), and so does this one. A
            # cancellation of the task itself goes on as it came.
            if not self._cancelled:
                raise
            raise SessionStoreError(grpc.StatusCode.CANCELLED, "the watch was cancelled") from None

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    async def __aenter__(self) -> AsyncWatch[Item]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()
