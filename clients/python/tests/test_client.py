"""Unit tests of the client's connection options (test/interop/client-security.test.ts runs them,
and runs the options against the real server)."""

import unittest

import grpc

from sessionstore import SessionStoreClient, SessionStoreError
from sessionstore._common import (
    ACTUAL_LABELS_REVISION_KEY,
    ACTUAL_LENGTH_KEY,
    FIRST_SEQ_KEY,
    _is_loopback,
)


class DefaultTransport(unittest.TestCase):
    def test_plaintext_for_loopback_targets(self) -> None:
        for target in [
            "localhost:1",
            "127.0.0.1:50051",
            "127.9.8.7:1",
            "[::1]:80",
            "unix:/tmp/s.sock",
            "unix:///tmp/s.sock",
            "dns:///localhost:50051",
            "ipv4:127.0.0.1:1",
            "ipv6:[::1]:1",
        ]:
            self.assertTrue(_is_loopback(target), target)

    def test_tls_for_any_other(self) -> None:
        for target in [
            "sessions.example.com:443",
            "10.0.0.1:50051",
            "dns:///store:443",
            "[2001:db8::1]:443",
            "localhost.example.com:1",
        ]:
            self.assertFalse(_is_loopback(target), target)


class Options(unittest.TestCase):
    def test_refuses_a_client_certificate_without_its_key(self) -> None:
        with self.assertRaisesRegex(ValueError, "go together"):
            SessionStoreClient("127.0.0.1:1", certificate_chain=b"PEM")

    def test_refuses_tls_files_on_a_plaintext_connection(self) -> None:
        with self.assertRaisesRegex(ValueError, "TLS settings"):
            SessionStoreClient("127.0.0.1:1", credentials="insecure", root_certificates=b"PEM")

    def test_refuses_tls_options_with_a_channel_of_ones_own(self) -> None:
        channel = grpc.insecure_channel("127.0.0.1:1")
        with self.assertRaisesRegex(ValueError, "its own credentials"):
            SessionStoreClient(channel=channel, credentials="tls")
        channel.close()


class FailedCall(grpc.RpcError, grpc.Call):
    """What a failed call raises: a status code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, trailer: tuple) -> None:
        self._code = code
        self._trailer = trailer

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "what to fix"

    def trailing_metadata(self) -> tuple:
        return self._trailer

    def initial_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


class Errors(unittest.TestCase):
    def test_reports_what_the_trailing_metadata_says(self) -> None:
        trailer = ((ACTUAL_LABELS_REVISION_KEY, "7"), (FIRST_SEQ_KEY, "12"), ("other", "1"))
        error = SessionStoreError.from_rpc_error(FailedCall(grpc.StatusCode.ABORTED, trailer))
        self.assertEqual(error.code, grpc.StatusCode.ABORTED)
        self.assertEqual(str(error), "ABORTED: what to fix")
        self.assertEqual(error.actual_labels_revision, 7)
        self.assertEqual(error.first_seq, 12)
        self.assertIsNone(error.actual_length)

    def test_reports_the_length_on_out_of_range(self) -> None:
        call = FailedCall(grpc.StatusCode.OUT_OF_RANGE, ((ACTUAL_LENGTH_KEY, "3"),))
        error = SessionStoreError.from_rpc_error(call)
        self.assertEqual((error.actual_length, error.first_seq), (3, None))


if __name__ == "__main__":
    unittest.main()
