"""What the sync client (sessionstore.client) and the asyncio client (sessionstore.aio) share:
the results and the error they return, how messages are checked and requests built and responses
decoded, how a failed call's status and trailing metadata become a SessionStoreError, how the
channel's credentials are chosen from the options, which failures are retried and after what
pause, where a broken read or watch resumes, and what an appender does after an error. Nothing
here makes a call or waits: the two clients differ only in blocking or awaiting.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import grpc
import grpc.aio

from sessionstore.v1 import session_store_pb2 as pb


#: Trailing metadata of an ABORTED expected_seq mismatch (and of OUT_OF_RANGE past a session's
#: end): the session's actual length (decimal).
ACTUAL_LENGTH_KEY = "sessionstore-actual-length"

#: Trailing metadata of an ABORTED expected_labels_revision mismatch: the actual labels revision.
ACTUAL_LABELS_REVISION_KEY = "sessionstore-actual-labels-revision"

#: Trailing metadata of OUT_OF_RANGE below a trimmed session's start: its first kept seq.
FIRST_SEQ_KEY = "sessionstore-first-seq"

#: A message to append: a dict (JSON-encoded here) or raw JSON text, sent as is.
MessageIn = Union[Mapping[str, Any], str, bytes]

#: PEM for TLS: the PEM bytes themselves, or the path (str or os.PathLike) of a file holding them.
Pem = Union[bytes, str, "os.PathLike[str]"]

#: A bearer token: the token itself, or a function returning it, asked before every call.
TokenSource = Union[str, Callable[[], str]]

#: The transport: "insecure" (plaintext), "tls" (gRPC's default roots), or grpc ChannelCredentials.
Credentials = Union[Literal["insecure", "tls"], grpc.ChannelCredentials]

#: The metadata key of the bearer token.
AUTHORIZATION_KEY = "authorization"


class SessionStoreError(Exception):
    """A failed call. ``code`` is the gRPC status code (a ``grpc.StatusCode``): INVALID_ARGUMENT
    (bad input, nothing stored), NOT_FOUND, ALREADY_EXISTS (a fork into an existing id),
    ABORTED (an expected seq or labels revision that is not the session's), OUT_OF_RANGE (a seq
    past the session's end, or below its first kept one), RESOURCE_EXHAUSTED, UNAVAILABLE (safe
    to retry), DATA_LOSS.

    What the server reports with it, None otherwise: ``actual_length``, the session's length (for
    ABORTED on expected_seq, and OUT_OF_RANGE past the end); ``actual_labels_revision`` (for
    ABORTED on expected_labels_revision); ``first_seq``, the first seq kept (for OUT_OF_RANGE
    below a trimmed session's start: read from there)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        actual_length: int | None = None,
        *,
        actual_labels_revision: int | None = None,
        first_seq: int | None = None,
    ):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.actual_length = actual_length
        self.actual_labels_revision = actual_labels_revision
        self.first_seq = first_seq

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> SessionStoreError:
        """The error a failed call raised (a sync call's, or grpc.aio's AioRpcError), with what
        its trailing metadata reports."""
        # A sync call's error is a grpc.Call; grpc.aio's is an AioRpcError, which is not.
        call = error if isinstance(error, (grpc.Call, grpc.aio.AioRpcError)) else None
        code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
        details = (call.details() if call is not None else None) or str(error)
        reported: dict[str, int] = {}
        if call is not None:
            for key, value in call.trailing_metadata() or ():
                if key in (ACTUAL_LENGTH_KEY, ACTUAL_LABELS_REVISION_KEY, FIRST_SEQ_KEY):
                    reported[key] = int(value)
        return cls(
            code,
            details,
            reported.get(ACTUAL_LENGTH_KEY),
            actual_labels_revision=reported.get(ACTUAL_LABELS_REVISION_KEY),
            first_seq=reported.get(FIRST_SEQ_KEY),
        )


@dataclass(frozen=True)
class AppendAck:
    """The server's acknowledgement of one append."""

    session_id: str
    first_seq: int  #: seq given to the first message appended
    next_seq: int  #: the session's length after the append
    durable_count: int  #: messages [0, durable_count) of the session are fsynced


