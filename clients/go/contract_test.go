package sessionstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	sessionstore "github.com/sessionstore/sessionstore/clients/go"
)

// codeOf is err's code, failing the test unless err is an *Error.
func codeOf(t *testing.T, err error) codes.Code {
	t.Helper()
	var e *sessionstore.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *sessionstore.Error, got %T %v", err, err)
	}
	return e.Code
}

func TestAMissingSessionIsAbsentNotAnError(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	if meta, ok, err := client.Meta(ctx, id); err != nil || ok {
		t.Errorf("Meta = %+v, %v, %v; want ok == false and no error", meta, ok, err)
	}
	if message, ok, err := client.PopLast(ctx, id); err != nil || ok {
		t.Errorf("PopLast = %+v, %v, %v; want ok == false and no error", message, ok, err)
	}
	if messages, err := client.Load(ctx, id); err != nil || len(messages) != 0 {
		t.Errorf("Load = %v, %v; want nothing", messages, err)
	}
	if existed, err := client.Delete(ctx, id); err != nil || existed {
		t.Errorf("Delete = %v, %v; want false", existed, err)
	}
	if flushed, err := client.Flush(ctx, id); err != nil || flushed != 0 {
		t.Errorf("Flush = %v, %v; want 0", flushed, err)
	}
	if _, err := client.Rewind(ctx, id, 0); codeOf(t, err) != codes.NotFound {
		t.Errorf("Rewind: %v, want NotFound", err)
	}
	// Flush needs an id: FlushAll is another call.
	if _, err := client.Flush(ctx, ""); codeOf(t, err) != codes.InvalidArgument {
		t.Errorf(`Flush(""): %v, want InvalidArgument`, err)
	}
	// The session exists once something is appended; Meta then says so.
	if _, err := client.Append(ctx, id, objects("m", 0, 2)); err != nil {
		t.Fatal(err)
	}
	if meta, ok, err := client.Meta(ctx, id); err != nil || !ok || meta.MessageCount != 2 {
		t.Errorf("Meta = %+v, %v, %v; want 2 messages", meta, ok, err)
	}
}

func TestFlushAllReportsTheSessionsItCouldNotFlush(t *testing.T) {
	client, ctx, dataDir := connect(t), context.Background(), need(t, "SESSIONSTORE_DATA_DIR")
	rotted, healthy := sessionID(t)+"-rotted", sessionID(t)+"-healthy"
	for _, id := range []string{rotted, healthy} {
		if _, err := client.Append(ctx, id, objects("r", 0, 3), sessionstore.Sync()); err != nil {
			t.Fatal(err)
		}
	}
	// A record replaced by one of the same length that is not it: the session is damaged.
	path := filepath.Join(dataDir, rotted+".jsonl")
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Replace(original, []byte(`{"r":1}`), []byte(`{"XXX"}`), 1)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(path, original, 0o600)
		client.Delete(ctx, rotted)
	})
	if _, err := client.Load(ctx, rotted); codeOf(t, err) != codes.DataLoss {
		t.Fatalf("Load of the damaged session: %v, want DataLoss", err)
	}
	if _, err := client.Append(ctx, healthy, objects("r", 3, 1)); err != nil {
		t.Fatal(err)
	}
	result, err := client.FlushAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Failures) != 1 || result.Failures[0].SessionID != rotted ||
		result.Failures[0].Error.Code != codes.DataLoss || result.Failures[0].Error.Message == "" {
		t.Errorf("FlushAll failures = %+v; want the damaged session, with DataLoss and a message", result.Failures)
	}
	if result.Flushed < 1 {
		t.Errorf("FlushAll flushed %d messages; want the healthy session's", result.Flushed)
	}
	if meta, _, err := client.Meta(ctx, healthy); err != nil || meta.DurableCount != 4 {
		t.Errorf("the healthy session: %+v, %v; want 4 durable messages", meta, err)
	}
}

