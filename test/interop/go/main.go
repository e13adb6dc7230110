// The interop scenario's Go side (test/interop/polyglot.test.ts runs it); the same commands and
// the same tour report as test/interop/python/scenario.py.
//
//	interop ADDRESS append SESSION   appends stdin's lines (one message each, raw) in one request;
//	                                 prints the ack
//	interop ADDRESS load SESSION     prints the session's messages, one per line, raw
//	interop ADDRESS tour PREFIX      uses every call of the client; prints a JSON report
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	sessionstore "sessionstore/clients/go"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: interop ADDRESS append|load|tour NAME")
	}
	address, command, name := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := sessionstore.New(address)
	check(err)
	defer client.Close()

	switch command {
	case "append":
		input, err := io.ReadAll(os.Stdin)
		check(err)
		var messages []json.RawMessage
		for _, line := range bytes.SplitAfter(input, []byte("\n")) {
			if line = bytes.TrimSuffix(line, []byte("\n")); len(line) > 0 {
				messages = append(messages, line)
			}
		}
		ack, err := client.Append(ctx, name, messages)
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
	default:
		log.Fatalf("unknown command %q", command)
	}
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

	appender := must(client.NewAppender(ctx))
	report["appender"] = []sessionstore.Ack{
		must(appender.Append(session, must(sessionstore.Marshal(n{3})))),
		must(appender.Append(other, []json.RawMessage{json.RawMessage(`{"other":true}`)})),
		must(appender.Append(session, must(sessionstore.Marshal(n{4}, n{5})), sessionstore.ExpectedSeq(3))),
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
	_, badMeta := client.Meta(ctx, "has space")
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
	before := must(client.Meta(ctx, session))
	report["count_before_flush"] = []uint64{before.MessageCount, before.DurableCount}
	report["flushed"] = must(client.Flush(ctx, session))
	meta := must(client.Meta(ctx, session))
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
	_, afterMeta := client.Meta(ctx, session)
	report["after_delete"] = []any{sessionstore.CodeOf(afterMeta), texts(must(client.Load(ctx, session)))}
	must(client.Delete(ctx, other))
	return report
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
