// An example agent: it resumes its session from sessionstore, takes a turn (a stand-in for an LLM
// call) and records the turn with optimistic concurrency, so that two copies of the agent on one
// session never interleave their turns.
//
//	go run ./examples/agent -session demo "What is the capital of France?"
//
// The server is -address, else $SESSIONSTORE_ADDRESS, else 127.0.0.1:50051.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	sessionstore "github.com/sessionstore/sessionstore/clients/go"
)

// message is this agent's message format; sessionstore stores any JSON object as it is.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func main() {
	address := flag.String("address",
		cmp.Or(os.Getenv("SESSIONSTORE_ADDRESS"), sessionstore.DefaultAddress), "sessionstore server")
	session := flag.String("session", "go-agent-demo", "session id")
	flag.Parse()
	prompt := strings.Join(flag.Args(), " ")
	if prompt == "" {
		prompt = "Hello!"
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := sessionstore.New(*address)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	for {
		// Resume: the history so far; its length is the seq our turn must start at.
		history, err := client.Load(ctx, *session)
		if err != nil {
			log.Fatal(err)
		}
		turn, err := sessionstore.Marshal(
			message{Role: "user", Content: prompt},
			message{Role: "assistant", Content: think(history, prompt)},
		)
		if err != nil {
			log.Fatal(err)
		}
		ack, err := client.Append(ctx, *session, turn, sessionstore.ExpectedSeq(uint64(len(history))))
		var storeErr *sessionstore.Error
		if errors.As(err, &storeErr) && storeErr.Code == codes.Aborted {
			continue // another agent appended first: reload and take the turn again
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "session %s: turn stored at seqs %d-%d\n", *session, ack.FirstSeq, ack.NextSeq-1)
		break
	}

	// Print the conversation, decoding each message back into our type.
	last, err := client.Last(ctx, *session, 4)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range last {
		var msg message
		if err := m.Decode(&msg); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%3d %-9s %s\n", m.Seq, msg.Role, msg.Content)
	}
}

// think stands in for an LLM call.
func think(history []sessionstore.Message, prompt string) string {
	return fmt.Sprintf("(turn %d) You said: %q", len(history)/2+1, prompt)
}
