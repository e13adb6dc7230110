"""The asyncio client (sessionstore.aio) against a real server: each operation, the errors as
the sync client raises them, and the session appender across broken streams (through a proxy
that drops connections). test/interop/python-aio.test.ts starts the servers and runs this
file with unittest (its name is not test_*.py: the unit tests run without a server):

    SESSIONSTORE_ADDRESS       a server (plaintext, no auth)
    SESSIONSTORE_JWT_ADDRESS   a server with --auth jwt (plaintext)
    SESSIONSTORE_JWT_TOKEN     a token that server accepts
"""

from __future__ import annotations

import asyncio
import os
import unittest
import uuid
from typing import Any

import grpc

from sessionstore import ListOrder, Message, RetryPolicy, Rewound, SessionStoreError
from sessionstore.aio import AsyncSessionStoreClient, token_interceptors


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: test/interop/python-aio.test.ts sets it")
    return value


ADDRESS = required("SESSIONSTORE_ADDRESS")


class AgainstServer(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.store = AsyncSessionStoreClient(ADDRESS, timeout=30)
        # Each test its own sessions: the server is shared.
        self.id = f"aio-{uuid.uuid4().hex[:12]}"

    async def asyncTearDown(self) -> None:
        await self.store.close()

    async def failure(self, call: Any) -> SessionStoreError:
        with self.assertRaises(SessionStoreError) as caught:
            await call
        return caught.exception


class Messages(AgainstServer):
    async def test_append_load_last_messages_and_meta(self) -> None:
        ack = await self.store.append(
            self.id,
            [
                {"role": "user", "content": "héllo"},
                '{"role":"assistant","big":12345678901234567890}',
            ],
            labels={"user": "alice"},
        )
        self.assertEqual((ack.session_id, ack.first_seq, ack.next_seq), (self.id, 0, 2))
        self.assertEqual(
            await self.store.load(self.id),
            [
                {"role": "user", "content": "héllo"},
                {"role": "assistant", "big": 12345678901234567890},
            ],
        )
        self.assertEqual(
            await self.store.load(self.id, raw=True),
            [
                '{"role":"user","content":"héllo"}',
                '{"role":"assistant","big":12345678901234567890}',
            ],
        )
        self.assertEqual(
            await self.store.last(self.id, 1, raw=True),
            ['{"role":"assistant","big":12345678901234567890}'],
        )
        pairs = [pair async for pair in self.store.messages(self.id, from_seq=1, raw=True)]
        self.assertEqual(pairs, [(1, '{"role":"assistant","big":12345678901234567890}')])
        meta = await self.store.meta(self.id)
        assert meta is not None
        self.assertEqual(
            (meta.message_count, meta.labels, meta.labels_revision), (2, {"user": "alice"}, 1)
        )
        self.assertEqual(await self.store.load(f"{self.id}-unknown"), [])
        self.assertEqual(await self.store.last(f"{self.id}-unknown", 3), [])
        self.assertIsNone(await self.store.meta(f"{self.id}-unknown"))

    async def test_expected_seq_mismatch_is_aborted_with_the_actual_length(self) -> None:
        await self.store.append(self.id, [{"n": 0}, {"n": 1}])
        error = await self.failure(self.store.append(self.id, [{"n": 2}], expected_seq=1))
        self.assertEqual((error.code, error.actual_length), (grpc.StatusCode.ABORTED, 2))
        self.assertEqual(len(await self.store.load(self.id)), 2)

    async def test_invalid_input_and_unknown_sessions(self) -> None:
        error = await self.failure(self.store.append("../escape", [{"n": 0}]))
        self.assertEqual(error.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(TypeError):
            await self.store.append(self.id, {"role": "user"})  # type: ignore[arg-type]

    async def test_a_message_that_is_not_one_json_object_is_refused_before_sending(self) -> None:
        # An unreachable server: what fails, fails before any call (else it would be UNAVAILABLE).
        async with AsyncSessionStoreClient(
            "127.0.0.1:1", retry=RetryPolicy(max_attempts=1)
        ) as nowhere:
            for bad, problem in [
                ("not json", "message 1 is not valid JSON"),
                ("[1, 2]", "message 1 is JSON but not an object"),
                (b"\xff", "message 1 is not valid JSON"),
                (["a list"], "message 1 is of type list, not a dict"),
                ({"set": {1}}, "message 1 does not encode as JSON"),
            ]:
                for store in (self.store, nowhere):
                    error = await self.failure(store.append(self.id, [{"ok": 0}, bad]))
                    self.assertEqual(error.code, grpc.StatusCode.INVALID_ARGUMENT)
                    self.assertIn(problem, error.details)
                    appender = store.appender(self.id, expected_seq=0)
                    error = await self.failure(appender.append([bad]))
                    self.assertEqual(error.code, grpc.StatusCode.INVALID_ARGUMENT)
                    self.assertIsNone(appender.error)  # the appender goes on
                    await appender.close()
        self.assertIsNone(await self.store.meta(self.id))  # nothing was stored
        # Text is sent as written, raw CR/LF between tokens as spaces (as the server stores it).
        await self.store.append(self.id, ['{"a":\r\n1}'])
        self.assertEqual(await self.store.load(self.id, raw=True), ['{"a":  1}'])

    async def test_flush_flush_all_and_delete(self) -> None:
        await self.store.append(self.id, [{"n": 0}])
        self.assertEqual(await self.store.flush(self.id), 1)
        meta = await self.store.meta(self.id)
        self.assertEqual(meta.durable_count if meta else None, 1)
        self.assertEqual(await self.store.flush(f"{self.id}-unknown"), 0)
        with self.assertRaisesRegex(ValueError, "flush_all"):
            await self.store.flush("")
        await self.store.append(f"{self.id}-b", [{"n": 0}, {"n": 1}])
        result = await self.store.flush_all()
        self.assertGreaterEqual(result.flushed, 2)
        self.assertEqual(result.failures, [])
        meta = await self.store.meta(f"{self.id}-b")
        self.assertEqual(meta.durable_count if meta else None, 2)
        self.assertTrue(await self.store.delete(self.id))
        self.assertFalse(await self.store.delete(self.id))


class Proxy:
    """A TCP proxy to the server that can hold back what the server sends, and drop every
    connection: a stream that breaks after the server stored a request, before its ack came."""

    def __init__(self, upstream: str):
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._downstream = asyncio.Event()
        self._downstream.set()
        self._transports: list[asyncio.BaseTransport] = []
        self.connections = 0  #: how many connections it has served

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    def hold(self) -> None:
        """Holds back what the server sends, until drop()."""
        self._downstream.clear()

    def drop(self) -> None:
        """Resets every connection; new ones are served as before."""
        for transport in self._transports:
            transport.abort()
        self._transports.clear()
        self._downstream.set()

    async def close(self) -> None:
        self.drop()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._transports += [writer.transport, up_writer.transport]
        await asyncio.gather(
            self._pipe(reader, up_writer, None),
            self._pipe(up_reader, writer, self._downstream),
            return_exceptions=True,
        )

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if gate is not None:
                    await gate.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


class SessionAppender(AgainstServer):
    async def stored(self, count: int) -> None:
        """Waits until the session holds ``count`` messages (5 s at most)."""
        for _ in range(500):
            if len(await self.store.load(self.id)) == count:
                return
            await asyncio.sleep(0.01)
        self.fail(f"the session never held {count} messages")

    async def test_resends_what_a_broken_stream_left_unacknowledged_and_stores_it_once(
        self,
    ) -> None:
        proxy = Proxy(ADDRESS)
        self.addAsyncCleanup(proxy.close)
        async with AsyncSessionStoreClient(await proxy.start(), timeout=30) as through_proxy:
            async with through_proxy.appender(self.id) as appender:
                self.assertEqual((await appender.append([{"n": 0}])).first_seq, 0)
                proxy.hold()
                second = asyncio.create_task(appender.append([{"n": 1}]))
                await self.stored(2)  # the server has it; its ack is held back
                self.assertFalse(second.done())
                proxy.drop()
                ack = await second
                self.assertEqual((ack.first_seq, ack.next_seq), (1, 2))
                self.assertEqual((await appender.append([{"n": 2}])).first_seq, 2)
        self.assertEqual(await self.store.load(self.id), [{"n": 0}, {"n": 1}, {"n": 2}])

    async def test_reconnects_after_the_connection_dropped_between_appends(self) -> None:
        proxy = Proxy(ADDRESS)
        self.addAsyncCleanup(proxy.close)
        async with AsyncSessionStoreClient(await proxy.start(), timeout=30) as through_proxy:
            async with through_proxy.appender(self.id, labels={"user": "a"}) as appender:
                await appender.append([{"n": 0}])
                proxy.drop()
                self.assertEqual((await appender.append([{"n": 1}])).first_seq, 1)
        self.assertEqual(len(await self.store.load(self.id)), 2)
        meta = await self.store.meta(self.id)
        self.assertEqual(meta.labels if meta else None, {"user": "a"})

    async def test_goes_after_another_writers_messages_unless_strict(self) -> None:
        async with self.store.appender(self.id) as appender:
            await appender.append([{"mine": 0}])
            await self.store.append(self.id, [{"theirs": 1}])
            self.assertEqual((await appender.append([{"mine": 2}])).first_seq, 2)
            self.assertEqual(appender.next_seq, 3)
        strict = self.store.appender(self.id, expected_seq=3)
        await self.store.append(self.id, [{"theirs": 3}])
        error = await self.failure(strict.append([{"mine": 3}]))
        self.assertEqual((error.code, error.actual_length), (grpc.StatusCode.ABORTED, 4))
        self.assertIs(await self.failure(strict.append([{"mine": 4}])), error)
        await strict.close()
        self.assertEqual(
            await self.store.load(self.id),
            [{"mine": 0}, {"theirs": 1}, {"mine": 2}, {"theirs": 3}],
        )

    async def test_a_closed_appender_refuses_appends(self) -> None:
        appender = self.store.appender(self.id)
        await appender.append([{"n": 0}])
        await appender.close()
        error = await self.failure(appender.append([{"n": 1}]))
        self.assertEqual(error.code, grpc.StatusCode.FAILED_PRECONDITION)

    async def test_a_load_broken_midway_goes_on_from_the_next_seq(self) -> None:
        padding = "x" * 100_000  # 100 messages of 100 kB: pages of about 1 MiB
        for batch in range(10):
            await self.store.append(
                self.id, [{"n": batch * 10 + n, "pad": padding} for n in range(10)]
            )
        proxy = Proxy(ADDRESS)
        self.addAsyncCleanup(proxy.close)
        async with AsyncSessionStoreClient(await proxy.start(), timeout=30) as through_proxy:
            read = []
            async for seq, message in through_proxy.messages(self.id):
                if seq == 0:  # the first page came: what follows is held back, then dropped
                    proxy.hold()
                    proxy.drop()
                read.append((seq, message["n"]))
            last = await through_proxy.last(self.id, 2)
        self.assertEqual(read, [(n, n) for n in range(100)])
        self.assertEqual([m["n"] for m in last], [98, 99])
        self.assertEqual(proxy.connections, 2)  # the stream broke, and went on over another

    async def test_fails_when_the_server_stays_unreachable(self) -> None:
        proxy = Proxy(ADDRESS)
        address = await proxy.start()
        await proxy.close()
        async with AsyncSessionStoreClient(address, timeout=30) as unreachable:
            retry = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.01)
            appender = unreachable.appender(self.id, retry=retry)
            error = await self.failure(appender.append([{"n": 0}]))
            self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("gave up after 3 attempts", error.details)
            self.assertIs(await self.failure(appender.append([{"n": 1}])), error)
            await appender.close()


class Labels(AgainstServer):
    async def test_set_labels_guarded_by_the_revision(self) -> None:
        await self.store.append(self.id, [{"n": 0}], labels={"user": "alice"})
        meta = await self.store.set_labels(self.id, {"env": "dev"}, expected_labels_revision=1)
        self.assertEqual((meta.labels, meta.labels_revision), ({"env": "dev", "user": "alice"}, 2))
        error = await self.failure(
            self.store.set_labels(self.id, {"env": ""}, expected_labels_revision=1)
        )
        self.assertEqual((error.code, error.actual_labels_revision), (grpc.StatusCode.ABORTED, 2))
        error = await self.failure(self.store.set_labels(f"{self.id}-unknown", {"a": "b"}))
        self.assertEqual(error.code, grpc.StatusCode.NOT_FOUND)

    async def test_list_by_prefix_selector_and_update_time_across_pages(self) -> None:
        for n in range(3):
            await self.store.append(
                f"{self.id}-{n}", [{"n": n}], labels={"team": "a" if n < 2 else "b"}
            )
        await self.store.append(f"{self.id}-0", [{"again": True}])
        by_id = [meta.session_id async for meta in self.store.list(self.id, page_size=1)]
        self.assertEqual(by_id, [f"{self.id}-{n}" for n in range(3)])
        newest_first = [
            meta.session_id
            async for meta in self.store.list(
                self.id, label_selector="team=a", order=ListOrder.BY_UPDATED_DESC
            )
        ]
        self.assertEqual(newest_first, [f"{self.id}-0", f"{self.id}-1"])
        error = await self.failure(self.store.list(label_selector="bad selector!").__anext__())
        self.assertEqual(error.code, grpc.StatusCode.INVALID_ARGUMENT)


class History(AgainstServer):
    async def test_window_with_whole_turns_and_dangling_calls(self) -> None:
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": "{}"},
        }
        await self.store.append(
            self.id,
            [{"role": "user", "content": "Weather?"}, {"role": "assistant", "tool_calls": [call]}],
        )
        window = await self.store.load_window(self.id, max_bytes=4096, whole_turns=True)
        self.assertEqual((window.first_seq, len(window.messages)), (0, 2))
        self.assertEqual(window.dangling_call_ids, ["call_1"])
        empty = await self.store.load_window(f"{self.id}-unknown")
        self.assertEqual((empty.first_seq, empty.messages), (None, []))

    async def test_fork_and_its_errors(self) -> None:
        await self.store.append(self.id, [{"n": 0}, {"n": 1}], labels={"user": "alice"})
        fork = await self.store.fork(self.id, 1, f"{self.id}-fork", labels={"branch": "b"})
        self.assertEqual(
            (fork.parent_session_id, fork.parent_seq, fork.message_count), (self.id, 1, 1)
        )
        self.assertEqual(fork.labels, {"branch": "b", "user": "alice"})
        error = await self.failure(self.store.fork(self.id, 1, f"{self.id}-fork"))
        self.assertEqual(error.code, grpc.StatusCode.ALREADY_EXISTS)
        error = await self.failure(self.store.fork(self.id, 5, f"{self.id}-past"))
        self.assertEqual((error.code, error.actual_length), (grpc.StatusCode.OUT_OF_RANGE, 2))

    async def test_rewind_and_pop_last(self) -> None:
        await self.store.append(self.id, [{"n": 0}, {"n": 1}, {"n": 2}])
        rewound = await self.store.rewind(self.id, 2, expected_seq=3)
        self.assertEqual((rewound.dropped, rewound.meta.message_count), ([{"n": 2}], 2))
        error = await self.failure(self.store.rewind(self.id, 1, expected_seq=3))
        self.assertEqual((error.code, error.actual_length), (grpc.StatusCode.ABORTED, 2))
        self.assertEqual(await self.store.pop_last(self.id, raw=True), '{"n":1}')
        self.assertEqual(await self.store.pop_last(self.id), {"n": 0})
        self.assertIsNone(await self.store.pop_last(self.id))
        self.assertIsNone(await self.store.pop_last(f"{self.id}-unknown"))

    async def test_trim_and_loading_below_the_first_kept_seq(self) -> None:
        await self.store.append(self.id, [{"n": 0}, {"n": 1}, {"n": 2}])
        trimmed = await self.store.trim(self.id, 2)
        self.assertEqual((trimmed.trimmed, trimmed.meta.first_seq), (2, 2))
        error = await self.failure(self.store.load(self.id, from_seq=1))
        self.assertEqual((error.code, error.first_seq), (grpc.StatusCode.OUT_OF_RANGE, 2))
        self.assertEqual(await self.store.load(self.id, from_seq=2), [{"n": 2}])


