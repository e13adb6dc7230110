"""Unit tests of what the sync and asyncio clients share (sessionstore._common): which failures
are retried and after what pause, where a broken read or watch resumes, what an appender does
after an error, and which messages are refused before sending. The clients only block or await
around these; test/interop/python-aio.test.ts and python-restart.test.ts run them against the
server. (test/interop/client-security.test.ts runs this file with the other unit tests.)"""

import unittest

import grpc

from sessionstore import RetryPolicy, SessionStoreError
from sessionstore._common import (
    _AppenderState,
    _Attempts,
    _backoff_delay,
    _encode_all,
    _flush_all_result,
    _is_retriable,
    _LoadCursor,
    _WatchCursor,
)
from sessionstore.v1 import session_store_pb2 as pb


def error(code: grpc.StatusCode, details: str = "x", length: "int | None" = None) -> SessionStoreError:
    return SessionStoreError(code, details, length)


UNAVAILABLE = error(grpc.StatusCode.UNAVAILABLE)


class Retries(unittest.TestCase):
    def test_unavailable_and_a_reset_stream_are_retried_nothing_else(self) -> None:
        self.assertTrue(_is_retriable(UNAVAILABLE))
        self.assertTrue(_is_retriable(error(grpc.StatusCode.INTERNAL, "Received RST_STREAM")))
        self.assertFalse(_is_retriable(error(grpc.StatusCode.INTERNAL, "a bug")))
        for code in (
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.UNAUTHENTICATED,
        ):
            self.assertFalse(_is_retriable(error(code)), code)

    def test_the_pauses_double_up_to_the_maximum_with_a_quarter_of_jitter(self) -> None:
        policy = RetryPolicy()
        for retry, base in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (20, 5.0)]:
            for _ in range(50):
                delay = _backoff_delay(policy, retry)
                self.assertGreaterEqual(delay, base * 0.75 - 1e-9, retry)
                self.assertLessEqual(delay, base * 1.25 + 1e-9, retry)

    def test_at_most_max_attempts_in_a_row_and_progress_resets_the_count(self) -> None:
        attempts = _Attempts(RetryPolicy(max_attempts=3))
        self.assertIsNotNone(attempts.failed(UNAVAILABLE))
        self.assertIsNotNone(attempts.failed(UNAVAILABLE))
        attempts.progress()
        self.assertIsNotNone(attempts.failed(UNAVAILABLE))
        self.assertIsNotNone(attempts.failed(UNAVAILABLE))
        self.assertIsNone(attempts.failed(UNAVAILABLE))  # the third failure in a row
        self.assertIsNone(_Attempts(RetryPolicy()).failed(error(grpc.StatusCode.ABORTED)))
        self.assertIsNone(_Attempts(RetryPolicy(max_attempts=1)).failed(UNAVAILABLE))

    def test_no_retry_would_end_past_the_timeout(self) -> None:
        attempts = _Attempts(RetryPolicy(initial_delay=1.0), timeout=0.5)
        timeout = attempts.timeout()
        assert timeout is not None
        self.assertLessEqual(timeout, 0.5)
        self.assertIsNone(attempts.failed(UNAVAILABLE))  # a pause of 0.75 s or more
        self.assertIsNone(_Attempts(RetryPolicy()).timeout())

    def test_a_policy_needs_one_attempt_at_least(self) -> None:
        with self.assertRaises(ValueError):
            RetryPolicy(max_attempts=0)


class Resumption(unittest.TestCase):
    def test_a_load_goes_on_from_the_next_seq_with_what_is_left_of_its_limit(self) -> None:
        cursor = _LoadCursor("s", 0, 5, True)  # the last 5
        self.assertEqual((cursor.request().last, cursor.request().limit), (True, 5))
        self.assertTrue(cursor.advance(pb.LoadResponse(first_seq=10, messages=["{}"] * 3)))
        request = cursor.request()
        self.assertEqual((request.from_seq, request.limit, request.last), (13, 2, False))
        self.assertFalse(cursor.advance(pb.LoadResponse(first_seq=13, messages=["{}"] * 2)))
        unlimited = _LoadCursor("s", 4, 0, False)
        self.assertTrue(unlimited.advance(pb.LoadResponse(first_seq=4, messages=["{}"])))
        self.assertEqual((unlimited.request().from_seq, unlimited.request().limit), (5, 0))

    def test_a_watch_goes_on_from_the_next_seq_or_the_rewound_one(self) -> None:
        cursor = _WatchCursor("s", 2)
        self.assertFalse(cursor.needs_length)  # nothing yielded: nothing to compare
        cursor.advance(pb.WatchResponse(first_seq=2, messages=["{}"] * 3))
        self.assertEqual(cursor.request().from_seq, 5)
        self.assertTrue(cursor.needs_length)
        self.assertIsNone(cursor.rewound_to(5))  # as long as what was yielded: no rewind
        self.assertIsNone(cursor.rewound_to(None))  # deleted: the watch waits for it
        rewound = cursor.rewound_to(3)
        assert rewound is not None
        self.assertEqual((rewound.rewound_to, rewound.first_seq), (3, 3))
        self.assertEqual(cursor.request().from_seq, 3)
        cursor.advance(pb.WatchResponse(first_seq=1, rewound_to=1))  # told by the stream
        self.assertEqual(cursor.request().from_seq, 1)


