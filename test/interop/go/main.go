// The interop scenario's Go side (test/interop/polyglot.test.ts and client-security.test.ts run
// it); the same commands, options and reports as test/interop/python/scenario.py.
//
//	interop ADDRESS append SESSION   appends stdin's lines (one message each, raw) in one request;
//	                                 prints the ack
//	interop ADDRESS load SESSION     prints the session's messages, one per line, raw
//	interop ADDRESS tour PREFIX      uses every call of the client; prints a JSON report
//	interop ADDRESS agent PREFIX     with a conversation on stdin (one message a line, at least
//	                                 6), uses every call of labels, listing by selector and update
//	                                 time, context windows, fork, watch events, rewind, PopLast
//	                                 and trim, the error cases included; prints a JSON report
//	interop ADDRESS calls SESSION    appends to the session, then gets its meta, loads and watches
//	                                 it, each a call of its own; prints what each returned or its
//	                                 status code, and how many times the token function was asked
//	                                 (null without one)
//
// Before ADDRESS: --ca FILE (the CA to trust: TLS), --cert FILE --key FILE (a client certificate:
// mTLS), --tokens FILE (tokens, one a line: a single one is passed as the fixed token; several are
// handed out in turn by a token function, the last one again once all are used).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	sessionstore "github.com/sessionstore/sessionstore/clients/go"
)

func main() {
	ca := flag.String("ca", "", "the CA to trust (PEM file): TLS")
	cert := flag.String("cert", "", "a client certificate (PEM file), with -key: mTLS")
	key := flag.String("key", "", "the client certificate's key (PEM file)")
	tokensFile := flag.String("tokens", "", "tokens, one a line")
	flag.Parse()
	if flag.NArg() != 3 {
		log.Fatal("usage: interop [-ca FILE] [-cert FILE -key FILE] [-tokens FILE] ADDRESS append|load|tour|calls NAME")
	}
	address, command, name := flag.Arg(0), flag.Arg(1), flag.Arg(2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	options := []grpc.DialOption{
		// What the security tests have refused (a CA not trusted, no client certificate) comes
		// back Unavailable, which the client retries: a few quick attempts keep the refusals quick.
		sessionstore.WithRetry(sessionstore.RetryPolicy{
			MaxAttempts: 3, InitialDelay: 50 * time.Millisecond, MaxDelay: 200 * time.Millisecond,
		}),
	}
	if *ca != "" {
		options = append(options, sessionstore.RootCAs(must(os.ReadFile(*ca))))
	}
	if *cert != "" {
		options = append(options, sessionstore.ClientCertificate(must(os.ReadFile(*cert)), must(os.ReadFile(*key))))
	}
	var tokens *tokenList
	if *tokensFile != "" {
		list := strings.Fields(string(must(os.ReadFile(*tokensFile))))
		if len(list) == 1 {
			options = append(options, sessionstore.Token(list[0]))
		} else {
			tokens = &tokenList{tokens: list}
			options = append(options, sessionstore.TokenFunc(tokens.next))
		}
	}
	client, err := sessionstore.New(address, options...)
	check(err)
	defer client.Close()

	switch command {
	case "append":
		ack, err := client.Append(ctx, name, stdinMessages())
		check(err)
		printJSON(ack)
	case "load":
		messages, err := client.Load(ctx, name)
		check(err)
		out := bufio.NewWriter(os.Stdout)
		for _, m := range messages {
			out.Write(m.JSON)
			out.WriteByte('\n')
		}
		check(out.Flush())
	case "tour":
		printJSON(tour(ctx, client, name))
	case "agent":
		printJSON(agent(ctx, client, name, stdinMessages()))
	case "calls":
		report := calls(ctx, client, name)
		report["token_calls"] = nil
		if tokens != nil {
			report["token_calls"] = tokens.asked
		}
		printJSON(report)
	default:
		log.Fatalf("unknown command %q", command)
	}
}

// stdinMessages is stdin's lines, one message each.
func stdinMessages() []json.RawMessage {
	input, err := io.ReadAll(os.Stdin)
	check(err)
	var messages []json.RawMessage
	for _, line := range bytes.SplitAfter(input, []byte("\n")) {
		if line = bytes.TrimSuffix(line, []byte("\n")); len(line) > 0 {
			messages = append(messages, line)
		}
	}
	return messages
}

// tokenList is a token function handing out its tokens in turn, counting how often it is asked.
type tokenList struct {
	mu     sync.Mutex
	tokens []string
	asked  int
}

func (l *tokenList) next(context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	token := l.tokens[min(l.asked, len(l.tokens)-1)]
	l.asked++
	return token, nil
}

// calls makes one call of each kind, each asking for the token again: what each returned, or its
// status code.
func calls(ctx context.Context, client *sessionstore.Client, session string) map[string]any {
	report := map[string]any{}
	orCode := func(value any, err error) any {
		if err != nil {
			return sessionstore.CodeOf(err)
		}
		return value
	}
	ack, err := client.Append(ctx, session, must(sessionstore.Marshal(n{0})))
	report["append"] = orCode(ack.FirstSeq, err)
	meta, _, err := client.Meta(ctx, session)
	report["meta"] = orCode(meta.MessageCount, err)
	messages, err := client.Load(ctx, session)
	report["load"] = orCode(texts(messages), err)
	for m, err := range client.Watch(ctx, session, 0) {
		report["watch"] = orCode([]any{m.Seq, string(m.JSON)}, err)
		break
	}
	return report
}

// turn is a message as a Go struct: fields encode in declaration order.
type turn struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	N       int    `json:"n"`
}