func TestErrorsOfTheClientItselfAreErrors(t *testing.T) {
	ctx, id := context.Background(), sessionID(t)
	failing := sessionstore.TokenFunc(func(context.Context) (string, error) {
		return "", errors.New("no token today")
	})
	if _, _, err := connect(t, failing).Meta(ctx, id); codeOf(t, err) != codes.Unauthenticated {
		t.Errorf("Meta with a failing token function: %v, want Unauthenticated", err)
	}
	client := connect(t)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := client.Meta(canceled, id); codeOf(t, err) != codes.Canceled {
		t.Errorf("Meta with a cancelled context: %v, want Canceled", err)
	}
	for _, err := range client.Watch(canceled, id, 0) {
		if codeOf(t, err) != codes.Canceled {
			t.Errorf("Watch with a cancelled context: %v, want Canceled", err)
		}
		break
	}
	expiring, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	for _, err := range client.Watch(expiring, id, 0) {
		if codeOf(t, err) != codes.DeadlineExceeded {
			t.Errorf("Watch past its deadline: %v, want DeadlineExceeded", err)
		}
		break
	}
	appender, err := client.Appender(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appender.Append(objects("a", 0, 1)); err != nil {
		t.Fatal(err)
	}
	if err := appender.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := appender.Append(objects("a", 1, 1)); codeOf(t, err) != codes.FailedPrecondition {
		t.Errorf("Append after Close: %v, want FailedPrecondition", err)
	}
}

func TestAppenderMovesAfterAnotherWriter(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	appender, err := client.Appender(ctx, id, sessionstore.Labels(map[string]string{"user": "alice"}))
	if err != nil {
		t.Fatal(err)
	}
	defer appender.Close()
	mine := objects("mine", 0, 3)
	if ack, err := appender.Append(mine[:1]); err != nil || ack.FirstSeq != 0 {
		t.Fatalf("first Append = %+v, %v", ack, err)
	}
	theirs := objects("theirs", 0, 2)
	if _, err := client.Append(ctx, id, theirs); err != nil {
		t.Fatal(err)
	}
	// The appender claimed seq 1; the other writer took 1 and 2: its messages go after theirs.
	ack, err := appender.Append(mine[1:])
	if err != nil || ack.FirstSeq != 3 || ack.NextSeq != 5 || appender.NextSeq() != 5 {
		t.Fatalf("Append after another writer = %+v, %v (next %d); want seqs 3-4", ack, err, appender.NextSeq())
	}
	stored, err := client.Load(ctx, id)
	want := rawTexts(slices.Concat(mine[:1], theirs, mine[1:]))
	if err != nil || !slices.Equal(texts(stored), want) {
		t.Errorf("stored %v, %v; want %v", texts(stored), err, want)
	}
	// The labels went with the request at seq 0, which created the session.
	if meta, _, err := client.Meta(ctx, id); err != nil || meta.Labels["user"] != "alice" {
		t.Errorf("labels %v, %v; want user=alice", meta.Labels, err)
	}
}

func TestAStrictAppenderFailsWithAborted(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	if _, err := client.Append(ctx, id, objects("other", 0, 1)); err != nil {
		t.Fatal(err)
	}
	appender, err := client.Appender(ctx, id, sessionstore.ExpectedSeq(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = appender.Append(objects("mine", 0, 1))
	var e *sessionstore.Error
	if !errors.As(err, &e) || e.Code != codes.Aborted {
		t.Fatalf("Append of a strict appender behind the session: %v, want Aborted", err)
	}
	if length, ok := e.ActualLength(); !ok || length != 1 {
		t.Errorf("ActualLength() = %d, %v; want 1", length, ok)
	}
	// The appender has failed: every later call says so.
	if _, later := appender.Append(objects("mine", 1, 1)); later != err {
		t.Errorf("a later Append: %v, want the failure %v", later, err)
	}
	if closed := appender.Close(); closed != err {
		t.Errorf("Close: %v, want the failure %v", closed, err)
	}
	if stored, _ := client.Load(ctx, id); len(stored) != 1 {
		t.Errorf("stored %v; want only the other writer's message", texts(stored))
	}
}

func TestSyncAppenderAcknowledgesDurableMessages(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	appender, err := client.Appender(ctx, id, sessionstore.Sync())
	if err != nil {
		t.Fatal(err)
	}
	defer appender.Close()
	for i := range 3 {
		ack, err := appender.Append(objects("s", i, 1))
		if err != nil || ack.FirstSeq != uint64(i) || ack.DurableCount < ack.NextSeq {
			t.Fatalf("Append %d = %+v, %v; want it durable", i, ack, err)
		}
	}
}

func TestLoadAndWatchAnswerEachMessageOnce(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	stored := objects("w", 0, 5)
	if _, err := client.Append(ctx, id, stored); err != nil {
		t.Fatal(err)
	}
	if last, err := client.Last(ctx, id, 2); err != nil || !slices.Equal(texts(last), rawTexts(stored[3:])) {
		t.Errorf("Last(2) = %v, %v", texts(last), err)
	}
	// Room for two messages of 7 bytes, not three: the newest two.
	window, err := client.LoadWindow(ctx, id, sessionstore.MaxBytes(20))
	if err != nil || len(window.Messages) != 2 || window.Messages[0].Seq != 3 {
		t.Errorf("LoadWindow(MaxBytes 20) = %+v, %v", window, err)
	}
	// Watch goes on from a rewound seq; WatchEvents says so.
	var events []string
	for event, err := range client.WatchEvents(ctx, id, 3) {
		if err != nil {
			t.Fatal(err)
		}
		if event.Rewound {
			events = append(events, "rewound")
			break
		}
		events = append(events, string(event.JSON))
		if event.Seq == 4 {
			if _, err := client.Rewind(ctx, id, 4); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{string(stored[3]), string(stored[4]), "rewound"}; !slices.Equal(events, want) {
		t.Errorf("WatchEvents = %v, want %v", events, want)
	}
}
