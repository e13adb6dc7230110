"""SessionStoreClient: the whole sessionstore API over one gRPC channel.

Messages go in as dicts (encoded compactly with json.dumps) or as raw JSON text (str or bytes, sent
exactly as given) and come out as dicts, or as the exact text that was appended with raw=True.
Every failure is a SessionStoreError carrying the gRPC status code; a message that is not one JSON
object is refused before anything is sent. Calls safe to repeat are retried after UNAVAILABLE (a
server restarting, a dropped connection) under a RetryPolicy; reads and watches resume from the
next seq; SessionAppender appends to one session across broken streams, each message once. The
client speaks plaintext to a loopback address and TLS to any other, unless told otherwise; it can
present a client certificate (mTLS) and send a bearer token, fixed or asked for before every call.
The contract all sessionstore clients keep: clients/README.md.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from sessionstore._common import (
    ACTUAL_LABELS_REVISION_KEY,
    ACTUAL_LENGTH_KEY,
    AUTHORIZATION_KEY,
    FIRST_SEQ_KEY,
    SESSION_ID_KEY,
    _ONCE,
    AppendAck,
    Credentials,
    FlushAllResult,
    ListOrder,
    Message,
    MessageIn,
    Pem,
    RewindResult,
    RetryPolicy,
    Rewound,
    SessionMeta,
    SessionStoreError,
    TokenSource,
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
    # Defined in sessionstore._common, which sessionstore.aio shares; importable from here too.
    "ACTUAL_LABELS_REVISION_KEY",
    "ACTUAL_LENGTH_KEY",
    "AUTHORIZATION_KEY",
    "FIRST_SEQ_KEY",
    "SESSION_ID_KEY",
    "AppendAck",
    "Credentials",
    "FlushAllResult",
    "ListOrder",
    "Message",
    "MessageIn",
    "Pem",
    "RewindResult",
    "RetryPolicy",
    "Rewound",
    "SessionMeta",
    "SessionStoreError",
    "TokenSource",
    "TrimResult",
    "Window",
    # Defined here.
    "SessionAppender",
    "SessionStoreClient",
    "Watch",
]

T = TypeVar("T")
Item = TypeVar("Item")


def _retrying(
    policy: RetryPolicy, timeout: float | None, attempt: Callable[[float | None], T]
) -> T:
    """Runs ``attempt`` (given what is left of ``timeout``) until it succeeds, fails with a
    status that is not retriable, runs out of attempts, or would retry past the timeout; every
    failure raised as SessionStoreError."""
    attempts = _Attempts(policy, timeout)
    while True:
        try:
            return attempt(attempts.timeout())
        except (grpc.RpcError, SessionStoreError) as caught:
            delay = attempts.pause_after(caught)
            time.sleep(delay)


def _messages(pages: Iterable[pb.LoadResponse], raw: bool) -> Iterator[tuple[int, Any]]:
    """(seq, message) for every message of a Load stream's pages."""
    for page in pages:
        yield from _page_messages(page, raw)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call, asking a token function for it each
    time. An interceptor, not grpc call credentials: those are refused on a plaintext channel,
    and a server behind a mesh sidecar, or on loopback, takes tokens over plaintext."""

    def __init__(self, token: TokenSource):
        self._token = token

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        if callable(self._token):
            try:
                token = self._token()
            except Exception as error:
                raise _token_failed(error) from error
        else:
            token = self._token
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), _bearer(token)),
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def _intercept(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(details), request)

    # The four kinds of call are intercepted alike: (continuation, details, request or requests).
    # (Their stubs' generic signatures are wider than this one's Any: hence the ignores.)
    intercept_unary_unary = _intercept  # type: ignore[assignment]
    intercept_unary_stream = _intercept  # type: ignore[assignment]
    intercept_stream_unary = _intercept  # type: ignore[assignment]
    intercept_stream_stream = _intercept  # type: ignore[assignment]


class SessionStoreClient:
    """A client of a sessionstore server; thread-safe, like the gRPC channel under it.

    ``target`` is the server's address (``host:port``, or any gRPC target). The transport is
    plaintext for a loopback target (localhost, 127.0.0.0/8, ::1, a unix socket) and TLS,
    trusting gRPC's default roots, for any other, unless ``credentials`` says "insecure", "tls" or
    gives grpc.ChannelCredentials. ``root_certificates`` (the CAs to trust instead),
    ``certificate_chain`` and ``private_key`` (a client certificate, for mTLS) make it TLS; each is
    PEM bytes or the path of a PEM file, read once, here. Or pass ``channel``, a channel of your
    own.

    ``token`` is sent as ``authorization: Bearer <token>`` on every call, over whatever transport
    the client uses: a str, or a function returning one, called before every call (each stream
    is a call: a watch or an appender opened again asks again), so that it can return a refreshed
    token. It may be called from several threads at once; if it raises, the call fails with
    UNAUTHENTICATED. ``timeout`` (seconds) bounds each unary call and each read, retries
    included.

    ``retry`` is how calls safe to repeat are retried after UNAVAILABLE (or a stream reset):
    meta, the reads (resumed from the next seq when broken midway), list's pages, flush,
    flush_all, append with ``expected_seq``, set_labels without ``expected_labels_revision``;
    watches and appenders reconnect under it too. fork, rewind, pop_last, trim, delete and an
    append without ``expected_seq`` are not retried: a retry of one that took effect would
    answer differently.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        channel: grpc.Channel | None = None,
        timeout: float | None = None,
        credentials: Credentials | None = None,
        root_certificates: Pem | None = None,
        certificate_chain: Pem | None = None,
        private_key: Pem | None = None,
        token: TokenSource | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ):
        self._own_channel = channel is None
        if channel is None:
            channel_credentials = _channel_credentials(
                target, credentials, root_certificates, certificate_chain, private_key
            )
            options = _channel_options(retry)
            if channel_credentials is None:
                channel = grpc.insecure_channel(target, options=options)
            else:
                channel = grpc.secure_channel(target, channel_credentials, options=options)
        elif any(
            option is not None
            for option in (credentials, root_certificates, certificate_chain, private_key)
        ):
            raise ValueError(
                "a channel of your own carries its own credentials: pass no TLS options with it"
            )
        self._channel = channel
        if token is not None:
            channel = grpc.intercept_channel(channel, _BearerToken(token))
        # The generated gRPC code is untyped: its calls return Any, typed where they are used.
        self._stub = pb_grpc.SessionStoreStub(channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout
        self._retry = retry

    def close(self) -> None:
        if self._own_channel:
            self._channel.close()

    def __enter__(self) -> SessionStoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stub(self) -> pb_grpc.SessionStoreStub:
        """The generated gRPC stub, for what this client does not wrap."""
        return self._stub

    @property
    def retry(self) -> RetryPolicy:
        """The client's retry policy."""
        return self._retry

    def append(
        self,
        session_id: str,
        messages: Sequence[MessageIn],
        *,
        expected_seq: int | None = None,
        sync: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> AppendAck:
        """Appends messages (each one JSON object: a dict, or its JSON text) to a session in one
        request, atomically, in order; they are stored byte for byte (raw CR/LF between tokens
        become spaces). A message that is not one JSON object fails the call with
        SessionStoreError(INVALID_ARGUMENT) naming its index, and nothing is sent.

        With ``expected_seq`` the append is conditional: the first message must get that seq,
        otherwise nothing is stored and SessionStoreError(ABORTED) says the session's
        ``actual_length``; such an append is retried after UNAVAILABLE (a resend of what was
        stored is acknowledged, not stored twice), one without is not. With ``sync`` the ack
        waits until the messages are fsynced. ``labels`` label the session if this append
        creates it (an existing one keeps its own).
        """
        request = _request(session_id, messages, expected_seq, sync, labels)
        policy = self._retry if expected_seq is not None else _ONCE

        def attempt(timeout: float | None) -> AppendAck:
            with _Appender(self._stub, _about(session_id), timeout) as stream:
                return _ack(stream.send(request))

        return _retrying(policy, self._timeout, attempt)

    def appender(
        self,
        session_id: str,
        *,
        expected_seq: int | None = None,
        sync: bool = False,
        labels: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> SessionAppender:
        """A long-lived writer to one session that survives broken streams and server restarts,
        storing each message once, in order (see SessionAppender):
        ``with store.appender(id) as appender: appender.append([...])``. ``retry``: the
        client's policy unless given."""
        return SessionAppender(
            self,
            session_id,
            expected_seq=expected_seq,
            sync=sync,
            labels=labels,
            retry=self._retry if retry is None else retry,
        )

    def load(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> list[Any]:
        """A session's messages from ``from_seq`` (at most ``limit`` of them; 0: all), as dicts
        or, with ``raw``, as the exact JSON text appended. An unknown session loads as []."""
        return [m for _, m in self.messages(session_id, from_seq=from_seq, limit=limit, raw=raw)]

    def last(self, session_id: str, n: int, *, raw: bool = False) -> list[Any]:
        """A session's last ``n`` messages, in order."""
        cursor = _LoadCursor(session_id, 0, n, True)
        return [m for _, m in _messages(self._load_pages(session_id, cursor), raw)]

    def messages(
        self, session_id: str, *, from_seq: int = 0, limit: int = 0, raw: bool = False
    ) -> Iterator[tuple[int, Any]]:
        """Streams (seq, message) pairs of a session, as load() selects them, page by page; a
        stream broken midway (UNAVAILABLE) goes on from the next seq."""
        cursor = _LoadCursor(session_id, from_seq, limit, False)
        return _messages(self._load_pages(session_id, cursor), raw)

    def load_window(
        self,
        session_id: str,
        *,
        max_bytes: int = 0,
        whole_turns: bool = False,
        limit: int = 0,
        from_seq: int = 0,
        raw: bool = False,
    ) -> Window:
        """A context window: the newest messages (from ``from_seq`` on) within ``limit``
        messages and ``max_bytes`` bytes (UTF-8, as stored; 0: no bound). With ``whole_turns`` it
        starts at a turn boundary (a message a person wrote), never with a tool result whose call
        is outside it, and reports the calls left without a result (``dangling_call_ids``).
        A window broken midway is read again whole (resuming would choose another window)."""
        request = _load_request(
            session_id,
            from_seq=from_seq,
            limit=limit,
            max_bytes=max_bytes,
            whole_turns=whole_turns,
        )

        def attempt(timeout: float | None) -> Window:
            window = _WindowPages(raw)
            for page in self._stub.Load(request, timeout=timeout, metadata=_about(session_id)):
                window.add(page)
            return window.window()

        return _retrying(self._retry, self._timeout, attempt)

    def list(
        self,
        prefix: str = "",
        *,
        page_size: int = 0,
        label_selector: str = "",
        order: ListOrder = ListOrder.BY_ID,
    ) -> Iterator[SessionMeta]:
        """Every session whose id starts with ``prefix`` and whose labels match
        ``label_selector`` (Kubernetes syntax: ``user=alice,env!=prod,team,!draft,tier in (a,b)``),
        in ``order`` (by id, or most recently appended first), fetched page by page."""
        token = ""
        while True:
            request = _list_request(prefix, page_size, token, label_selector, order)
            response = self._unary(self._stub.List, request, None, self._retry)
            for meta in response.sessions:
                yield _meta(meta)
            token = response.next_page_token
            if not token:
                return

    def meta(self, session_id: str) -> SessionMeta | None:
        """A session's metadata; None for a session that does not exist."""
        return self._meta(session_id, self._retry)

    def set_labels(
        self,
        session_id: str,
        labels: Mapping[str, str],
        *,
        expected_labels_revision: int | None = None,
    ) -> SessionMeta:
        """Sets labels of a session (an empty value removes one); returns the new meta.
        NOT_FOUND for an unknown session. With ``expected_labels_revision``, only if the labels
        are at that revision, else ABORTED with ``actual_labels_revision`` (and not retried: a
        retry of a change that was made would fail)."""
        request = _set_labels_request(session_id, labels, expected_labels_revision)
        policy = self._retry if expected_labels_revision is None else _ONCE
        return _meta(self._unary(self._stub.SetLabels, request, session_id, policy).meta)

    def fork(
        self,
        session_id: str,
        at_seq: int,
        new_session_id: str,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> SessionMeta:
        """Creates ``new_session_id`` holding the first ``at_seq`` messages of ``session_id``
        (nothing is copied; appends to either never affect the other), labelled as the source
        with ``labels`` over them; returns its meta. ALREADY_EXISTS if ``new_session_id`` exists;
        OUT_OF_RANGE if ``at_seq`` is past the source's length or below its first kept seq."""
        request = _fork_request(session_id, at_seq, new_session_id, labels)
        return _meta(self._unary(self._stub.Fork, request, session_id, _ONCE).meta)

    def rewind(
        self,
        session_id: str,
        to_seq: int,
        *,
        expected_seq: int | None = None,
        raw: bool = False,
    ) -> RewindResult:
        """Drops the messages from ``to_seq`` on (the session's length becomes ``to_seq``) and
        returns them, as load() would, with the new meta; watchers are told. With
        ``expected_seq``, only if the session's length is that, else ABORTED with
        ``actual_length``."""
        request = _rewind_request(session_id, to_seq, expected_seq)
        return _rewind_result(self._unary(self._stub.Rewind, request, session_id, _ONCE), raw)

    def pop_last(self, session_id: str, *, raw: bool = False) -> Any | None:
        """Removes and returns a session's last message; None for an empty or unknown session
        (``pop_item`` of the OpenAI Agents SDK's Session). It rewinds with ``expected_seq`` set
        to the length it read, so if another writer appends in between it raises ABORTED rather
        than drop their message."""
        meta = self.meta(session_id)
        length = None if meta is None else _pop_from(meta)
        if length is None:
            return None
        return self.rewind(session_id, length - 1, expected_seq=length, raw=raw).dropped[0]

    def trim(self, session_id: str, before_seq: int) -> TrimResult:
        """Drops the messages before ``before_seq`` (at most the session's length); seqs do not
        change, ``meta.first_seq`` becomes the first kept one, and reading from a seq below it
        raises OUT_OF_RANGE with ``first_seq``."""
        request = pb.TrimRequest(session_id=session_id, before_seq=before_seq)
        return _trim_result(self._unary(self._stub.Trim, request, session_id, _ONCE))

    def delete(self, session_id: str) -> bool:
        """Deletes a session; returns whether it existed. It can then start again at seq 0."""
        request = pb.DeleteRequest(session_id=session_id)
        response: pb.DeleteResponse = self._unary(self._stub.Delete, request, session_id, _ONCE)
        return response.existed

    def flush(self, session_id: str) -> int:
        """Writes and fsyncs a session's buffered messages; returns how many messages it wrote
        (0 for an unknown session). flush_all() flushes every session."""
        if not session_id:
            raise ValueError("flush() needs a session id; flush_all() flushes every session")
        request = pb.FlushRequest(session_id=session_id)
        response: pb.FlushResponse = self._unary(self._stub.Flush, request, session_id, self._retry)
        return response.flushed

    def flush_all(self) -> FlushAllResult:
        """Writes and fsyncs every session's buffered messages (of the caller's tenant).
        Sessions that cannot be flushed do not stop the others: they come back in ``failures``,
        each with its error."""
        request = pb.FlushRequest(session_id="")
        return _flush_all_result(self._unary(self._stub.Flush, request, None, self._retry))

    def watch(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> Watch[tuple[int, Any]]:
        """Streams (seq, message) pairs of a session from ``from_seq``, then each new message as
        it is appended, each once. After UNAVAILABLE (a restart, a dropped connection) it opens
        again, with backoff, from the next seq it has not yielded (or the seq a rewind went back
        to). It ends with SessionStoreError: NOT_FOUND when the session is deleted, CANCELLED
        after cancel(), the last error when the retry policy gives up. A session that does not
        exist yet can be watched."""
        return Watch(self, _WatchCursor(session_id, from_seq), raw, events=False)

    def watch_events(
        self, session_id: str, *, from_seq: int = 0, raw: bool = False
    ) -> Watch[Message | Rewound]:
        """As watch(), and tells of rewinds: yields a Message(seq, message) for each message and
        a Rewound(to_seq) when the session is rewound below what was yielded, after which the
        watch goes on from to_seq. (watch() goes on from there too, without saying so.)"""
        return Watch(self, _WatchCursor(session_id, from_seq), raw, events=True)

    def _unary(
        self, rpc: Callable[..., Any], request: Any, session_id: str | None, policy: RetryPolicy
    ) -> Any:
        metadata = _about(session_id) if session_id else ()
        return _retrying(
            policy, self._timeout, lambda timeout: rpc(request, timeout=timeout, metadata=metadata)
        )

    def _meta(self, session_id: str, policy: RetryPolicy) -> SessionMeta | None:
        request = pb.LoadMetaRequest(session_id=session_id)
        try:
            response = self._unary(self._stub.LoadMeta, request, session_id, policy)
        except SessionStoreError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return _meta(response.meta)

    def _length(self, session_id: str) -> int:
        """The session's length (0 for one that does not exist), in one attempt: an appender or
        a watch asks, and retries under its own count."""
        meta = self._meta(session_id, _ONCE)
        return 0 if meta is None else meta.message_count

    def _load_pages(self, session_id: str, cursor: _LoadCursor) -> Iterator[pb.LoadResponse]:
        """The pages of a Load, opened again from the next seq after a retriable failure; a
        page read resets the count of attempts."""
        attempts = _Attempts(self._retry, self._timeout)
        while True:
            call = None
            try:
                call = self._stub.Load(
                    cursor.request(), timeout=attempts.timeout(), metadata=_about(session_id)
                )
                for page in call:
                    attempts.progress()
                    yield page
                    if not cursor.advance(page):
                        return
                return
            except (grpc.RpcError, SessionStoreError) as caught:
                delay = attempts.pause_after(caught)
                time.sleep(delay)
            finally:
                if call is not None:
                    call.cancel()


class SessionAppender:
    """A long-lived writer to one session: each append() sends one request and returns its
    acknowledgement. Thread-safe: appends from several threads take turns, in the order they get
    the lock. Use it as a context manager, or close() it.

    It starts at ``expected_seq`` if given, else at the session's length, read first; every
    request claims ``expected_seq``, the seq its first message must get. When the stream breaks
    (UNAVAILABLE: a dropped connection, a server restart; a stream reset) it opens another, with
    backoff, and sends the request again: the server stores what it lacks and acknowledges what it
    already holds byte for byte (the ack was what got lost), so each message is stored once, in
    order. Without ``expected_seq``, an ABORTED because another writer appended moves the request
    after their messages; with it, the appender is strict and fails with ABORTED. Any other
    failure, or more broken streams in a row than ``retry`` allows, fails it: that append and
    every later one raise the error. Exactly once holds while the appender is the session's only
    writer (a resend after another writer's append could be stored twice): give each session one.
    """

    def __init__(
        self,
        client: SessionStoreClient,
        session_id: str,
        *,
        expected_seq: int | None = None,
        sync: bool = False,
        labels: Mapping[str, str] | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ):
        self._client = client
        self._state = _AppenderState(session_id, expected_seq, sync, labels, retry)
        self._stream: _Appender | None = None
        self._lock = threading.Lock()

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

    def append(self, messages: Sequence[MessageIn]) -> AppendAck:
        """Appends messages to the session, in order, in one request, and returns the ack. A
        message that is not one JSON object raises INVALID_ARGUMENT here, sending nothing, and
        does not fail the appender."""
        texts = _encode_all(messages)
        with self._lock:
            state = self._state
            state.check()
            while True:
                try:
                    if state.next_seq is None:
                        state.next_seq = self._client._length(state.session_id)
                    if self._stream is None:
                        self._stream = _Appender(self._client.stub, _about(state.session_id))
                    return state.acknowledged(self._stream.send(state.request(texts)))
                except SessionStoreError as error:
                    self._drop_stream()
                    time.sleep(state.after(error))  # raises when the appender fails

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abandon()

    def close(self) -> None:
        """Ends the stream (every append that returned was acknowledged); later appends raise
        FAILED_PRECONDITION."""
        with self._lock:
            self._state.closed = True
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()

    def __enter__(self) -> SessionAppender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Appender:
    """One Append stream: each send() writes a request and waits for its ack. Once a send fails
    the stream is over, and every later send raises that error."""

    _END = object()

    def __init__(
        self,
        stub: pb_grpc.SessionStoreStub,
        metadata: tuple[tuple[str, str], ...],
        timeout: float | None = None,
    ):
        self._requests: queue.Queue[Any] = queue.Queue()
        self._responses = stub.Append(
            iter(self._requests.get, self._END), timeout=timeout, metadata=metadata
        )
        self._error: SessionStoreError | None = None
        self._closed = False

    def send(self, request: pb.AppendRequest) -> pb.AppendResponse:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise _closed_appender()
        self._requests.put(request)
        try:
            response: pb.AppendResponse = next(self._responses)
            return response
        except grpc.RpcError as error:
            self._error = SessionStoreError.from_rpc_error(error)
        except SessionStoreError as error:  # the token function failed: no stream opened
            self._error = error
        except StopIteration:
            self._error = SessionStoreError(
                grpc.StatusCode.UNAVAILABLE, "the server ended the Append stream without an ack"
            )
        raise self._error from None

    def abandon(self) -> None:
        """Ends the stream without waiting (it failed): its request iterator ends, and its
        thread with it."""
        if not self._closed:
            self._closed = True
            self._requests.put(self._END)
            self._responses.cancel()

    def close(self) -> None:
        """Ends the stream and waits for the server to end it. How it ends does not matter
        (a server shutting down ends it with UNAVAILABLE): every request sent on it was
        acknowledged, or its send failed."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(self._END)
        if self._error is not None:
            return
        try:
            for _ in self._responses:
                pass
        except grpc.RpcError:
            pass

    def __enter__(self) -> _Appender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._error is not None:
            self.abandon()
        else:
            self.close()


class Watch(Generic[Item]):
    """An iterator of what SessionStoreClient.watch (``(seq, message)`` pairs) or watch_events
    (Message and Rewound) yields, reopening its stream after a retriable failure from the next
    seq not yet yielded; cancel() (from any thread) ends it with SessionStoreError(CANCELLED)."""

    def __init__(self, client: SessionStoreClient, cursor: _WatchCursor, raw: bool, events: bool):
        self._client = client
        self._cursor = cursor
        self._raw = raw
        self._events = events
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None
        self._items: Iterator[Any] = self._run()

    def _run(self) -> Iterator[Any]:
        cursor, client = self._cursor, self._client
        session_id = cursor.request().session_id
        attempts = _Attempts(client.retry)
        reopening = False
        while True:
            try:
                if reopening and cursor.needs_length:
                    page = cursor.rewound_to(client._length(session_id))
                    if page is not None:
                        yield from _page_items(page, self._raw, self._events)
                reopening = True
                call = client.stub.Watch(cursor.request(), metadata=_about(session_id))
                with self._lock:
                    self._call = call
                if self._cancelled.is_set():
                    call.cancel()
                for page in call:
                    attempts.progress()
                    cursor.advance(page)
                    yield from _page_items(page, self._raw, self._events)
                return
            except (grpc.RpcError, SessionStoreError) as caught:
                if self._cancelled.is_set():
                    raise self._cancellation() from None
                delay = attempts.pause_after(caught)
                if self._cancelled.wait(delay):
                    raise self._cancellation() from None

    @staticmethod
    def _cancellation() -> SessionStoreError:
        return SessionStoreError(grpc.StatusCode.CANCELLED, "the watch was cancelled")

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        item: Item = next(self._items)
        return item

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()

    def __enter__(self) -> Watch[Item]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()