type n struct {
	N any `json:"n"`
}

func tour(ctx context.Context, client *sessionstore.Client, prefix string) map[string]any {
	session := prefix + "-tour"
	other := session + "-other"
	report := map[string]any{}

	// Messages go in as Go values (Marshal) or as raw JSON text.
	first := must(sessionstore.Marshal(turn{Role: "user", Content: "héllo", N: 1}))
	first = append(first, json.RawMessage(`{"role":"assistant","content":"hi","big":12345678901234567890}`))
	report["append"] = must(client.Append(ctx, session, first))

	// An appender to one session, starting at seq 2 (strict), one request per append.
	appender := must(client.Appender(ctx, session, sessionstore.ExpectedSeq(2)))
	report["appender"] = []sessionstore.Ack{
		must(appender.Append(must(sessionstore.Marshal(n{3})))),
		must(client.Append(ctx, other, []json.RawMessage{json.RawMessage(`{"other":true}`)})),
		must(appender.Append(must(sessionstore.Marshal(n{4}, n{5})))),
	}
	check(appender.Close())
	// The same request again is a retry: nothing is stored twice, the ack is the original's.
	report["retry"] = must(client.Append(ctx, session, must(sessionstore.Marshal(n{4}, n{5})), sessionstore.ExpectedSeq(3)))
	_, err := client.Append(ctx, session, must(sessionstore.Marshal(n{"late"})), sessionstore.ExpectedSeq(2))
	var conflict *sessionstore.Error
	if errors.As(err, &conflict) {
		length, _ := conflict.ActualLength()
		report["conflict"] = map[string]any{"code": conflict.Code, "actual_length": length}
	} else {
		report["conflict"] = fmt.Sprint(err)
	}
	_, badID := client.Append(ctx, "../escape", must(sessionstore.Marshal(n{0})))
	_, _, badMeta := client.Meta(ctx, "has space")
	_, notJSON := client.Append(ctx, session, []json.RawMessage{json.RawMessage("not json")})
	report["invalid"] = []any{sessionstore.CodeOf(badID), sessionstore.CodeOf(badMeta), sessionstore.CodeOf(notJSON)}

	report["load"] = texts(must(client.Load(ctx, session)))
	var decoded struct{ Big json.Number }
	messages := must(client.Load(ctx, session))
	decoder := json.NewDecoder(bytes.NewReader(messages[1].JSON))
	decoder.UseNumber()
	check(decoder.Decode(&decoded))
	report["big"] = decoded.Big.String()
	report["last"] = texts(must(client.Last(ctx, session, 2)))
	report["range"] = texts(must(client.Load(ctx, session, sessionstore.FromSeq(1), sessionstore.Limit(2))))
	before := existing(client.Meta(ctx, session))
	report["count_before_flush"] = []uint64{before.MessageCount, before.DurableCount}
	report["flushed"] = must(client.Flush(ctx, session))
	meta := existing(client.Meta(ctx, session))
	report["meta"] = []any{meta.SessionID, meta.MessageCount, meta.DurableCount}
	var ids []string
	for meta, err := range client.List(ctx, prefix, sessionstore.PageSize(1)) {
		check(err)
		ids = append(ids, meta.SessionID)
	}
	report["list"] = ids

	// Watch from seq 3: the backlog (3, 4), then a message appended while watching (5); then the
	// session's deletion ends the watch with NOT_FOUND.
	watched := [][]any{}
	var deleted []bool
	for m, err := range client.Watch(ctx, session, 3) {
		if err != nil {
			report["watch_end"] = sessionstore.CodeOf(err)
			break
		}
		watched = append(watched, []any{m.Seq, string(m.JSON)})
		switch m.Seq {
		case 4:
			must(client.Append(ctx, session, must(sessionstore.Marshal(n{6}))))
		case 5:
			deleted = append(deleted, must(client.Delete(ctx, session)))
		}
	}
	report["watch"] = watched
	report["deleted"] = append(deleted, must(client.Delete(ctx, session)))
	// The report (shared with the Python program) says NOT_FOUND for a session that is gone: Meta
	// answers ok == false for it.
	var gone any = codes.NotFound
	if _, ok := must2(client.Meta(ctx, session)); ok {
		gone = "still there"
	}
	report["after_delete"] = []any{gone, texts(must(client.Load(ctx, session)))}
	must(client.Delete(ctx, other))
	return report
}

