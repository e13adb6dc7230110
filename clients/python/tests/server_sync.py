"""The sync client (sessionstore.client) against a real server: what the client contract
(clients/README.md) asks of it beside what test/interop/python/scenario.py's tour covers: meta
None for a missing session, the renamed calls, flush_all, messages refused before sending, and
the per-session appender (its own seqs, another writer, strict, closed, a server that stays
away). test/interop/python-aio.test.ts runs this file with server_aio.py (unittest, pattern
server_*.py), with SESSIONSTORE_ADDRESS set.
"""

from __future__ import annotations

import os
import threading
import unittest
import uuid
from typing import Any, Callable

import grpc

from sessionstore import RetryPolicy, SessionStoreClient, SessionStoreError

ADDRESS = os.environ.get("SESSIONSTORE_ADDRESS", "")


@unittest.skipUnless(ADDRESS, "SESSIONSTORE_ADDRESS is not set: test/interop/python-aio.test.ts sets it")
class AgainstServer(unittest.TestCase):
    def setUp(self) -> None:
        self.store = SessionStoreClient(ADDRESS, timeout=30)
        self.addCleanup(self.store.close)
        self.id = f"sync-{uuid.uuid4().hex[:12]}"

    def failure(self, call: Callable[[], Any]) -> SessionStoreError:
        with self.assertRaises(SessionStoreError) as caught:
            call()
        return caught.exception