class Watches(AgainstServer):
    async def test_watch_yields_history_then_live_and_ends_with_not_found_on_delete(self) -> None:
        await self.store.append(self.id, [{"n": 0}])
        seen: list[tuple[int, Any]] = []
        async with self.store.watch(self.id) as watch:
            async for seq, message in watch:
                seen.append((seq, message))
                if seq == 0:
                    await self.store.append(self.id, [{"n": 1}])
                else:
                    await self.store.delete(self.id)
                    break
            error = await self.failure(watch.__anext__())
        self.assertEqual(seen, [(0, {"n": 0}), (1, {"n": 1})])
        self.assertEqual(error.code, grpc.StatusCode.NOT_FOUND)

    async def test_watch_events_tell_of_rewinds(self) -> None:
        await self.store.append(self.id, [{"n": 0}, {"n": 1}])
        async with self.store.watch_events(self.id, from_seq=1) as watch:
            self.assertEqual(await watch.__anext__(), Message(1, {"n": 1}))
            await self.store.rewind(self.id, 1)
            self.assertEqual(await watch.__anext__(), Rewound(1))
            await self.store.append(self.id, [{"after": "rewind"}])
            self.assertEqual(await watch.__anext__(), Message(1, {"after": "rewind"}))

    async def test_a_watch_goes_on_from_the_next_seq_and_notices_a_rewind_made_meanwhile(
        self,
    ) -> None:
        await self.store.append(self.id, [{"n": n} for n in range(4)])
        proxy = Proxy(ADDRESS)
        self.addAsyncCleanup(proxy.close)
        async with AsyncSessionStoreClient(await proxy.start()) as through_proxy:
            async with through_proxy.watch_events(self.id) as watch:
                for n in range(4):
                    self.assertEqual(await watch.__anext__(), Message(n, {"n": n}))
                # The watch's stream breaks; before it reconnects (it does when read next), the
                # session is rewound to seq 2, which a new stream from seq 4 would not tell (the
                # server does not know what this watch yielded): the session's length does.
                proxy.drop()
                await self.store.rewind(self.id, 2)
                self.assertEqual(await watch.__anext__(), Rewound(2))
                await self.store.append(self.id, [{"after": "rewind"}])
                self.assertEqual(await watch.__anext__(), Message(2, {"after": "rewind"}))
                await self.store.append(self.id, [{"n": 3}])
                self.assertEqual(await watch.__anext__(), Message(3, {"n": 3}))
        self.assertGreaterEqual(proxy.connections, 2)

    async def test_a_cancelled_watch_ends_with_cancelled(self) -> None:
        watch = self.store.watch(self.id)
        watch.cancel()
        error = await self.failure(watch.__anext__())
        self.assertEqual(error.code, grpc.StatusCode.CANCELLED)


