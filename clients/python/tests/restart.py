"""The Python clients across a server restart: test/interop/python-restart.test.ts runs this
program, stops the server and starts it again (same port, same data) while it runs, and checks
what it printed and what the server holds.

    restart.py [--aio] ADDRESS append SESSION COUNT   appends {"n": 0} .. {"n": COUNT-1}, one
                                                      append of the appender each, printing each
                                                      seq acknowledged (one a line)
    restart.py [--aio] ADDRESS watch SESSION COUNT    watches the session from seq 0 and prints
                                                      [seq, message] (JSON, one a line) until it
                                                      has COUNT messages
    restart.py [--aio] ADDRESS reads SESSION          run while the server is down: an append
                                                      without expected_seq (not retried) fails;
                                                      prints "down"; then each retried call waits
                                                      for the server to be back; prints a JSON
                                                      report of what each returned

--aio runs the same with the asyncio client (sessionstore.aio), driven from this thread through
an event loop of its own (Blocking below), so that both clients run the very same steps.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import threading
import time
from typing import Any

from sessionstore import RetryPolicy, SessionStoreClient, SessionStoreError
from sessionstore.aio import AsyncSessionStoreClient

#: Long enough for the test to restart the server (about 18 s of attempts), short between them.
RETRY = RetryPolicy(max_attempts=40, initial_delay=0.02, max_delay=0.5)


class Blocking:
    """An object of the asyncio client, used as the sync client's is: its coroutines are awaited,
    its async iterators iterated and its async context managers entered on an event loop that
    runs in a thread of its own, and what they return is wrapped alike."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop):
        self._target = target
        self._loop = loop

    def _run(self, awaitable: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result()

    def _wrap(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            return self._wrap(self._run(_awaited(value)))
        if hasattr(value, "__anext__") or hasattr(value, "__aenter__"):
            return Blocking(value, self._loop)
        return value

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            async def invoke() -> Any:  # called on the loop: grpc.aio wants its own loop
                return attribute(*args, **kwargs)

            return self._wrap(self._run(invoke()))

        return call

    def __iter__(self) -> Blocking:
        return self

    def __next__(self) -> Any:
        try:
            return self._run(self._target.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def __enter__(self) -> Blocking:
        self._run(self._target.__aenter__())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._run(self._target.__aexit__(*exc_info))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def open_client(address: str, aio: bool) -> Any:
    if not aio:
        return SessionStoreClient(address, timeout=60, retry=RETRY)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def make() -> AsyncSessionStoreClient:
        return AsyncSessionStoreClient(address, timeout=60, retry=RETRY)

    return Blocking(asyncio.run_coroutine_threadsafe(make(), loop).result(), loop)


def say(line: str) -> None:
    print(line, flush=True)


def append(client: Any, session: str, count: int) -> None:
    with client.appender(session) as appender:
        for n in range(count):
            ack = appender.append([{"n": n}])
            if ack.first_seq != n:
                sys.exit(f"message {n} was acknowledged at seq {ack.first_seq}")
            say(str(ack.first_seq))
            time.sleep(0.005)  # an agent's pace: the restart comes between appends and during one


def watch(client: Any, session: str, count: int) -> None:
    seen = 0
    with client.watch(session) as watching:
        for seq, message in watching:
            say(json.dumps([seq, message]))
            seen += 1
            if seen == count:
                return


def reads(client: Any, session: str) -> None:
    try:
        client.append(session, [{"unretried": True}])
        sys.exit("an append without expected_seq succeeded while the server was down")
    except SessionStoreError as error:
        unretried = error.code.name
    say("down")
    # Each of these fails with UNAVAILABLE until the server is back, and is retried meanwhile.
    meta = client.meta(session)
    report = {
        "unretried_append": unretried,
        "meta": meta.message_count,
        "load": client.load(session),
        "messages": [list(pair) for pair in client.messages(session, from_seq=1)],
        "last": client.last(session, 2),
        "load_window": client.load_window(session, max_bytes=16).first_seq,  # 7 bytes each
        "list": [m.session_id for m in client.list(session)],
        "append": client.append(session, [{"n": 3}], expected_seq=3).first_seq,
        "set_labels": client.set_labels(session, {"after": "restart"}).labels,
        "flush": client.flush(session),
        "flush_all_failures": client.flush_all().failures,
    }
    say(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--aio", action="store_true")
    parser.add_argument("address")
    parser.add_argument("command", choices=["append", "watch", "reads"])
    parser.add_argument("session")
    parser.add_argument("count", type=int, nargs="?", default=0)
    args = parser.parse_args()
    client = open_client(args.address, args.aio)
    if args.command == "append":
        append(client, args.session, args.count)
    elif args.command == "watch":
        watch(client, args.session, args.count)
    else:
        reads(client, args.session)
    client.close()


if __name__ == "__main__":
    main()
