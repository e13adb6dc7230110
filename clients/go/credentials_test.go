package sessionstore

import (
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestIsLoopback(t *testing.T) {
	for _, target := range []string{
		"localhost:1", "127.0.0.1:50051", "127.9.8.7:1", "[::1]:80", "unix:/tmp/s.sock",
		"unix:///tmp/s.sock", "dns:///localhost:50051", "dns://8.8.8.8/127.0.0.1:1", "passthrough:///127.0.0.1:1",
	} {
		if !isLoopback(target) {
			t.Errorf("isLoopback(%q) = false, want true", target)
		}
	}
	for _, target := range []string{
		"sessions.example.com:443", "10.0.0.1:50051", "dns:///store:443", "[2001:db8::1]:443", "localhost.example.com:1",
	} {
		if isLoopback(target) {
			t.Errorf("isLoopback(%q) = true, want false", target)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for name, test := range map[string]struct {
		opts []grpc.DialOption
		want string
	}{
		"Insecure with TLS":     {[]grpc.DialOption{Insecure(), TLS(nil)}, "Insecure cannot go with TLS"},
		"RootCAs without a PEM": {[]grpc.DialOption{RootCAs([]byte("not PEM"))}, "no PEM certificate found"},
		"a client certificate that is not PEM": {
			[]grpc.DialOption{ClientCertificate([]byte("not PEM"), []byte("not PEM"))}, "ClientCertificate",
		},
	} {
		client, err := New("127.0.0.1:1", test.opts...)
		if err == nil {
			client.Close()
			t.Errorf("%s: New succeeded", name)
		} else if !strings.Contains(err.Error(), test.want) {
			t.Errorf("%s: New failed with %q, want it to say %q", name, err, test.want)
		}
	}
}

func TestNewRefusesATokenInTheClearWhereTLSWasChosen(t *testing.T) {
	// TLS chosen with this package's options, then plaintext with grpc's: the token must not go.
	client, err := New("127.0.0.1:1", TLS(nil), Token("secret"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil {
		client.Close()
		t.Fatal("New succeeded")
	}
	if !strings.Contains(err.Error(), "require transport level security") {
		t.Errorf("New failed with %q, want it to say the token requires transport security", err)
	}
	// Plaintext that this package chose (a loopback target, or Insecure) takes the token.
	for _, opts := range [][]grpc.DialOption{{Token("t")}, {Insecure(), Token("t")}} {
		client, err := New("127.0.0.1:1", opts...)
		if err != nil {
			t.Fatal(err)
		}
		client.Close()
	}
}
