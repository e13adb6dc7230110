package sessionstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc/metadata"

	pb "github.com/sessionstore/sessionstore/clients/go/gen/sessionstore/v1"
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

// MaxBytes makes a context window: the newest messages whose sizes (UTF-8 bytes, as stored) add
// up to at most n (0: no bound), within [Limit] if given.
func MaxBytes(n uint64) LoadOption { return func(r *pb.LoadRequest) { r.MaxBytes = n } }

// WholeTurns makes a context window that a model API accepts: the newest messages (within
// [Limit] and [MaxBytes]) starting at a turn boundary (a message a person wrote), never with a
// tool result whose call is outside it; none when no such start fits. [Client.LoadWindow] also
// reports the calls left without a result.
func WholeTurns() LoadOption { return func(r *pb.LoadRequest) { r.WholeTurns = true } }

// Window is a context window: its messages, oldest first, and the tool calls in it left
// without a result.
type Window struct {
	Messages []Message
	// DanglingCallIDs are, with [WholeTurns], the ids of the tool calls in the window that have
	// no result after them (an interrupted turn), oldest first; Gemini calls without an id are
	// named "name:<function name>".
	DanglingCallIDs []string
}

// LoadWindow returns a context window of a session, as the options ([MaxBytes], [WholeTurns],
// [Limit], [FromSeq]) choose it, with the calls left without a result.
func (c *Client) LoadWindow(ctx context.Context, sessionID string, opts ...LoadOption) (Window, error) {
	request := &pb.LoadRequest{SessionId: sessionID}
	for _, opt := range opts {
		opt(request)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Load(about(ctx, sessionID), request)
	if err != nil {
		return Window{}, wrapError(err, nil)
	}
	var window Window
	for p, err := range pages(stream.Recv, stream.Trailer) {
		if err != nil {
			return Window{}, err
		}
		window.Messages = append(window.Messages, messagesOf(p)...)
		window.DanglingCallIDs = append(window.DanglingCallIDs, p.GetDanglingCallIds()...)
	}
	return window, nil
}

// page is what Load and Watch stream: a run of consecutive messages.
type page interface {
	GetFirstSeq() uint64
	GetMessages() []string
}

// pages yields the pages recv returns until it fails (the failure last); io.EOF ends it cleanly.
func pages[P page](recv func() (P, error), trailer func() metadata.MD) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		for {
			p, err := recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(p, wrapError(err, trailer()))
				return
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

// messagesOf is the messages of a page, with their seqs.
func messagesOf(p page) []Message {
	messages := make([]Message, len(p.GetMessages()))
	for i, text := range p.GetMessages() {
		messages[i] = Message{Seq: p.GetFirstSeq() + uint64(i), JSON: json.RawMessage(text)}
	}
	return messages
}

// yieldPages yields the messages of every page of recv until it fails.
func yieldPages[P page](recv func() (P, error), trailer func() metadata.MD, yield func(Message, error) bool) {
	for p, err := range pages(recv, trailer) {
		if err != nil {
			yield(Message{}, err)
			return
		}
		for _, message := range messagesOf(p) {
			if !yield(message, nil) {
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

// WatchEvent is what [Client.WatchEvents] yields: a message or, when Rewound is set, the news that
// the session was rewound to Seq: the messages yielded from Seq on are gone (JSON is nil), and
// the watch goes on from Seq.
type WatchEvent struct {
	Message
	Rewound bool
}

// WatchEvents is [Client.Watch] that also tells of rewinds: it yields a WatchEvent for each
// message and one with Rewound set when the session is rewound below what was yielded. (Watch
// goes on from the rewound seq too, without saying so.)
func (c *Client) WatchEvents(ctx context.Context, sessionID string, fromSeq uint64) iter.Seq2[WatchEvent, error] {
	return func(yield func(WatchEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.Watch(about(ctx, sessionID), &pb.WatchRequest{SessionId: sessionID, FromSeq: fromSeq})
		if err != nil {
			yield(WatchEvent{}, wrapError(err, nil))
			return
		}
		for p, err := range pages(stream.Recv, stream.Trailer) {
			if err != nil {
				yield(WatchEvent{}, err)
				return
			}
			if p.RewoundTo != nil && !yield(WatchEvent{Message: Message{Seq: p.GetRewoundTo()}, Rewound: true}, nil) {
				return
			}
			for _, message := range messagesOf(p) {
				if !yield(WatchEvent{Message: message}, nil) {
					return
				}
			}
		}
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
