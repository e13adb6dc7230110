package sessionstore_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	sessionstore "github.com/sessionstore/sessionstore/clients/go"
)

// unreachable is a client of an address where nothing listens (a port just freed).
func unreachable(t *testing.T, policy sessionstore.RetryPolicy) *sessionstore.Client {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close()
	client, err := sessionstore.New(address, sessionstore.WithRetry(policy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestMessagesThatAreNotJSONObjectsAreRefusedBeforeSending(t *testing.T) {
	// Nothing listens: a refusal with InvalidArgument can only be the client's.
	client := unreachable(t, sessionstore.RetryPolicy{MaxAttempts: 1})
	ctx := context.Background()
	for _, text := range []string{"not json", "[1]", `"text"`, "12", `{"a":1} {"b":2}`, `{"a":`, ""} {
		messages := []json.RawMessage{json.RawMessage(`{"ok":true}`), json.RawMessage(text)}
		if _, err := client.Append(ctx, "s", messages, sessionstore.ExpectedSeq(0)); codeOf(t, err) != codes.InvalidArgument {
			t.Errorf("Append of %q: %v, want InvalidArgument", text, err)
		}
	}
	appender, err := client.Appender(ctx, "s", sessionstore.ExpectedSeq(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appender.Append([]json.RawMessage{json.RawMessage("[]")}); codeOf(t, err) != codes.InvalidArgument {
		t.Errorf("Appender.Append of an array: %v, want InvalidArgument", err)
	}
	// Refused messages do not fail the appender: the next Append is sent (and finds no server).
	if _, err := appender.Append([]json.RawMessage{json.RawMessage(" \n{\"ok\":1}")}); codeOf(t, err) != codes.Unavailable {
		t.Errorf("Appender.Append of an object: %v, want Unavailable", err)
	}
}

func TestRetriesGiveUpAfterTheAttemptsThePolicyAllows(t *testing.T) {
	policy := sessionstore.RetryPolicy{MaxAttempts: 3, InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	client, ctx := unreachable(t, policy), context.Background()
	started := time.Now()
	_, _, err := client.Meta(ctx, "s")
	// Two waits: 100 ms and 200 ms, each at least 75 % of that.
	if codeOf(t, err) != codes.Unavailable || time.Since(started) < 225*time.Millisecond {
		t.Errorf("Meta = %v after %v; want Unavailable after two retries", err, time.Since(started))
	}
	started = time.Now()
	_, err = client.Append(ctx, "s", []json.RawMessage{json.RawMessage(`{}`)})
	if codeOf(t, err) != codes.Unavailable || time.Since(started) > 75*time.Millisecond {
		t.Errorf("Append without ExpectedSeq = %v after %v; want Unavailable at once", err, time.Since(started))
	}
	started = time.Now()
	appender, err := client.Appender(ctx, "s", sessionstore.ExpectedSeq(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = appender.Append([]json.RawMessage{json.RawMessage(`{}`)})
	if codeOf(t, err) != codes.Unavailable || time.Since(started) < 225*time.Millisecond {
		t.Errorf("Appender.Append = %v after %v; want Unavailable after two retries", err, time.Since(started))
	}
	if _, later := appender.Append([]json.RawMessage{json.RawMessage(`{}`)}); later != err {
		t.Errorf("a later Append: %v, want the failure %v", later, err)
	}
}

func TestRetriesStopWithTheContext(t *testing.T) {
	client := unreachable(t, sessionstore.RetryPolicy{MaxAttempts: 100, InitialDelay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, _, err := client.Meta(ctx, "s")
	if code := codeOf(t, err); (code != codes.Unavailable && code != codes.DeadlineExceeded) || time.Since(started) > time.Second {
		t.Errorf("Meta = %v after %v; want it to stop at the deadline", err, time.Since(started))
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	started = time.Now()
	for _, err := range client.Watch(ctx, "s", 0) {
		if codeOf(t, err) != codes.Canceled || time.Since(started) > time.Second {
			t.Errorf("Watch = %v after %v; want Canceled when cancelled", err, time.Since(started))
		}
		break
	}
}