@dataclass(frozen=True)
class SessionMeta:
    session_id: str
    created_at_ms: int
    agent_loop_version: str
    message_count: int  #: buffered messages included
    durable_count: int  #: messages [0, durable_count) are fsynced
    updated_at_ms: int  #: when a message was last appended (or it was created, forked, rewound)
    labels: dict[str, str]  #: e.g. {"user": "alice"}, sorted by key; set_labels changes them
    labels_revision: int  #: grows by one at every change of the labels; 0: never labelled
    parent_session_id: str  #: the session this one was forked from ("" if it was not)
    parent_seq: int  #: the fork point: the first parent_seq messages are the parent's
    first_seq: int  #: the first seq kept (those before it were trimmed)


class ListOrder(enum.Enum):
    """The order of SessionStoreClient.list."""

    BY_ID = pb.LIST_ORDER_BY_ID  #: by session id
    BY_UPDATED_DESC = pb.LIST_ORDER_BY_UPDATED_DESC  #: most recently appended first, then by id


@dataclass(frozen=True)
class Window:
    """A context window (SessionStoreClient.load_window): the newest messages that fit, from
    ``first_seq`` on, and the tool calls in it left without a result."""

    messages: list[Any]  #: oldest first; dicts, or text with raw=True
    first_seq: int | None  #: the seq of messages[0]; None when the window is empty
    #: With whole_turns: ids of the tool calls without a result after them (an interrupted
    #: turn), oldest first; Gemini calls without an id are named "name:<function name>".
    dangling_call_ids: list[str]


@dataclass(frozen=True)
class RewindResult:
    """What SessionStoreClient.rewind dropped (oldest first, from seq to_seq on), and the meta."""

    dropped: list[Any]
    meta: SessionMeta


@dataclass(frozen=True)
class TrimResult:
    """How many messages SessionStoreClient.trim dropped, and the meta (meta.first_seq kept)."""

    trimmed: int
    meta: SessionMeta


@dataclass(frozen=True)
class FlushAllResult:
    """What SessionStoreClient.flush_all wrote: how many messages, and the sessions it could not
    write and make durable, each with its error (they do not stop the others)."""

    flushed: int
    failures: list[tuple[str, SessionStoreError]]


@dataclass(frozen=True)
class RetryPolicy:
    """How calls that are safe to repeat are retried, and how streams reconnect, after a failure
    that says nothing about the call itself (UNAVAILABLE: a server restarting, shutting down or
    unreachable, a dropped connection; INTERNAL "RST_STREAM": a stream reset by a proxy whose
    replica died): at most ``max_attempts`` attempts in a row without progress (1: no retries),
    waiting ``initial_delay`` seconds before the first retry, doubling up to ``max_delay``, each
    wait ±25 % at random."""

    max_attempts: int = 10
    initial_delay: float = 0.1
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError(f"a retry policy needs max_attempts >= 1 and delays >= 0: {self}")


#: One attempt: what calls that are not safe to repeat (fork, rewind, ...) run with.
_ONCE = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Message:
    """A message a watch_events() yields, with its seq."""

    seq: int
    message: Any  #: a dict, or text with raw=True


@dataclass(frozen=True)
class Rewound:
    """What watch_events() yields when the session is rewound below what it yielded: the
    messages yielded from ``to_seq`` on are gone, and the watch goes on from ``to_seq``."""

    to_seq: int


def _not_an_object(index: int | None, problem: str) -> SessionStoreError:
    name = "the message" if index is None else f"message {index}"
    return SessionStoreError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{name} {problem}; each message must be one JSON object (a dict, or its JSON text)",
    )


def _not_json(constant: str) -> Any:
    """json.loads takes NaN and Infinity, which JSON (and the server) does not."""
    raise ValueError(f"{constant} is not JSON")


def _encode(message: MessageIn, index: int | None = None) -> str:
    """The wire text of a message, checked here to be one JSON object, so that a bad message
    fails alone, before anything is sent, and never a request it would share with others. Text
    is sent as written (integers past 2^53 and escapes stay so), with raw CR/LF (valid only as
    whitespace between tokens) made spaces as the server would store them: the text sent is the
    text stored, which an appender's resend after a reconnect relies on."""
    if isinstance(message, (bytes, str)):
        try:
            text = message.decode("utf-8") if isinstance(message, bytes) else message
            value = json.loads(text, parse_constant=_not_json)
        except ValueError as error:  # UnicodeDecodeError and JSONDecodeError alike
            raise _not_an_object(index, f"is not valid JSON ({error})") from None
        if not isinstance(value, dict):
            raise _not_an_object(index, "is JSON but not an object")
        return text.replace("\r", " ").replace("\n", " ")
    if not isinstance(message, Mapping):
        raise _not_an_object(index, f"is of type {type(message).__name__}, not a dict")
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise _not_an_object(index, f"does not encode as JSON ({error})") from None