@unittest.skipUnless(os.environ.get("SESSIONSTORE_JWT_ADDRESS"), "no --auth jwt server given")
class Tokens(unittest.IsolatedAsyncioTestCase):
    async def test_a_fixed_token_a_token_function_and_a_coroutine_are_sent(self) -> None:
        address, token = required("SESSIONSTORE_JWT_ADDRESS"), required("SESSIONSTORE_JWT_TOKEN")
        asked: list[str] = []

        def fresh() -> str:
            asked.append("sync")
            return token

        async def refreshed() -> str:
            asked.append("async")
            return token

        for source in (token, fresh, refreshed):
            async with AsyncSessionStoreClient(address, token=source) as store:
                await store.append("tokens", [{"n": 0}])
                self.assertGreater(len(await store.load("tokens")), 0)
        self.assertEqual(asked, ["sync", "sync", "async", "async"])

        channel = grpc.aio.insecure_channel(address, interceptors=token_interceptors(token))
        async with AsyncSessionStoreClient(channel=channel) as store:
            meta = await store.meta("tokens")
            self.assertEqual(meta.session_id if meta else None, "tokens")
        await channel.close()

    async def test_without_a_token_or_when_its_function_fails_unauthenticated(self) -> None:
        address = required("SESSIONSTORE_JWT_ADDRESS")

        def broken() -> str:
            raise OSError("no token file")

        async with AsyncSessionStoreClient(address) as store:
            error = await self.failure_of(store.meta("tokens"))
            self.assertEqual(error.code, grpc.StatusCode.UNAUTHENTICATED)
        async with AsyncSessionStoreClient(address, token=broken) as store:
            for call in (
                store.meta("tokens"),
                store.append("tokens", [{"n": 0}]),
                store.load("tokens"),
            ):
                error = await self.failure_of(call)
                self.assertEqual(error.code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertIn("no token file", error.details)

    async def failure_of(self, call: Any) -> SessionStoreError:
        with self.assertRaises(SessionStoreError) as caught:
            await call
        return caught.exception


class Options(unittest.IsolatedAsyncioTestCase):
    async def test_refuses_a_token_with_a_channel_of_ones_own(self) -> None:
        channel = grpc.aio.insecure_channel(ADDRESS)
        with self.assertRaisesRegex(ValueError, "token_interceptors"):
            AsyncSessionStoreClient(channel=channel, token="t")
        with self.assertRaisesRegex(ValueError, "its own credentials"):
            AsyncSessionStoreClient(channel=channel, credentials="tls")
        await channel.close()

    async def test_refuses_a_client_certificate_without_its_key(self) -> None:
        with self.assertRaisesRegex(ValueError, "go together"):
            AsyncSessionStoreClient(ADDRESS, certificate_chain=b"PEM")


if __name__ == "__main__":
    unittest.main()
