package sessionstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc/metadata"

	pb "sessionstore/clients/go/gen/sessionstore/v1"
)

// Message is one message of a session: its seq (position in the session, from 0) and its JSON
// text exactly as it was appended.
type Message struct {
	Seq  uint64
	JSON json.RawMessage
}

// Decode unmarshals the message into v with encoding/json.
func (m Message) Decode(v any) error { return json.Unmarshal(m.JSON, v) }

// LoadOption selects the messages that Load, Messages and Last return.
type LoadOption func(*pb.LoadRequest)

// FromSeq starts at seq instead of 0.
func FromSeq(seq uint64) LoadOption { return func(r *pb.LoadRequest) { r.FromSeq = seq } }

// Limit returns at most n messages (0: no limit).
func Limit(n uint64) LoadOption { return func(r *pb.LoadRequest) { r.Limit = n } }

// page is what Load and Watch stream: a run of consecutive messages.
type page interface {
	GetFirstSeq() uint64
	GetMessages() []string
}

// yieldPages yields the messages of every page of recv until it fails; io.EOF ends it cleanly.
func yieldPages[P page](recv func() (P, error), trailer func() metadata.MD, yield func(Message, error) bool) {
	for {
		p, err := recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			yield(Message{}, wrapError(err, trailer()))
			return
		}
		for i, text := range p.GetMessages() {
			if !yield(Message{Seq: p.GetFirstSeq() + uint64(i), JSON: json.RawMessage(text)}, nil) {
				return
			}
		}
	}
}

// Messages yields a session's messages in order, buffered ones included, streaming them page by
// page. An unknown session yields nothing.
func (c *Client) Messages(ctx context.Context, sessionID string, opts ...LoadOption) iter.Seq2[Message, error] {
	return c.load(ctx, &pb.LoadRequest{SessionId: sessionID}, opts)
}

func (c *Client) load(ctx context.Context, request *pb.LoadRequest, opts []LoadOption) iter.Seq2[Message, error] {
	for _, opt := range opts {
		opt(request)
	}
	return func(yield func(Message, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.Load(about(ctx, request.GetSessionId()), request)
		if err != nil {
			yield(Message{}, wrapError(err, nil))
			return
		}
		yieldPages(stream.Recv, stream.Trailer, yield)
	}
}

// Load returns a session's messages (all of them, or those the options select).
func (c *Client) Load(ctx context.Context, sessionID string, opts ...LoadOption) ([]Message, error) {
	return collect(c.Messages(ctx, sessionID, opts...))
}

// Last returns a session's last n messages, in order.
func (c *Client) Last(ctx context.Context, sessionID string, n uint64) ([]Message, error) {
	return collect(c.load(ctx, &pb.LoadRequest{SessionId: sessionID, Limit: n, Last: true}, nil))
}

// Watch yields a session's messages from fromSeq on, then each new one as it is appended, each
// exactly once, until the loop stops or the stream fails: with codes.NotFound when the session
// is deleted, codes.Unavailable when the server shuts down (watch again from the next seq),
// codes.Canceled when ctx is. A session that does not exist yet can be watched.
func (c *Client) Watch(ctx context.Context, sessionID string, fromSeq uint64) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.Watch(about(ctx, sessionID), &pb.WatchRequest{SessionId: sessionID, FromSeq: fromSeq})
		if err != nil {
			yield(Message{}, wrapError(err, nil))
			return
		}
		yieldPages(stream.Recv, stream.Trailer, yield)
	}
}

func collect(messages iter.Seq2[Message, error]) ([]Message, error) {
	var out []Message
	for message, err := range messages {
		if err != nil {
			return nil, err
		}
		out = append(out, message)
	}
	return out, nil
}