def _encode_all(messages: Sequence[MessageIn]) -> list[str]:
    """Every message's wire text (see _encode): all of them, or SessionStoreError naming the
    first bad one."""
    if isinstance(messages, (str, bytes, Mapping)):
        raise TypeError("messages must be a sequence of messages, not one message")
    return [_encode(message, index) for index, message in enumerate(messages)]


def _request(
    session_id: str,
    messages: Sequence[MessageIn],
    expected_seq: int | None,
    sync: bool,
    labels: Mapping[str, str] | None,
) -> pb.AppendRequest:
    """An AppendRequest of the messages, checked (see _encode)."""
    return _encoded_request(session_id, _encode_all(messages), expected_seq, sync, labels)


def _encoded_request(
    session_id: str,
    texts: list[str],
    expected_seq: int | None,
    sync: bool,
    labels: Mapping[str, str] | None,
) -> pb.AppendRequest:
    """An AppendRequest of wire texts _encode_all made."""
    request = pb.AppendRequest(
        session_id=session_id, messages=texts, sync=sync, labels=labels or {}
    )
    if expected_seq is not None:
        request.expected_seq = expected_seq
    return request


def _ack(response: pb.AppendResponse) -> AppendAck:
    return AppendAck(
        response.session_id, response.first_seq, response.next_seq, response.durable_count
    )


def _meta(meta: pb.SessionMeta) -> SessionMeta:
    return SessionMeta(
        meta.session_id,
        meta.created_at_ms,
        meta.agent_loop_version,
        meta.message_count,
        meta.durable_count,
        meta.updated_at_ms,
        dict(sorted(meta.labels.items())),  # by key: the wire's map order is arbitrary
        meta.labels_revision,
        meta.parent_session_id,
        meta.parent_seq,
        meta.first_seq,
    )


#: The metadata key naming the session a call is about, so that a router can hash on it.
SESSION_ID_KEY = "x-session-id"


def _about(session_id: str) -> tuple[tuple[str, str], ...]:
    """The metadata of a call about one session (a router may send it to that session's replica)."""
    return ((SESSION_ID_KEY, session_id),)


def _decode(text: str, raw: bool) -> Any:
    return text if raw else json.loads(text)