// errorOf is the error a call failed with: its code and what the server reported with it.
func errorOf(err error) map[string]any {
	var e *sessionstore.Error
	if !errors.As(err, &e) {
		log.Fatalf("expected a sessionstore error, got %v", err)
	}
	reported := func(value uint64, ok bool) any {
		if !ok {
			return nil
		}
		return value
	}
	return map[string]any{
		"code":                   e.Code,
		"actual_length":          reported(e.ActualLength()),
		"actual_labels_revision": reported(e.ActualLabelsRevision()),
		"first_seq":              reported(e.FirstSeq()),
	}
}

func agent(ctx context.Context, client *sessionstore.Client, prefix string, conversation []json.RawMessage) map[string]any {
	session := prefix + "-agent"
	other := session + "-other"
	fork := session + "-fork"
	report := map[string]any{}

	must(client.Append(ctx, session, conversation, sessionstore.Labels(map[string]string{"user": "alice"})))
	time.Sleep(10 * time.Millisecond) // so that the other session is the most recently appended to, by the clock
	must(client.Append(ctx, other, must(sessionstore.Marshal(n{0})), sessionstore.Labels(map[string]string{"user": "bob"})))
	meta := existing(client.Meta(ctx, session))
	report["created"] = []any{meta.Labels, meta.LabelsRevision}
	meta = must(client.SetLabels(ctx, session, map[string]string{"env": "dev"}, sessionstore.ExpectedLabelsRevision(1)))
	report["set_labels"] = []any{meta.Labels, meta.LabelsRevision}
	_, err := client.SetLabels(ctx, session, map[string]string{"env": ""}, sessionstore.ExpectedLabelsRevision(1))
	report["set_labels_stale"] = errorOf(err)
	_, err = client.SetLabels(ctx, prefix+"-none", map[string]string{"a": "b"})
	report["set_labels_unknown"] = errorOf(err)

	ids := func(opts ...sessionstore.ListOption) []string {
		var found []string
		for meta, err := range client.List(ctx, prefix, append(opts, sessionstore.PageSize(1))...) {
			check(err)
			found = append(found, meta.SessionID)
		}
		return found
	}
	report["list_selected"] = ids(sessionstore.LabelSelector("user=alice"))
	report["list_updated"] = ids(sessionstore.OrderBy(sessionstore.ByUpdatedDesc))

	window := must(client.LoadWindow(ctx, session, sessionstore.Limit(5), sessionstore.WholeTurns()))
	report["window"] = []any{firstSeq(window.Messages), texts(window.Messages), orEmpty(window.DanglingCallIDs)}
	// Room for the last two messages, not three.
	lastTwo := len(conversation[len(conversation)-1]) + len(conversation[len(conversation)-2])
	window = must(client.LoadWindow(ctx, session, sessionstore.MaxBytes(uint64(lastTwo+1))))
	report["window_bytes"] = []any{firstSeq(window.Messages), len(window.Messages), orEmpty(window.DanglingCallIDs)}
	window = must(client.LoadWindow(ctx, session, sessionstore.MaxBytes(10), sessionstore.WholeTurns())) // no message fits
	report["window_empty"] = []any{firstSeq(window.Messages), texts(window.Messages), orEmpty(window.DanglingCallIDs)}

	meta = must(client.Fork(ctx, session, 4, fork, map[string]string{"branch": "b"}))
	report["fork"] = []any{meta.ParentSessionID, meta.ParentSeq, meta.MessageCount, meta.Labels}
	_, err = client.Fork(ctx, session, 1, fork, nil)
	report["fork_exists"] = errorOf(err)
	_, err = client.Fork(ctx, session, 99, prefix+"-none", nil)
	report["fork_past_end"] = errorOf(err)

	// Watch the fork: its 4 messages, a rewind to 2 (told), then a message appended at seq 2.
	events := [][]any{}
	for event, err := range client.WatchEvents(ctx, fork, 0) {
		check(err)
		if event.Rewound {
			events = append(events, []any{"rewound", event.Seq})
			must(client.Append(ctx, fork, []json.RawMessage{json.RawMessage(`{"after":"rewind"}`)}))
			continue
		}
		events = append(events, []any{"message", event.Seq, string(event.JSON)})
		if event.Seq == 3 && len(events) == 4 {
			must(client.Rewind(ctx, fork, 2))
		}
		if len(events) == 6 {
			break
		}
	}
	report["watch_events"] = events

	length := uint64(len(conversation))
	rewound := must(client.Rewind(ctx, session, length-1, sessionstore.RewindExpectedSeq(length)))
	report["rewind"] = []any{texts(rewound.Dropped), rewound.Meta.MessageCount}
	_, err = client.Rewind(ctx, session, 1, sessionstore.RewindExpectedSeq(length))
	report["rewind_stale"] = errorOf(err)
	popped, ok, err := client.PopLast(ctx, session)
	check(err)
	if !ok {
		log.Fatal("PopLast found nothing")
	}
	report["pop_item"] = popped.JSON
	trimmed := must(client.Trim(ctx, session, 2))
	report["trim"] = []any{trimmed.Count, trimmed.Meta.FirstSeq, trimmed.Meta.MessageCount}
	_, err = client.Load(ctx, session, sessionstore.FromSeq(1))
	report["load_trimmed"] = errorOf(err)
	report["load_kept"] = len(must(client.Load(ctx, session)))
	for _, name := range []string{session, other, fork} {
		must(client.Delete(ctx, name))
	}
	return report
}

// orEmpty is ids, or an empty list for none (JSON [] rather than null, as Python prints it).
func orEmpty(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// firstSeq is the seq of the first message, or nil for none (as Python's Window.first_seq).
func firstSeq(messages []sessionstore.Message) any {
	if len(messages) == 0 {
		return nil
	}
	return messages[0].Seq
}

func texts(messages []sessionstore.Message) []string {
	out := make([]string, len(messages))
	for i, m := range messages {
		out[i] = string(m.JSON)
	}
	return out
}

func must[T any](value T, err error) T {
	check(err)
	return value
}

func must2[T, U any](t T, u U, err error) (T, U) {
	check(err)
	return t, u
}

// existing is the meta of a session that must exist.
func existing(meta sessionstore.SessionMeta, ok bool, err error) sessionstore.SessionMeta {
	check(err)
	if !ok {
		log.Fatal("the session does not exist")
	}
	return meta
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func printJSON(value any) {
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	check(encoder.Encode(value))
}
