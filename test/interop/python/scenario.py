"""The interop scenario's Python side (test/interop/polyglot.test.ts runs it).

    scenario.py ADDRESS append SESSION   appends stdin's lines (one message each, raw) in one
                                         request; prints the ack
    scenario.py ADDRESS load SESSION     prints the session's messages, one per line, raw
    scenario.py ADDRESS tour PREFIX      uses every call of the client; prints a JSON report that
                                         must equal the Go side's (test/interop/go)

Text goes in and out as UTF-8 bytes, so that what is compared is exactly what travelled.
"""

import json
import sys
from dataclasses import asdict
from typing import Any, Callable, List

from sessionstore import SessionStoreClient, SessionStoreError


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
    with client.appender() as appender:
        report["appender"] = [
            asdict(appender.append(session, [{"n": 3}])),
            asdict(appender.append(other, ['{"other":true}'])),
            asdict(appender.append(session, [{"n": 4}, {"n": 5}], expected_seq=3)),
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
    report["after_delete"] = [code_of(lambda: client.meta(session)), client.load(session)]
    client.delete(other)
    return report


def main() -> None:
    address, command, name = sys.argv[1:4]
    with SessionStoreClient(address, timeout=30) as client:
        if command == "append":
            # split, not splitlines: only "\n" ends a message (U+2028 and the like do not).
            messages = sys.stdin.buffer.read().decode("utf-8").split("\n")
            if messages[-1] == "":
                messages.pop()
            print(json.dumps(asdict(client.append(name, messages))))
        elif command == "load":
            text = "".join(m + "\n" for m in client.load(name, raw=True))
            sys.stdout.buffer.write(text.encode("utf-8"))
        elif command == "tour":
            print(json.dumps(tour(client, name), ensure_ascii=False))
        else:
            sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