def _is_loopback(target: str) -> bool:
    """Whether a gRPC target names this machine (localhost, 127.0.0.0/8, ::1, a unix socket):
    plaintext is then the default, as nothing leaves the machine."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    address = re.sub(r"^(dns:(//[^/]*/)?|ipv4:|ipv6:)", "", target)
    bracketed = re.match(r"^\[([^\]]+)\]", address)
    host = bracketed.group(1) if bracketed else re.sub(r":\d+$", "", address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_pem(pem: Pem | None) -> bytes | None:
    if pem is None or isinstance(pem, bytes):
        return pem
    with open(pem, "rb") as file:
        return file.read()


def _channel_credentials(
    target: str,
    credentials: Credentials | None,
    root_certificates: Pem | None,
    certificate_chain: Pem | None,
    private_key: Pem | None,
) -> grpc.ChannelCredentials | None:
    """The channel's credentials as SessionStoreClient's options choose them; None for plaintext."""
    if (certificate_chain is None) != (private_key is None):
        raise ValueError(
            "certificate_chain and private_key go together: a client certificate and its key"
        )
    if root_certificates is not None or certificate_chain is not None:
        if credentials not in (None, "tls"):
            raise ValueError(
                "root_certificates, certificate_chain and private_key are TLS settings: "
                'give credentials="tls" or none with them'
            )
        return grpc.ssl_channel_credentials(
            _read_pem(root_certificates), _read_pem(private_key), _read_pem(certificate_chain)
        )
    if credentials is None:
        credentials = "insecure" if _is_loopback(target) else "tls"
    if credentials == "insecure":
        return None
    if credentials == "tls":
        return grpc.ssl_channel_credentials()
    if isinstance(credentials, grpc.ChannelCredentials):
        return credentials
    raise ValueError(
        f'credentials must be "insecure", "tls" or grpc.ChannelCredentials, not {credentials!r}'
    )


def _bearer(token: str) -> tuple[str, str]:
    """The metadata entry that carries a bearer token."""
    return (AUTHORIZATION_KEY, f"Bearer {token}")


def _token_failed(error: Exception) -> SessionStoreError:
    """What a call raises when the token function asked before it raised ``error``."""
    return SessionStoreError(
        grpc.StatusCode.UNAUTHENTICATED, f"the token function failed: {error!r}"
    )


# Requests: each client method builds its request here, so that both clients send the same.


def _load_request(
    session_id: str,
    *,
    from_seq: int = 0,
    limit: int = 0,
    last: bool = False,
    max_bytes: int = 0,
    whole_turns: bool = False,
) -> pb.LoadRequest:
    return pb.LoadRequest(
        session_id=session_id,
        from_seq=from_seq,
        limit=limit,
        last=last,
        max_bytes=max_bytes,
        whole_turns=whole_turns,
    )


def _list_request(
    prefix: str, page_size: int, page_token: str, label_selector: str, order: ListOrder
) -> pb.ListRequest:
    return pb.ListRequest(
        prefix=prefix,
        page_size=page_size,
        page_token=page_token,
        label_selector=label_selector,
        order=order.value,
    )


def _set_labels_request(
    session_id: str, labels: Mapping[str, str], expected_labels_revision: int | None
) -> pb.SetLabelsRequest:
    request = pb.SetLabelsRequest(session_id=session_id, labels=labels)
    if expected_labels_revision is not None:
        request.expected_labels_revision = expected_labels_revision
    return request


def _fork_request(
    session_id: str, at_seq: int, new_session_id: str, labels: Mapping[str, str] | None
) -> pb.ForkRequest:
    return pb.ForkRequest(
        session_id=session_id, at_seq=at_seq, new_session_id=new_session_id, labels=labels or {}
    )


def _rewind_request(session_id: str, to_seq: int, expected_seq: int | None) -> pb.RewindRequest:
    request = pb.RewindRequest(session_id=session_id, to_seq=to_seq)
    if expected_seq is not None:
        request.expected_seq = expected_seq
    return request


def _pop_from(meta: SessionMeta) -> int | None:
    """The length of the session pop_last takes the last message of; None when it has none."""
    return None if meta.message_count == meta.first_seq else meta.message_count


# Responses.


def _rewind_result(response: pb.RewindResponse, raw: bool) -> RewindResult:
    return RewindResult(
        [_decode(text, raw) for text in response.dropped_messages], _meta(response.meta)
    )


def _trim_result(response: pb.TrimResponse) -> TrimResult:
    return TrimResult(response.trimmed, _meta(response.meta))


def _page_messages(page: pb.LoadResponse | pb.WatchResponse, raw: bool) -> list[tuple[int, Any]]:
    """(seq, message) for each message of a Load or Watch page."""
    return [
        (page.first_seq + offset, _decode(text, raw)) for offset, text in enumerate(page.messages)
    ]


def _page_events(page: pb.WatchResponse, raw: bool) -> list[Message | Rewound]:
    """What watch_events() yields for a Watch page: Rewound first if it tells of a rewind."""
    events: list[Message | Rewound] = []
    if page.HasField("rewound_to"):
        events.append(Rewound(page.rewound_to))
    events.extend(Message(seq, message) for seq, message in _page_messages(page, raw))
    return events


class _WindowPages:
    """Gathers the pages of a window's Load stream into a Window."""

    def __init__(self, raw: bool):
        self._raw = raw
        self._messages: list[Any] = []
        self._first_seq: int | None = None
        self._dangling: list[str] = []

    def add(self, page: pb.LoadResponse) -> None:
        if self._first_seq is None:
            self._first_seq = page.first_seq
        self._messages.extend(_decode(text, self._raw) for text in page.messages)
        self._dangling.extend(page.dangling_call_ids)

    def window(self) -> Window:
        return Window(self._messages, self._first_seq, self._dangling)


def _flush_all_result(response: pb.FlushResponse) -> FlushAllResult:
    return FlushAllResult(
        response.flushed,
        [
            (failure.session_id, SessionStoreError(_status_code(failure.code), failure.message))
            for failure in response.failures
        ],
    )


def _status_code(code: int) -> grpc.StatusCode:
    """The grpc.StatusCode numbered ``code`` (UNKNOWN for a number it lacks)."""
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status
    return grpc.StatusCode.UNKNOWN


def _channel_options(policy: RetryPolicy) -> list[tuple[str, int]]:
    """gRPC waits up to 2 minutes between connection attempts by default, failing calls fast
    meanwhile: reconnect on the retry policy's schedule instead, so that a retry after a restart
    finds the server. (Not grpc.min_reconnect_backoff_ms: gRPC takes it for the time a connection
    attempt may take too, and a TLS handshake on a loaded machine can take longer than a pause.)"""
    initial = max(1, round(policy.initial_delay * 1000))
    return [
        ("grpc.initial_reconnect_backoff_ms", initial),
        ("grpc.max_reconnect_backoff_ms", max(initial, round(policy.max_delay * 1000))),
    ]


