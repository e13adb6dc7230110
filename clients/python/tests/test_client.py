"""Unit tests of the client's connection options (test/interop/client-security.test.ts runs them,
and runs the options against the real server)."""

import unittest

import grpc

from sessionstore import SessionStoreClient
from sessionstore.client import _is_loopback


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


if __name__ == "__main__":
    unittest.main()