class Calls(AgainstServer):
    def test_a_missing_session(self) -> None:
        missing = f"{self.id}-missing"
        self.assertIsNone(self.store.meta(missing))
        self.assertEqual(self.store.load(missing), [])
        self.assertEqual(self.store.last(missing, 2), [])
        self.assertEqual(self.store.load_window(missing).messages, [])
        self.assertIsNone(self.store.pop_last(missing))
        self.assertFalse(self.store.delete(missing))
        self.assertEqual(self.store.flush(missing), 0)
        for call in (
            lambda: self.store.set_labels(missing, {"a": "b"}),
            lambda: self.store.fork(missing, 0, f"{missing}-fork"),
            lambda: self.store.rewind(missing, 0),
            lambda: self.store.trim(missing, 0),
        ):
            self.assertEqual(self.failure(call).code, grpc.StatusCode.NOT_FOUND)

    def test_load_window_pop_last_flush_and_flush_all(self) -> None:
        self.store.append(self.id, [{"n": 0}, {"n": 1}, {"n": 2}])
        self.assertEqual(self.store.flush(self.id), 3)
        meta = self.store.meta(self.id)
        self.assertEqual((meta.message_count, meta.durable_count) if meta else None, (3, 3))
        window = self.store.load_window(self.id, max_bytes=16)  # 7 bytes a message
        self.assertEqual((window.first_seq, window.messages), (1, [{"n": 1}, {"n": 2}]))
        self.assertEqual(self.store.pop_last(self.id, raw=True), '{"n":2}')
        self.assertEqual(self.store.load(self.id), [{"n": 0}, {"n": 1}])
        with self.assertRaisesRegex(ValueError, "flush_all"):
            self.store.flush("")
        self.store.append(f"{self.id}-b", [{"n": 0}])
        result = self.store.flush_all()
        self.assertGreaterEqual(result.flushed, 1)
        self.assertEqual(result.failures, [])
        meta = self.store.meta(f"{self.id}-b")
        self.assertEqual(meta.durable_count if meta else None, 1)

    def test_a_message_that_is_not_one_json_object_is_refused_before_sending(self) -> None:
        # An unreachable server: what fails, fails before any call (else it would be UNAVAILABLE).
        with SessionStoreClient("127.0.0.1:1", retry=RetryPolicy(max_attempts=1)) as nowhere:
            for store in (self.store, nowhere):
                error = self.failure(lambda: store.append(self.id, [{"ok": 0}, "[1]"]))
                self.assertEqual(error.code, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn("message 1 is JSON but not an object", error.details)
                with store.appender(self.id, expected_seq=0) as appender:
                    error = self.failure(lambda: appender.append([{"ok": 0}, 42]))
                    self.assertIn("message 1 is of type int, not a dict", error.details)
                    self.assertIsNone(appender.error)
                for bad in ('{"x": NaN}', {"x": float("inf")}):
                    error = self.failure(lambda: store.append(self.id, [bad]))
                    self.assertIn("message 0 ", error.details)
        self.assertIsNone(self.store.meta(self.id))


class Appender(AgainstServer):
    def test_appends_at_the_sessions_end_and_after_another_writer_unless_strict(self) -> None:
        self.store.append(self.id, [{"theirs": 0}])
        with self.store.appender(self.id, labels={"user": "a"}) as appender:
            self.assertIsNone(appender.next_seq)
            self.assertEqual(appender.append([{"mine": 1}]).first_seq, 1)
            self.store.append(self.id, [{"theirs": 2}])
            ack = appender.append([{"mine": 3}, {"mine": 4}])
            self.assertEqual((ack.first_seq, ack.next_seq, appender.next_seq), (3, 5, 5))
        strict = self.store.appender(self.id, expected_seq=5)
        self.store.append(self.id, [{"theirs": 5}])
        error = self.failure(lambda: strict.append([{"mine": 5}]))
        self.assertEqual((error.code, error.actual_length), (grpc.StatusCode.ABORTED, 6))
        self.assertIs(self.failure(lambda: strict.append([{"mine": 6}])), error)
        self.assertIs(strict.error, error)
        strict.close()
        self.assertEqual(
            self.store.load(self.id),
            [{"theirs": 0}, {"mine": 1}, {"theirs": 2}, {"mine": 3}, {"mine": 4}, {"theirs": 5}],
        )
        # The labels went with no request: the session existed before the appender.
        meta = self.store.meta(self.id)
        self.assertEqual(meta.labels if meta else None, {})

    def test_labels_a_session_it_creates(self) -> None:
        with self.store.appender(self.id, labels={"user": "a"}) as appender:
            appender.append([{"n": 0}])
        meta = self.store.meta(self.id)
        self.assertEqual(meta.labels if meta else None, {"user": "a"})

    def test_appends_from_threads_take_turns(self) -> None:
        with self.store.appender(self.id) as appender:

            def write(thread: int) -> None:
                for n in range(10):
                    appender.append([{"thread": thread, "n": n}])

            threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        stored = self.store.load(self.id)
        self.assertEqual(len(stored), 40)
        for t in range(4):
            self.assertEqual([m["n"] for m in stored if m["thread"] == t], list(range(10)))

    def test_a_closed_appender_refuses_appends(self) -> None:
        appender = self.store.appender(self.id)
        appender.append([{"n": 0}])
        appender.close()
        error = self.failure(lambda: appender.append([{"n": 1}]))
        self.assertEqual(error.code, grpc.StatusCode.FAILED_PRECONDITION)

    def test_fails_when_the_server_stays_unreachable(self) -> None:
        retry = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.01)
        with SessionStoreClient("127.0.0.1:1", retry=retry) as unreachable:
            appender = unreachable.appender(self.id)
            error = self.failure(lambda: appender.append([{"n": 0}]))
            self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("gave up after 3 attempts", error.details)
            appender.close()
            # Reads give up after the policy's attempts too, with the last error.
            self.assertEqual(
                self.failure(lambda: unreachable.load(self.id)).code, grpc.StatusCode.UNAVAILABLE
            )


class Watches(AgainstServer):
    def test_cancel_ends_a_watch_with_cancelled_from_another_thread(self) -> None:
        self.store.append(self.id, [{"n": 0}])
        watch = self.store.watch(self.id)
        self.assertEqual(next(watch), (0, {"n": 0}))
        threading.Timer(0.2, watch.cancel).start()
        error = self.failure(lambda: next(watch))
        self.assertEqual(error.code, grpc.StatusCode.CANCELLED)

    def test_ends_with_not_found_when_the_session_is_deleted(self) -> None:
        self.store.append(self.id, [{"n": 0}])
        with self.store.watch_events(self.id) as watch:
            self.assertEqual(next(watch).seq, 0)  # type: ignore[union-attr]
            self.store.delete(self.id)
            self.assertEqual(self.failure(lambda: next(watch)).code, grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