# Retries: which failures, after what pause, and when to give up. Both clients loop alike, the
# sync one sleeping, the asyncio one awaiting asyncio.sleep.


def _is_retriable(error: SessionStoreError) -> bool:
    """Whether a failure says nothing about the call itself, so that trying again is the answer:
    UNAVAILABLE, and a stream reset by the transport (INTERNAL "RST_STREAM"). Either way the call
    may have taken effect: appends are resent with expected_seq, which the server recognises,
    and reads are read again."""
    return error.code == grpc.StatusCode.UNAVAILABLE or (
        error.code == grpc.StatusCode.INTERNAL and "RST_STREAM" in error.details
    )


def _backoff_delay(policy: RetryPolicy, retry: int) -> float:
    """The pause (seconds) before retry number ``retry`` (1 for the first), ±25 % at random."""
    base = min(policy.max_delay, policy.initial_delay * 2.0 ** (retry - 1))
    return base * (0.75 + random.random() * 0.5)


def _as_error(error: BaseException) -> SessionStoreError | None:
    """A failed call's error as SessionStoreError; None for an exception that is not one."""
    if isinstance(error, SessionStoreError):
        return error
    if isinstance(error, grpc.RpcError):
        return SessionStoreError.from_rpc_error(error)
    return None


class _Attempts:
    """The attempts of one call (or of one stream, reopened) under a retry policy, within the
    call's timeout: failed() says how long to pause before the next attempt, or that there is
    none; progress() (a page read, an ack) resets the count of failures in a row."""

    def __init__(self, policy: RetryPolicy, timeout: float | None = None):
        self._policy = policy
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._failures = 0

    def timeout(self) -> float | None:
        """What is left of the call's timeout, for the next attempt (None: no timeout)."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def progress(self) -> None:
        self._failures = 0

    def failed(self, error: SessionStoreError) -> float | None:
        """The pause before trying again after ``error``; None when the call fails with it (not
        retriable, attempts used up, or the pause would end past the timeout)."""
        self._failures += 1
        if not _is_retriable(error) or self._failures >= self._policy.max_attempts:
            return None
        delay = _backoff_delay(self._policy, self._failures)
        if self._deadline is not None and time.monotonic() + delay >= self._deadline:
            return None
        return delay

    def pause_after(self, caught: grpc.RpcError | SessionStoreError) -> float:
        """The pause before trying again after a failed attempt; raises the failure, as
        SessionStoreError, when the call ends with it (as failed() decides)."""
        error = _as_error(caught)
        assert error is not None
        delay = self.failed(error)
        if delay is None:
            raise error from None
        return delay

    @property
    def failures(self) -> int:
        return self._failures


class _LoadCursor:
    """Where a Load goes on after its stream broke midway: from the next seq, with what is left
    of the limit (a ``last`` read continues as a plain one from where its first page began)."""

    def __init__(self, session_id: str, from_seq: int, limit: int, last: bool):
        self._session_id = session_id
        self._from_seq = from_seq
        self._limit = limit
        self._last = last

    def request(self) -> pb.LoadRequest:
        return _load_request(
            self._session_id, from_seq=self._from_seq, limit=self._limit, last=self._last
        )

    def advance(self, page: pb.LoadResponse) -> bool:
        """Moves past a page the reader took; whether more is wanted."""
        self._from_seq = page.first_seq + len(page.messages)
        self._last = False
        if self._limit == 0:
            return True
        self._limit -= len(page.messages)
        return self._limit > 0


class _WatchCursor:
    """Where a watch goes on after its stream broke: from the next seq it has not yielded, or
    from the seq a rewind went back to."""

    def __init__(self, session_id: str, from_seq: int):
        self._session_id = session_id
        self._from_seq = from_seq
        #: Where the pages yielded so far end, once there are some.
        self._streamed_to: int | None = None

    def request(self) -> pb.WatchRequest:
        return pb.WatchRequest(session_id=self._session_id, from_seq=self._from_seq)

    def advance(self, page: pb.WatchResponse) -> None:
        # A rewound page has no messages and starts at the rewound seq: the watch goes on there.
        self._from_seq = self._streamed_to = page.first_seq + len(page.messages)

    @property
    def needs_length(self) -> bool:
        """Whether, before reopening, the session's length must be read (see rewound_to)."""
        return self._streamed_to is not None

    def rewound_to(self, length: int | None) -> pb.WatchResponse | None:
        """A new stream cannot tell of a rewind made while the watch was disconnected (the
        server does not know what this one yielded): a session now shorter than what was yielded
        was rewound (or lost unsynced messages in a crash). Given its length (None: it does not
        exist, and the watch waits for it), the page that says so, to yield before reopening."""
        if length is None or self._streamed_to is None or length >= self._streamed_to:
            return None
        page = pb.WatchResponse(first_seq=length, rewound_to=length)
        self.advance(page)
        return page