class Appender(unittest.TestCase):
    def state(self, expected_seq: "int | None" = None) -> _AppenderState:
        state = _AppenderState("s", expected_seq, False, {"user": "a"}, RetryPolicy(max_attempts=3))
        state.next_seq = 4 if expected_seq is None else expected_seq
        return state

    def test_every_request_claims_its_seq_and_labels_go_at_seq_0(self) -> None:
        state = self.state(expected_seq=0)
        request = state.request(['{"n":0}'])
        self.assertEqual((request.expected_seq, dict(request.labels)), (0, {"user": "a"}))
        state.acknowledged(pb.AppendResponse(session_id="s", first_seq=0, next_seq=1))
        request = state.request(['{"n":1}'])
        self.assertEqual((request.expected_seq, dict(request.labels)), (1, {}))
        with self.assertRaises(SessionStoreError) as caught:
            state.acknowledged(pb.AppendResponse(session_id="s", first_seq=7, next_seq=8))
        self.assertEqual(caught.exception.code, grpc.StatusCode.INTERNAL)

    def test_after_another_writer_it_moves_unless_strict(self) -> None:
        moves = self.state()
        self.assertEqual(moves.after(error(grpc.StatusCode.ABORTED, length=6)), 0.0)
        self.assertEqual(moves.next_seq, 6)
        # Shorter than what was acknowledged (deleted, or lost unsynced messages): it fails.
        with self.assertRaises(SessionStoreError):
            moves.after(error(grpc.StatusCode.ABORTED, length=2))
        self.assertIsNotNone(moves.error)
        strict = self.state(expected_seq=4)
        with self.assertRaises(SessionStoreError):
            strict.after(error(grpc.StatusCode.ABORTED, length=6))
        with self.assertRaises(SessionStoreError):
            strict.check()  # failed for good

    def test_it_resends_after_a_broken_stream_until_the_policy_gives_up(self) -> None:
        state = self.state()
        self.assertGreater(state.after(UNAVAILABLE), 0)
        self.assertGreater(state.after(UNAVAILABLE), 0)
        with self.assertRaises(SessionStoreError) as caught:
            state.after(UNAVAILABLE)
        self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertIn("gave up after 3 attempts", caught.exception.details)
        self.assertIs(state.error, caught.exception)

    def test_a_closed_appender_refuses_appends(self) -> None:
        state = self.state()
        state.closed = True
        with self.assertRaises(SessionStoreError) as caught:
            state.check()
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)


class Messages(unittest.TestCase):
    def test_each_message_is_one_json_object_or_the_call_names_the_first_that_is_not(self) -> None:
        self.assertEqual(
            _encode_all([{"a": "é"}, '{"b":\r\n12345678901234567890}', b'{"c":1}']),
            ['{"a":"é"}', '{"b":  12345678901234567890}', '{"c":1}'],
        )
        for bad in ["[1]", "1", "not json", '{"a": NaN}', b"\xff", None, 3, ["x"], {"x": {1}}]:
            with self.assertRaises(SessionStoreError) as caught:
                _encode_all([{"ok": 1}, bad])  # type: ignore[list-item]
            self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT, bad)
            self.assertIn("message 1 ", caught.exception.details)
        with self.assertRaises(TypeError):
            _encode_all({"role": "user"})  # type: ignore[arg-type]


class FlushAll(unittest.TestCase):
    def test_failures_come_back_with_their_status(self) -> None:
        response = pb.FlushResponse(
            flushed=3, failures=[pb.FlushFailure(session_id="bad", code=15, message="damaged")]
        )
        result = _flush_all_result(response)
        self.assertEqual(result.flushed, 3)
        [(session_id, failure)] = result.failures
        self.assertEqual((session_id, failure.code, failure.details), ("bad", grpc.StatusCode.DATA_LOSS, "damaged"))


if __name__ == "__main__":
    unittest.main()
