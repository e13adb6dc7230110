package sessionstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	sessionstore "github.com/sessionstore/sessionstore/clients/go"
)

func TestCallsSafeToRepeatAreRetriedUntilTheServerIsBack(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	if _, err := client.Append(ctx, id, objects("m", 0, 3)); err != nil {
		t.Fatal(err)
	}
	restartAfter(t, 700*time.Millisecond)
	// While it is down: calls a retry of which could answer differently fail at once.
	if _, err := client.Append(ctx, id, objects("m", 3, 1)); codeOf(t, err) != codes.Unavailable {
		t.Errorf("Append without ExpectedSeq while the server is down: %v, want Unavailable", err)
	}
	if _, err := client.Fork(ctx, id, 1, id+"-fork", nil); codeOf(t, err) != codes.Unavailable {
		t.Errorf("Fork while the server is down: %v, want Unavailable", err)
	}
	// The others wait for it.
	if meta, ok, err := client.Meta(ctx, id); err != nil || !ok || meta.MessageCount != 3 {
		t.Fatalf("Meta across the restart = %+v, %v, %v", meta, ok, err)
	}
	restartAfter(t, 500*time.Millisecond)
	if ack, err := client.Append(ctx, id, objects("m", 3, 2), sessionstore.ExpectedSeq(3)); err != nil || ack.NextSeq != 5 {
		t.Fatalf("Append with ExpectedSeq across a restart = %+v, %v", ack, err)
	}
	restartAfter(t, 500*time.Millisecond)
	if stored, err := client.Load(ctx, id); err != nil || !slices.Equal(texts(stored), rawTexts(objects("m", 0, 5))) {
		t.Fatalf("Load across a restart = %v, %v", texts(stored), err)
	}
	restartAfter(t, 500*time.Millisecond)
	var listed []string
	for meta, err := range client.List(ctx, id) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, meta.SessionID)
	}
	if !slices.Equal(listed, []string{id}) {
		t.Errorf("List across a restart = %v", listed)
	}
	restartAfter(t, 500*time.Millisecond)
	if _, err := client.FlushAll(ctx); err != nil {
		t.Errorf("FlushAll across a restart: %v", err)
	}
}

func TestAppenderAcrossARestartStoresEachMessageOnce(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	appender, err := client.Appender(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	messages := objects("a", 0, n)
	acked := make(chan uint64, n)
	done := make(chan error, 1)
	go func() {
		defer close(acked)
		for i := range n {
			ack, err := appender.Append(messages[i : i+1])
			if err != nil {
				done <- err
				return
			}
			acked <- ack.FirstSeq
		}
		done <- appender.Close()
	}()
	var seqs []uint64
	for seq := range acked {
		seqs = append(seqs, seq)
		if len(seqs) == 100 {
			restartAfter(t, 500*time.Millisecond)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the appender failed after %d acks: %v", len(seqs), err)
	}
	for i, seq := range seqs {
		if seq != uint64(i) {
			t.Fatalf("ack %d has seq %d", i, seq)
		}
	}
	stored, err := client.Load(ctx, id)
	if err != nil || !slices.Equal(texts(stored), rawTexts(messages)) {
		t.Fatalf("stored %d messages, %v; want the %d appended, each once, in order", len(stored), err, n)
	}
}

func TestWatchAcrossARestartYieldsEachMessageOnce(t *testing.T) {
	client, ctx, id := connect(t), context.Background(), sessionID(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	const n = 40
	messages := objects("w", 0, n)
	if _, err := client.Append(ctx, id, messages[:n/2]); err != nil {
		t.Fatal(err)
	}
	var watched []sessionstore.Message
	for message, err := range client.Watch(ctx, id, 0) {
		if err != nil {
			t.Fatalf("Watch ended after %d messages: %v", len(watched), err)
		}
		watched = append(watched, message)
		if len(watched) == n/2 {
			// The server goes away while the watch waits; the rest comes after it is back.
			restartAfter(t, 500*time.Millisecond)
			go func() {
				if _, err := client.Append(ctx, id, messages[n/2:], sessionstore.ExpectedSeq(n/2)); err != nil {
					t.Error(err)
				}
			}()
		}
		if len(watched) == n {
			break
		}
	}
	for i, message := range watched {
		if message.Seq != uint64(i) || string(message.JSON) != string(messages[i]) {
			t.Fatalf("message %d: seq %d %s", i, message.Seq, message.JSON)
		}
	}
}
