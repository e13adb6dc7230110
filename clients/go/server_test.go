package sessionstore_test

// What the tests of this package that need the real server share. test/interop/go-client.test.ts
// runs `go test ./...` with:
//
//	SESSIONSTORE_ADDRESS   the server's address (tests that need a server skip without it)
//	SESSIONSTORE_CONTROL   an HTTP endpoint that stops (POST /stop) and starts again (POST /start)
//	                       that server, on the same address and data
//	SESSIONSTORE_DATA_DIR  the server's data directory

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"

	sessionstore "github.com/sessionstore/sessionstore/clients/go"
)

func need(t *testing.T, variable string) string {
	t.Helper()
	value := os.Getenv(variable)
	if value == "" {
		t.Skipf("%s is not set: test/interop/go-client.test.ts runs this test against the real server", variable)
	}
	return value
}

// fast retries, so that a restart costs the tests little time; 30 attempts outlast it.
var fast = sessionstore.WithRetry(sessionstore.RetryPolicy{
	MaxAttempts: 30, InitialDelay: 20 * time.Millisecond, MaxDelay: 300 * time.Millisecond,
})

// connect is a client of the test server, closed after the test.
func connect(t *testing.T, opts ...grpc.DialOption) *sessionstore.Client {
	t.Helper()
	address := need(t, "SESSIONSTORE_ADDRESS")
	client, err := sessionstore.New(address, append([]grpc.DialOption{fast}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

var notInAnID = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// sessionID is a session id of the test's own, new at every run.
func sessionID(t *testing.T) string {
	return notInAnID.ReplaceAllString(t.Name(), "-") + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// objects are n messages {"<prefix>":i}, i from first.
func objects(prefix string, first, n int) []json.RawMessage {
	messages := make([]json.RawMessage, n)
	for i := range messages {
		messages[i] = json.RawMessage(fmt.Sprintf(`{"%s":%d}`, prefix, first+i))
	}
	return messages
}

// texts is the JSON text of each message.
func texts(messages []sessionstore.Message) []string {
	out := make([]string, len(messages))
	for i, m := range messages {
		out[i] = string(m.JSON)
	}
	return out
}

func rawTexts(messages []json.RawMessage) []string {
	out := make([]string, len(messages))
	for i, m := range messages {
		out[i] = string(m)
	}
	return out
}

// control asks the test's server controller to stop or start the server; it returns once done.
func control(endpoint, action string) error {
	response, err := http.Post(endpoint+"/"+action, "text/plain", nil)
	if err != nil {
		return err
	}
	response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", action, response.Status)
	}
	return nil
}

// restartAfter stops the server at once and starts it again after down, in the background; the
// test waits until it is back before it ends.
func restartAfter(t *testing.T, down time.Duration) {
	t.Helper()
	endpoint := need(t, "SESSIONSTORE_CONTROL")
	if err := control(endpoint, "stop"); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(down)
		if err := control(endpoint, "start"); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { <-started })
}
