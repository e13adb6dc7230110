"""The interop scenario's Python side (test/interop/polyglot.test.ts and client-security.test.ts
run it).

    scenario.py ADDRESS append SESSION   appends stdin's lines (one message each, raw) in one
                                         request; prints the ack
    scenario.py ADDRESS load SESSION     prints the session's messages, one per line, raw
    scenario.py ADDRESS tour PREFIX      uses every call of the client; prints a JSON report that
                                         must equal the Go side's (test/interop/go)
    scenario.py ADDRESS agent PREFIX     with a conversation on stdin (one message a line, at
                                         least 6), uses every call of labels, listing by selector
                                         and update time, context windows, fork, watch events,
                                         rewind, pop_last and trim, the error cases included;
                                         prints a JSON report that must equal the Go side's
    scenario.py ADDRESS calls SESSION    appends to the session, then gets its meta, loads and
                                         watches it, each a call of its own; prints what each
                                         returned or its status code, and how many times the
                                         token function was asked (null without one)
    scenario.py --aio ADDRESS calls SESSION   the same with the asyncio client (sessionstore.aio)

Before ADDRESS: --aio (calls only), --ca FILE (the CA to trust: TLS), --cert FILE --key FILE (a client certificate:
mTLS), --tokens FILE (tokens, one a line: a single one is passed as the fixed token; several are
handed out in turn by a token function, the last one again once all are used).

Text goes in and out as UTF-8 bytes, so that what is compared is exactly what travelled.
"""

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, List

# This checkout's client, wherever the venv's editable install of it points (a worktree shares
# the venv of another checkout).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "clients/python/src"))

from sessionstore import (
    ListOrder,
    Message,
    RetryPolicy,
    Rewound,
    SessionStoreClient,
    SessionStoreError,
)
from sessionstore.aio import AsyncSessionStoreClient



#: The numeric gRPC status code of NOT_FOUND.
NOT_FOUND = 5


def code_of(call: Callable[[], Any]) -> Any:
    """The numeric gRPC status code the call fails with, or what it returned."""
    try:
        return call()
    except SessionStoreError as error:
        return error.code.value[0]


def tour(client: SessionStoreClient, prefix: str) -> dict:
    session = f"{prefix}-tour"
    other = f"{session}-other"
    report: dict = {}

    # Messages go in as dicts or as raw JSON text.
    first: List[Any] = [
        {"role": "user", "content": "héllo", "n": 1},
        '{"role":"assistant","content":"hi","big":12345678901234567890}',
    ]
    report["append"] = asdict(client.append(session, first))
    # An appender to one session, starting at seq 2 (strict), one request per append.
    with client.appender(session, expected_seq=2) as appender:
        report["appender"] = [
            asdict(appender.append([{"n": 3}])),
            asdict(client.append(other, ['{"other":true}'])),
            asdict(appender.append([{"n": 4}, {"n": 5}])),
        ]
    # The same request again is a retry: nothing is stored twice, the ack is the original's.
    report["retry"] = asdict(client.append(session, [{"n": 4}, {"n": 5}], expected_seq=3))
    try:
        client.append(session, [{"n": "late"}], expected_seq=2)
        report["conflict"] = "appended"
    except SessionStoreError as error:
        report["conflict"] = {"code": error.code.value[0], "actual_length": error.actual_length}
    report["invalid"] = [
        code_of(lambda: client.append("../escape", [{"n": 0}])),
        code_of(lambda: client.meta("has space")),
        code_of(lambda: client.append(session, ["not json"])),
    ]

    report["load"] = client.load(session, raw=True)
    report["big"] = str(client.load(session)[1]["big"])
    report["last"] = client.last(session, 2, raw=True)
    report["range"] = client.load(session, from_seq=1, limit=2, raw=True)
    report["count_before_flush"] = [client.meta(session).message_count, client.meta(session).durable_count]
    report["flushed"] = client.flush(session)
    meta = client.meta(session)
    report["meta"] = [meta.session_id, meta.message_count, meta.durable_count]
    report["list"] = [m.session_id for m in client.list(prefix, page_size=1)]

    # Watch from seq 3: the backlog (3, 4), then a message appended while watching (5); then the
    # session's deletion ends the watch with NOT_FOUND.
    watch = client.watch(session, from_seq=3, raw=True)
    report["watch"] = []
    for seq, text in watch:
        report["watch"].append([seq, text])
        if seq == 4:
            client.append(session, [{"n": 6}])
        if seq == 5:
            break
    deleted = client.delete(session)
    report["watch_end"] = code_of(lambda: next(watch))
    report["deleted"] = [deleted, client.delete(session)]
    # The report (shared with the Go program) says NOT_FOUND for a session that is gone: meta
    # answers None for it.
    gone = NOT_FOUND if client.meta(session) is None else "still there"
    report["after_delete"] = [gone, client.load(session)]
    client.delete(other)
    return report