def _page_items(page: pb.WatchResponse, raw: bool, events: bool) -> list[Any]:
    """What a watch yields for a page: Message and Rewound events, or (seq, message) pairs."""
    return list(_page_events(page, raw)) if events else _page_messages(page, raw)


def _closed_appender() -> SessionStoreError:
    return SessionStoreError(grpc.StatusCode.FAILED_PRECONDITION, "the appender is closed")


class _AppenderState:
    """What an appender to one session knows and decides, for SessionAppender (sync) and
    AsyncSessionAppender: the seq its next request claims, the request, and what it does after
    an error (send again after a pause, move after another writer's messages, or fail).

    1. It starts at ``expected_seq`` if given, else at the session's length, read first.
    2. Every request claims ``expected_seq``: the seq its first message must get.
    3. When the stream breaks (a retriable failure), it opens another after a pause and sends the
       same request again: the server stores what it lacks and acknowledges what it already holds
       byte for byte (the ack was what got lost), so each message is stored once, in order.
    4. Without ``expected_seq``, ABORTED because another writer appended moves the request after
       their messages; with it, the appender is strict and fails with ABORTED.
    5. Any other failure, or more broken streams in a row than the policy allows, fails it: that
       append and every later one raise that error.
    """

    def __init__(
        self,
        session_id: str,
        expected_seq: int | None,
        sync: bool,
        labels: Mapping[str, str] | None,
        policy: RetryPolicy,
    ):
        self.session_id = session_id
        self._strict = expected_seq is not None
        #: The seq the next request claims; None until the session's length was read.
        self.next_seq = expected_seq
        self._sync = sync
        self._labels = dict(labels or {})
        self._policy = policy
        self.error: SessionStoreError | None = None
        self.closed = False
        self.attempts = _Attempts(policy)

    def check(self) -> None:
        """Raises what a failed or closed appender raises for an append."""
        if self.error is not None:
            raise self.error
        if self.closed:
            raise _closed_appender()

    def request(self, texts: list[str]) -> pb.AppendRequest:
        assert self.next_seq is not None
        # Labels go with a request at seq 0, the only one that can create the session.
        labels = self._labels if self.next_seq == 0 else None
        return _encoded_request(self.session_id, texts, self.next_seq, self._sync, labels)

    def acknowledged(self, response: pb.AppendResponse) -> AppendAck:
        ack = _ack(response)
        if ack.first_seq != self.next_seq or ack.session_id != self.session_id:
            self.error = SessionStoreError(
                grpc.StatusCode.INTERNAL,
                f"unexpected acknowledgement (first_seq {ack.first_seq}, expected "
                f"{self.next_seq}) for session {ack.session_id}",
            )
            raise self.error
        self.next_seq = ack.next_seq
        self.attempts.progress()
        return ack

    def after(self, error: SessionStoreError) -> float:
        """The pause before sending again after ``error``; raises (and keeps) the error the
        appender fails with when it does not send again."""
        moved = error.actual_length
        if (
            error.code == grpc.StatusCode.ABORTED
            and not self._strict
            and moved is not None
            and self.next_seq is not None
            and moved > self.next_seq
        ):
            # Another writer appended: that request was not stored (a request is stored whole at
            # the seq it names), so it goes after their messages. A session shorter than what was
            # acknowledged (deleted, or a crash lost unsynced messages) is not papered over.
            self.next_seq = moved
            return 0.0
        delay = self.attempts.failed(error)
        if delay is not None:
            return delay
        if _is_retriable(error):
            error = SessionStoreError(
                error.code,
                f"{error.details} (gave up after {self.attempts.failures} attempts)",
                error.actual_length,
                actual_labels_revision=error.actual_labels_revision,
                first_seq=error.first_seq,
            )
        self.error = error
        raise error
