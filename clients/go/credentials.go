package sessionstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Option is one of this package's client options: TLS, RootCAs, ClientCertificate, Insecure,
// Token, TokenFunc and WithRetry. It is a grpc.DialOption, so that [New] takes these among grpc's own
// options; New applies them itself, and grpc ignores them.
type Option struct {
	grpc.EmptyDialOption
	apply func(*connection) error
}

// connection is what the Options given to New chose.
type connection struct {
	insecure    bool
	tls         bool // a TLS option was given
	config      *tls.Config
	rootCAs     *x509.CertPool
	certificate *tls.Certificate
	token       func(context.Context) (string, error)
	retry       RetryPolicy
}

// TLS connects over TLS with config (cloned; nil: the defaults, trusting the system's CAs).
// RootCAs and ClientCertificate, if given too, replace its RootCAs and Certificates. Use it for
// what they do not cover, e.g. a GetClientCertificate that reads a rotated certificate.
func TLS(config *tls.Config) Option {
	return Option{apply: func(c *connection) error {
		c.tls = true
		c.config = config.Clone()
		return nil
	}}
}

// RootCAs connects over TLS, verifying the server's certificate with the CA certificates in pem
// (PEM) instead of the system's.
func RootCAs(pem []byte) Option {
	return Option{apply: func(c *connection) error {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("sessionstore: RootCAs: no PEM certificate found")
		}
		c.tls = true
		c.rootCAs = pool
		return nil
	}}
}

// ClientCertificate connects over TLS, presenting the certificate chain certPEM with its private
// key keyPEM (both PEM) to a server that asks for one (mTLS). With --auth mtls, the certificate
// names the caller's tenant.
func ClientCertificate(certPEM, keyPEM []byte) Option {
	return Option{apply: func(c *connection) error {
		certificate, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("sessionstore: ClientCertificate: %w", err)
		}
		c.tls = true
		c.certificate = &certificate
		return nil
	}}
}

// Insecure connects in plaintext whatever the target: for a server reached through something
// that secures the connection itself, such as a service mesh's sidecar. A token is sent over it.
// Without it, plaintext is only the default for a loopback target.
func Insecure() Option {
	return Option{apply: func(c *connection) error {
		c.insecure = true
		return nil
	}}
}

// Token sends token as "authorization: Bearer <token>" on every call, e.g. a JWT for a server
// with --auth jwt.
func Token(token string) Option {
	return TokenFunc(func(context.Context) (string, error) { return token, nil })
}

// TokenFunc sends the token that token returns as "authorization: Bearer <token>" on every call.
// It is called before every call, each stream included (a Watch or an Appender opened again asks
// again), with the call's context, so it can return a refreshed token before the old one
// expires; it may be called from several goroutines at once. If it fails, so does the call, with
// codes.Unauthenticated.
func TokenFunc(token func(ctx context.Context) (string, error)) Option {
	return Option{apply: func(c *connection) error {
		c.token = token
		return nil
	}}
}

// dialOptions are the grpc.DialOptions that the connection options given stand for: transport
// credentials (plaintext for a loopback target, TLS otherwise, unless told), then the token.
func (c *connection) dialOptions(target string) ([]grpc.DialOption, error) {
	if c.insecure && c.tls {
		return nil, errors.New("sessionstore: Insecure cannot go with TLS, RootCAs or ClientCertificate")
	}
	plaintext := c.insecure || (!c.tls && isLoopback(target))
	transport := insecure.NewCredentials()
	if !plaintext {
		config := c.config
		if config == nil {
			config = &tls.Config{}
		}
		if c.rootCAs != nil {
			config.RootCAs = c.rootCAs
		}
		if c.certificate != nil {
			config.Certificates = []tls.Certificate{*c.certificate}
		}
		transport = credentials.NewTLS(config)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if c.token != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{token: c.token, plaintext: plaintext}))
	}
	return opts, nil
}

// bearerToken is the token of Token and TokenFunc as grpc per-RPC credentials.
type bearerToken struct {
	token func(context.Context) (string, error)
	// plaintext: this package chose plaintext (a loopback target, or Insecure), so the token may
	// go over it.
	plaintext bool
}

func (b bearerToken) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	token, err := b.token(ctx)
	if err != nil {
		// A status of its own: grpc would make any other error Unavailable, which is retried.
		return nil, status.Errorf(codes.Unauthenticated, "the token function failed: %v", err)
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

// RequireTransportSecurity is true unless this package chose plaintext (a loopback target, or
// Insecure): if a grpc.WithTransportCredentials of the caller's own makes the connection
// plaintext, New then fails rather than let the token leave in the clear.
func (b bearerToken) RequireTransportSecurity() bool { return !b.plaintext }

// isLoopback reports whether a gRPC target names this machine (localhost, 127.0.0.0/8, ::1, a unix
// socket): plaintext is then the default, as nothing leaves the machine.
func isLoopback(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	// Without its scheme: dns:///host:port, dns://resolver/host:port, passthrough:///host:port.
	for _, scheme := range []string{"dns:", "passthrough:"} {
		if rest, ok := strings.CutPrefix(target, scheme+"//"); ok {
			_, target, _ = strings.Cut(rest, "/")
		}
	}
	host := target
	if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