def error_of(call: Callable[[], Any]) -> dict:
    """The error the call fails with: its numeric code and what the server reported with it."""
    try:
        call()
    except SessionStoreError as error:
        return {
            "code": error.code.value[0],
            "actual_length": error.actual_length,
            "actual_labels_revision": error.actual_labels_revision,
            "first_seq": error.first_seq,
        }
    raise AssertionError("the call succeeded")


def agent(client: SessionStoreClient, prefix: str, conversation: List[str]) -> dict:
    session = f"{prefix}-agent"
    other = f"{session}-other"
    fork = f"{session}-fork"
    report: dict = {}

    client.append(session, conversation, labels={"user": "alice"})
    time.sleep(0.01)  # so that the other session is the most recently appended to, by the clock
    client.append(other, [{"n": 0}], labels={"user": "bob"})
    meta = client.meta(session)
    report["created"] = [meta.labels, meta.labels_revision]
    meta = client.set_labels(session, {"env": "dev"}, expected_labels_revision=1)
    report["set_labels"] = [meta.labels, meta.labels_revision]
    report["set_labels_stale"] = error_of(
        lambda: client.set_labels(session, {"env": ""}, expected_labels_revision=1)
    )
    report["set_labels_unknown"] = error_of(lambda: client.set_labels(f"{prefix}-none", {"a": "b"}))

    def ids(**options: Any) -> List[str]:
        return [m.session_id for m in client.list(prefix, page_size=1, **options)]

    report["list_selected"] = ids(label_selector="user=alice")
    report["list_updated"] = ids(order=ListOrder.BY_UPDATED_DESC)

    window = client.load_window(session, limit=5, whole_turns=True, raw=True)
    report["window"] = [window.first_seq, window.messages, window.dangling_call_ids]
    # Room for the last two messages, not three.
    last_two = sum(len(text.encode("utf-8")) for text in conversation[-2:])
    window = client.load_window(session, max_bytes=last_two + 1, raw=True)
    report["window_bytes"] = [window.first_seq, len(window.messages), window.dangling_call_ids]
    window = client.load_window(session, max_bytes=10, whole_turns=True)  # no message fits
    report["window_empty"] = [window.first_seq, window.messages, window.dangling_call_ids]

    meta = client.fork(session, 4, fork, labels={"branch": "b"})
    report["fork"] = [meta.parent_session_id, meta.parent_seq, meta.message_count, meta.labels]
    report["fork_exists"] = error_of(lambda: client.fork(session, 1, fork))
    report["fork_past_end"] = error_of(lambda: client.fork(session, 99, f"{prefix}-none"))

    # Watch the fork: its 4 messages, a rewind to 2 (told), then a message appended at seq 2.
    events: List[Any] = []
    with client.watch_events(fork, raw=True) as watch:
        for event in watch:
            if isinstance(event, Rewound):
                events.append(["rewound", event.to_seq])
                client.append(fork, [{"after": "rewind"}])
            elif isinstance(event, Message):
                events.append(["message", event.seq, event.message])
                if event.seq == 3 and len(events) == 4:
                    client.rewind(fork, 2)
                if len(events) == 6:
                    break
    report["watch_events"] = events

    length = len(conversation)
    rewound = client.rewind(session, length - 1, expected_seq=length, raw=True)
    report["rewind"] = [rewound.dropped, rewound.meta.message_count]
    report["rewind_stale"] = error_of(lambda: client.rewind(session, 1, expected_seq=length))
    report["pop_item"] = client.pop_last(session)
    trimmed = client.trim(session, 2)
    report["trim"] = [trimmed.trimmed, trimmed.meta.first_seq, trimmed.meta.message_count]
    report["load_trimmed"] = error_of(lambda: client.load(session, from_seq=1))
    report["load_kept"] = len(client.load(session))
    for name in (session, other, fork):
        client.delete(name)
    return report


