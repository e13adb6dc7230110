"""AsyncSessionStoreClient: the sessionstore API for asyncio, on grpc.aio; and
AsyncSessionAppender, an appender to one session that reconnects and resends.

The same operations, names, options, results, retries and errors as the sync SessionStoreClient
(sessionstore.client), awaited: ``await store.append(...)``, ``async with`` for the client, an
appender and a watch, ``async for`` over list(), messages() and watches. Messages are checked,
requests built, responses decoded, failures mapped to SessionStoreError, retries decided and
appenders' errors handled by the code both clients share (sessionstore._common), so that the two
differ only in awaiting where the other blocks.

    async with AsyncSessionStoreClient("127.0.0.1:50051") as store:
        await store.append("demo", [{"role": "user", "content": "hi"}])
        print(await store.load("demo"))
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, Union

import grpc
import grpc.aio

from sessionstore._common import (
    _ONCE,
    AppendAck,
    Credentials,
    FlushAllResult,
    ListOrder,
    Message,
    MessageIn,
    Pem,
    RetryPolicy,
    RewindResult,
    Rewound,
    SessionMeta,
    SessionStoreError,
    TrimResult,
    Window,
    _about,
    _ack,
    _AppenderState,
    _Attempts,
    _bearer,
    _channel_credentials,
    _channel_options,
    _closed_appender,
    _encode_all,
    _flush_all_result,
    _fork_request,
    _list_request,
    _load_request,
    _LoadCursor,
    _meta,
    _page_items,
    _page_messages,
    _pop_from,
    _request,
    _rewind_request,
    _rewind_result,
    _set_labels_request,
    _token_failed,
    _trim_result,
    _WatchCursor,
    _WindowPages,
)
from sessionstore.v1 import session_store_pb2 as pb
from sessionstore.v1 import session_store_pb2_grpc as pb_grpc

__all__ = [
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


async def _retrying(
    policy: RetryPolicy,
    timeout: float | None,
    attempt: Callable[[float | None], Awaitable[T]],
) -> T:
    """Runs ``attempt`` (given what is left of ``timeout``) until it succeeds, fails with a
    status that is not retriable, runs out of attempts, or would retry past the timeout; every
    failure raised as SessionStoreError. (The sync client's _retrying, awaited.)"""
    attempts = _Attempts(policy, timeout)
    while True:
        try:
            return await attempt(attempts.timeout())
        except (grpc.RpcError, SessionStoreError) as caught:
            delay = attempts.pause_after(caught)
            await asyncio.sleep(delay)


async def _messages(
    pages: AsyncIterable[pb.LoadResponse], raw: bool
) -> AsyncIterator[tuple[int, Any]]:
    """(seq, message) for every message of a Load stream's pages."""
    async for page in pages:
        for item in _page_messages(page, raw):
            yield item


class AsyncSessionStoreClient:
    """A client of a sessionstore server for asyncio; its coroutines may run concurrently.

    The options are the sync SessionStoreClient's: ``target``, ``credentials``,
    ``root_certificates``, ``certificate_chain``, ``private_key``, ``timeout``, ``token`` (here
    the token function may also return an awaitable) and ``retry`` (which calls are retried, and
    how: see SessionStoreClient). Create it, and use it, within the event loop it runs on.
    ``channel`` is a grpc.aio.Channel of your own; grpc.aio adds interceptors only when a channel
    is created, so with a token, create it with ``interceptors=token_interceptors(token)`` rather
    than pass ``token`` here.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        channel: grpc.aio.Channel | None = None,
        timeout: float | None = None,
        credentials: Credentials | None = None,
        root_certificates: Pem | None = None,
        certificate_chain: Pem | None = None,
        private_key: Pem | None = None,
        token: AsyncTokenSource | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ):
        self._own_channel = channel is None
        if channel is None:
            channel_credentials = _channel_credentials(
                target, credentials, root_certificates, certificate_chain, private_key
            )
            interceptors = token_interceptors(token) if token is not None else None
            options = _channel_options(retry)
            if channel_credentials is None:
                channel = grpc.aio.insecure_channel(
                    target, options=options, interceptors=interceptors
                )
            else:
                channel = grpc.aio.secure_channel(
                    target, channel_credentials, options=options, interceptors=interceptors
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
        self._retry = retry

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

    @property
    def retry(self) -> RetryPolicy:
        """The client's retry policy."""
        return self._retry

    async def append(
        self,
        session_id: str,
        messages: Sequence[MessageIn],
        *,
        expected_seq: int | None = None,
        sync: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> AppendAck:
        """Appends messages to a session in one request, atomically; see
        SessionStoreClient.append (INVALID_ARGUMENT before sending for a message that is not
        one JSON object; ABORTED with ``actual_length`` when ``expected_seq`` is not the
        session's length; retried only with ``expected_seq``)."""
        request = _request(session_id, messages, expected_seq, sync, labels)
        policy = self._retry if expected_seq is not None else _ONCE

        async def attempt(timeout: float | None) -> AppendAck:
            async with _AsyncAppender(self._stub, _about(session_id), timeout) as stream:
                return _ack(await stream.send(request))

        return await _retrying(policy, self._timeout, attempt)

    def appender(
        self,
        session_id: str,
        *,
        expected_seq: int | None = None,
        sync: bool = False,
        labels: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncSessionAppender:
        """A long-lived writer to one session that survives broken streams and server restarts,
        storing each message once, in order (see AsyncSessionAppender):
        ``async with store.appender(id) as appender: await appender.append([...])``.
        ``retry``: the client's policy unless given."""
        return AsyncSessionAppender(
            self,
            session_id,
            expected_seq=expected_seq,
            sync=sync,
            labels=labels,
            retry=self._retry if retry is None else retry,
        )

    async def load(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> list[Any]:
        """A session's messages from ``from_seq`` (at most ``limit``; 0: all), as dicts or, with
        ``raw``, as the exact JSON text appended. An unknown session loads as []."""
        return [
            m async for _, m in self.messages(session_id, from_seq=from_seq, limit=limit, raw=raw)
        ]

    async def last(self, session_id: str, n: int, *, raw: bool = False) -> list[Any]:
        """A session's last ``n`` messages, in order."""
        cursor = _LoadCursor(session_id, 0, n, True)
        return [m async for _, m in _messages(self._load_pages(session_id, cursor), raw)]

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> AsyncIterator[tuple[int, Any]]:
        """Streams (seq, message) pairs of a session, as load() selects them (``async for``); a
        stream broken midway (UNAVAILABLE) goes on from the next seq."""
        cursor = _LoadCursor(session_id, from_seq, limit, False)
        return _messages(self._load_pages(session_id, cursor), raw)

    async def load_window(
        self,
        session_id: str,
        *,
        max_bytes: int = 0,
        whole_turns: bool = False,
        limit: int = 0,
        from_seq: int = 0,
        raw: bool = False,
    ) -> Window:
        """A context window; see SessionStoreClient.load_window."""
        request = _load_request(
            session_id,
            from_seq=from_seq,
            limit=limit,
            max_bytes=max_bytes,
            whole_turns=whole_turns,
        )

        async def attempt(timeout: float | None) -> Window:
            window = _WindowPages(raw)
            call = self._stub.Load(request, timeout=timeout, metadata=_about(session_id))
            async for page in call:
                window.add(page)
            return window.window()

        return await _retrying(self._retry, self._timeout, attempt)

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
            response = await self._unary(self._stub.List, request, None, self._retry)
            for meta in response.sessions:
                yield _meta(meta)
            token = response.next_page_token
            if not token:
                return

    async def meta(self, session_id: str) -> SessionMeta | None:
        """A session's metadata; None for a session that does not exist."""
        return await self._meta(session_id, self._retry)

    async def set_labels(
        self,
        session_id: str,
        labels: Mapping[str, str],
        *,
        expected_labels_revision: int | None = None,
    ) -> SessionMeta:
        """Sets labels of a session; see SessionStoreClient.set_labels (ABORTED with
        ``actual_labels_revision`` when ``expected_labels_revision`` is not the session's)."""
        request = _set_labels_request(session_id, labels, expected_labels_revision)
        policy = self._retry if expected_labels_revision is None else _ONCE
        return _meta((await self._unary(self._stub.SetLabels, request, session_id, policy)).meta)

    async def fork(
        self,
        session_id: str,
        at_seq: int,
        new_session_id: str,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> SessionMeta:
        """Creates ``new_session_id`` holding the first ``at_seq`` messages of ``session_id``;
        see SessionStoreClient.fork."""
        request = _fork_request(session_id, at_seq, new_session_id, labels)
        return _meta((await self._unary(self._stub.Fork, request, session_id, _ONCE)).meta)

    async def rewind(
        self,
        session_id: str,
        to_seq: int,
        *,
        expected_seq: int | None = None,
        raw: bool = False,
    ) -> RewindResult:
        """Drops the messages from ``to_seq`` on and returns them; see SessionStoreClient.rewind."""
        request = _rewind_request(session_id, to_seq, expected_seq)
        response = await self._unary(self._stub.Rewind, request, session_id, _ONCE)
        return _rewind_result(response, raw)

    async def pop_last(self, session_id: str, *, raw: bool = False) -> Any | None:
        """Removes and returns a session's last message; None for an empty or unknown session.
        ABORTED if another writer appends in between (see SessionStoreClient.pop_last)."""
        meta = await self.meta(session_id)
        length = None if meta is None else _pop_from(meta)
        if length is None:
            return None
        return (await self.rewind(session_id, length - 1, expected_seq=length, raw=raw)).dropped[0]

    async def trim(self, session_id: str, before_seq: int) -> TrimResult:
        """Drops the messages before ``before_seq``; see SessionStoreClient.trim."""
        request = pb.TrimRequest(session_id=session_id, before_seq=before_seq)
        return _trim_result(await self._unary(self._stub.Trim, request, session_id, _ONCE))

    async def delete(self, session_id: str) -> bool:
        """Deletes a session; returns whether it existed."""
        request = pb.DeleteRequest(session_id=session_id)
        response: pb.DeleteResponse = await self._unary(
            self._stub.Delete, request, session_id, _ONCE
        )
        return response.existed

    async def flush(self, session_id: str) -> int:
        """Writes and fsyncs a session's buffered messages; returns how many messages it wrote
        (0 for an unknown session). flush_all() flushes every session."""
        if not session_id:
            raise ValueError("flush() needs a session id; flush_all() flushes every session")
        request = pb.FlushRequest(session_id=session_id)
        response: pb.FlushResponse = await self._unary(
            self._stub.Flush, request, session_id, self._retry
        )
        return response.flushed

    async def flush_all(self) -> FlushAllResult:
        """Writes and fsyncs every session's buffered messages; see SessionStoreClient.flush_all."""
        request = pb.FlushRequest(session_id="")
        return _flush_all_result(await self._unary(self._stub.Flush, request, None, self._retry))

    def watch(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> AsyncWatch[tuple[int, Any]]:
        """Streams (seq, message) pairs of a session from ``from_seq``, then live, each once,
        reopening after UNAVAILABLE from the next seq not yielded; it ends as
        SessionStoreClient.watch does (NOT_FOUND on delete, CANCELLED after cancel(); cancelling
        the task raises asyncio.CancelledError, as asyncio does)."""
        return AsyncWatch(self, _WatchCursor(session_id, from_seq), raw, events=False)

    def watch_events(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> AsyncWatch[Message | Rewound]:
        """As watch(), telling of rewinds: Message(seq, message) and Rewound(to_seq) items."""
        return AsyncWatch(self, _WatchCursor(session_id, from_seq), raw, events=True)

    async def _unary(
        self, rpc: Callable[..., Any], request: Any, session_id: str | None, policy: RetryPolicy
    ) -> Any:
        metadata = _about(session_id) if session_id else ()

        async def attempt(timeout: float | None) -> Any:
            return await rpc(request, timeout=timeout, metadata=metadata)

        return await _retrying(policy, self._timeout, attempt)

    async def _meta(self, session_id: str, policy: RetryPolicy) -> SessionMeta | None:
        request = pb.LoadMetaRequest(session_id=session_id)
        try:
            response = await self._unary(self._stub.LoadMeta, request, session_id, policy)
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return _meta(response.meta)

    async def _length(self, session_id: str) -> int:
        """The session's length (0 for one that does not exist), in one attempt: an appender or
        a watch asks, and retries under its own count."""
        meta = await self._meta(session_id, _ONCE)
        return 0 if meta is None else meta.message_count

    async def _load_pages(
        self, session_id: str, cursor: _LoadCursor
    ) -> AsyncIterator[pb.LoadResponse]:
        """The pages of a Load, opened again from the next seq after a retriable failure; a
        page read resets the count of attempts."""
        attempts = _Attempts(self._retry, self._timeout)
        while True:
            call = None
            try:
                call = self._stub.Load(
                    cursor.request(), timeout=attempts.timeout(), metadata=_about(session_id)
                )
                async for page in call:
                    attempts.progress()
                    yield page
                    if not cursor.advance(page):
                        return
                return
            except (grpc.RpcError, SessionStoreError) as caught:
                delay = attempts.pause_after(caught)
                await asyncio.sleep(delay)
            finally:
                if call is not None:
                    call.cancel()


class _AsyncAppender:
    """One Append stream: each send() writes a request and waits for its ack. Once a send fails
    the stream is over, and every later send raises that error."""

    def __init__(
        self,
        stub: pb_grpc.SessionStoreStub,
        metadata: tuple[tuple[str, str], ...],
        timeout: float | None = None,
    ):
        self._call: Any = stub.Append(timeout=timeout, metadata=metadata)
        self._error: SessionStoreError | None = None
        self._closed = False

    async def send(self, request: pb.AppendRequest) -> pb.AppendResponse:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise _closed_appender()
        try:
            await self._call.write(request)
            response = await self._call.read()
        except grpc.RpcError as error:
            self._error = SessionStoreError.from_rpc_error(error)
            raise self._error from None
        except SessionStoreError as error:  # the token function failed: no stream opened
            self._error = error
            raise
        except asyncio.InvalidStateError:
            # grpc.aio refuses a write on a call the server already ended (an idle stream that
            # a server shutting down closed): its status says why.
            code: grpc.StatusCode = await self._call.code()
            details = await self._call.details()
            if code == grpc.StatusCode.OK:
                code, details = grpc.StatusCode.UNAVAILABLE, "the server ended the Append stream"
            self._error = SessionStoreError(code, details or "the Append stream ended")
            raise self._error from None
        if response is grpc.aio.EOF:
            self._error = SessionStoreError(
                grpc.StatusCode.UNAVAILABLE, "the server ended the Append stream without an ack"
            )
            raise self._error
        ack: pb.AppendResponse = response
        return ack

    def abandon(self) -> None:
        """Ends the stream without waiting (it failed)."""
        self._closed = True
        self._call.cancel()

    async def close(self) -> None:
        """Ends the stream and waits for the server to end it. How it ends does not matter
        (a server shutting down ends it with UNAVAILABLE): every request sent on it was
        acknowledged, or its send failed."""
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
        except grpc.RpcError:
            pass

    async def __aenter__(self) -> _AsyncAppender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._error is not None or exc_info[0] is not None:
            self.abandon()
        else:
            await self.close()


class AsyncSessionAppender:
    """A long-lived writer to one session, for asyncio: each append() sends one request and
    returns its acknowledgement; concurrent appends take turns. Use it with ``async with``, or
    await close(). It reconnects and resends as the sync SessionAppender does (the decisions are
    the same code, sessionstore._common._AppenderState): it starts at ``expected_seq`` or the
    session's length; every request claims its seq; after a broken stream it sends the request
    again, with backoff, and the server acknowledges what it already holds, so each message is
    stored once; without ``expected_seq`` it moves after another writer's messages, with it it
    fails with ABORTED; any other failure, or more broken streams in a row than ``retry``
    allows, fails it for good. Exactly once holds while it is the session's only writer.
    """

    def __init__(
        self,
        client: AsyncSessionStoreClient,
        session_id: str,
        *,
        expected_seq: int | None = None,
        sync: bool = False,
        labels: Mapping[str, str] | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ):
        self._client = client
        self._state = _AppenderState(session_id, expected_seq, sync, labels, retry)
        self._stream: _AsyncAppender | None = None
        self._turn = asyncio.Lock()

    @property
    def session_id(self) -> str:
        return self._state.session_id

    @property
    def next_seq(self) -> int | None:
        """The seq the next message appended will claim; None until the first append."""
        return self._state.next_seq

    @property
    def error(self) -> SessionStoreError | None:
        """The error the appender failed with, if it did."""
        return self._state.error

    async def append(self, messages: Sequence[MessageIn]) -> AppendAck:
        """Appends messages to the session, in order, in one request, and returns the ack. A
        message that is not one JSON object raises INVALID_ARGUMENT here, sending nothing, and
        does not fail the appender."""
        texts = _encode_all(messages)
        async with self._turn:
            state = self._state
            state.check()
            while True:
                try:
                    if state.next_seq is None:
                        state.next_seq = await self._client._length(state.session_id)
                    if self._stream is None:
                        self._stream = _AsyncAppender(
                            self._client.stub, _about(state.session_id)
                        )
                    return state.acknowledged(await self._stream.send(state.request(texts)))
                except SessionStoreError as error:
                    self._drop_stream()
                    delay = state.after(error)  # raises when the appender fails
                await asyncio.sleep(delay)

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abandon()

    async def close(self) -> None:
        """Ends the stream (every append that returned was acknowledged); later appends raise
        FAILED_PRECONDITION."""
        async with self._turn:
            self._state.closed = True
            stream, self._stream = self._stream, None
            if stream is not None:
                await stream.close()

    async def __aenter__(self) -> AsyncSessionAppender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class AsyncWatch(Generic[Item]):
    """An async iterator of what AsyncSessionStoreClient.watch (``(seq, message)`` pairs) or
    watch_events (Message and Rewound) yields, reopening its stream after a retriable failure
    from the next seq not yet yielded; cancel(), or leaving ``async with``, ends it with
    SessionStoreError(CANCELLED)."""

    def __init__(
        self, client: AsyncSessionStoreClient, cursor: _WatchCursor, raw: bool, events: bool
    ):
        self._client = client
        self._cursor = cursor
        self._raw = raw
        self._events = events
        self._cancelled = False
        self._call: Any = None
        self._wake: asyncio.Event | None = None
        self._items: AsyncIterator[Any] = self._run()

    async def _run(self) -> AsyncIterator[Any]:
        cursor, client = self._cursor, self._client
        session_id = cursor.request().session_id
        attempts = _Attempts(client.retry)
        self._wake = asyncio.Event()
        reopening = False
        while True:
            try:
                if self._cancelled:
                    raise self._cancellation()
                if reopening and cursor.needs_length:
                    page = cursor.rewound_to(await client._length(session_id))
                    if page is not None:
                        for item in _page_items(page, self._raw, self._events):
                            yield item
                reopening = True
                self._call = client.stub.Watch(cursor.request(), metadata=_about(session_id))
                async for page in self._call:
                    attempts.progress()
                    cursor.advance(page)
                    for item in _page_items(page, self._raw, self._events):
                        yield item
                return
            except asyncio.CancelledError:
                # grpc.aio ends a cancelled call's stream with CancelledError; a watch ended by
                # cancel() ends with SessionStoreError(CANCELLED), as the sync client's does. A
                # cancellation of the task itself goes on as it came.
                if not self._cancelled:
                    raise
                raise self._cancellation() from None
            except (grpc.RpcError, SessionStoreError) as caught:
                if self._cancelled:
                    raise self._cancellation() from None
                delay = attempts.pause_after(caught)
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    def _cancellation() -> SessionStoreError:
        return SessionStoreError(grpc.StatusCode.CANCELLED, "the watch was cancelled")

    def __aiter__(self) -> AsyncWatch[Item]:
        return self

    async def __anext__(self) -> Item:
        item: Item = await self._items.__anext__()
        return item

    def cancel(self) -> None:
        self._cancelled = True
        if self._wake is not None:
            self._wake.set()
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncWatch[Item]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()