def calls(client: SessionStoreClient, session: str) -> dict:
    """One call of each kind, each asking for the token again: what each returned, or its code."""

    def first_watched() -> List[Any]:
        with client.watch(session, raw=True) as watch:
            return list(next(watch))

    return {
        "append": code_of(lambda: client.append(session, [{"n": 0}]).first_seq),
        "meta": code_of(lambda: client.meta(session).message_count),
        "load": code_of(lambda: client.load(session, raw=True)),
        "watch": code_of(first_watched),
    }


async def async_calls(client: AsyncSessionStoreClient, session: str) -> dict:
    """calls(), with the asyncio client."""

    async def code_of_call(call: Any) -> Any:
        try:
            return await call
        except SessionStoreError as error:
            return error.code.value[0]

    async def appended() -> int:
        return (await client.append(session, [{"n": 0}])).first_seq

    async def counted() -> int:
        return (await client.meta(session)).message_count

    async def first_watched() -> List[Any]:
        async with client.watch(session, raw=True) as watch:
            return list(await watch.__anext__())

    return {
        "append": await code_of_call(appended()),
        "meta": await code_of_call(counted()),
        "load": await code_of_call(client.load(session, raw=True)),
        "watch": await code_of_call(first_watched()),
    }


async def async_main(args: argparse.Namespace, options: dict, tokens: Any) -> None:
    """The calls command with the asyncio client."""
    if args.command != "calls":
        sys.exit("--aio: calls only")
    async with AsyncSessionStoreClient(args.address, **options) as client:
        report = await async_calls(client, args.name)
    report["token_calls"] = tokens.asked if tokens else None
    print(json.dumps(report))


class Tokens:
    """A token function handing out the tokens of a list in turn, counting how often it is asked."""

    def __init__(self, tokens: List[str]):
        self.tokens = tokens
        self.asked = 0

    def __call__(self) -> str:
        token = self.tokens[min(self.asked, len(self.tokens) - 1)]
        self.asked += 1
        return token


def stdin_messages() -> List[str]:
    """stdin's lines, one message each."""
    # split, not splitlines: only "\n" ends a message (U+2028 and the like do not).
    messages = sys.stdin.buffer.read().decode("utf-8").split("\n")
    if messages[-1] == "":
        messages.pop()
    return messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--aio", action="store_true")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--tokens")
    parser.add_argument("address")
    parser.add_argument("command")
    parser.add_argument("name")
    args = parser.parse_args()
    tokens = Path(args.tokens).read_text().split() if args.tokens else []
    token_function = Tokens(tokens) if len(tokens) > 1 else None
    token = token_function or (tokens[0] if tokens else None)
    # The CA as a path, the client certificate as PEM bytes: the client takes either.
    options: dict = {
        "timeout": 30,
        # What the security tests have refused (a CA not trusted, no client certificate) comes
        # back UNAVAILABLE, which the client retries: a few quick attempts keep the refusals quick.
        "retry": RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.2),
        "root_certificates": args.ca,
        "certificate_chain": Path(args.cert).read_bytes() if args.cert else None,
        "private_key": Path(args.key).read_bytes() if args.key else None,
        "token": token,
    }
    if args.aio:
        asyncio.run(async_main(args, options, token_function))
        return
    with SessionStoreClient(args.address, **options) as client:
        command, name = args.command, args.name
        if command == "append":
            print(json.dumps(asdict(client.append(name, stdin_messages()))))
        elif command == "load":
            text = "".join(m + "\n" for m in client.load(name, raw=True))
            sys.stdout.buffer.write(text.encode("utf-8"))
        elif command == "tour":
            print(json.dumps(tour(client, name), ensure_ascii=False))
        elif command == "agent":
            print(json.dumps(agent(client, name, stdin_messages()), ensure_ascii=False))
        elif command == "calls":
            report = calls(client, name)
            report["token_calls"] = token_function.asked if token_function else None
            print(json.dumps(report))
        else:
            sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
