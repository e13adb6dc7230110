package sessionstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

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
// [Limit], [FromSeq]) choose it, with the calls left without a result. A window broken midway is
// read again whole (resuming from the next seq would choose another window).
func (c *Client) LoadWindow(ctx context.Context, sessionID string, opts ...LoadOption) (Window, error) {
	request := &pb.LoadRequest{SessionId: sessionID}
	for _, opt := range opts {
		opt(request)
	}
	return retry(ctx, c.retry, func() (Window, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.Load(about(ctx, sessionID), request)
		if err != nil {
			return Window{}, wrapError(err, nil)
		}
		var window Window
		for {
			p, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return window, nil
			}
			if err != nil {
				return Window{}, wrapError(err, stream.Trailer())
			}
			window.Messages = append(window.Messages, messagesOf(p)...)
			window.DanglingCallIDs = append(window.DanglingCallIDs, p.GetDanglingCallIds()...)
		}
	})
}

// page is what Load and Watch stream: a run of consecutive messages.
type page interface {
	GetFirstSeq() uint64
	GetMessages() []string
}

// messagesOf is the messages of a page, with their seqs.
func messagesOf(p page) []Message {
	messages := make([]Message, len(p.GetMessages()))
	for i, text := range p.GetMessages() {
		messages[i] = Message{Seq: p.GetFirstSeq() + uint64(i), JSON: json.RawMessage(text)}
	}
	return messages
}

// resumable is a server stream of pages that is opened again after a retriable failure, from
// where the pages read so far end.
type resumable[Response any, P interface {
	*Response
	page
}] struct {
	policy RetryPolicy
	// open starts the stream from the current position.
	open func(ctx context.Context) (grpc.ServerStreamingClient[Response], error)
	// advance moves the position past a page the caller took, and says whether more is wanted.
	advance func(nextSeq, count uint64) bool
	// beforeReopen, if set, is asked before each reopening for a page to yield first (or nil).
	beforeReopen func(ctx context.Context) (P, error)
}

// pages yields the pages, the failure that ends them last (an *Error); the end of the stream
// ends them cleanly. A page read resets the count of failed attempts.
func (r resumable[Response, P]) pages(ctx context.Context) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		// take yields a page and moves past it; false: stop.
		take := func(p P) bool {
			return yield(p, nil) && r.advance(p.GetFirstSeq()+uint64(len(p.GetMessages())), uint64(len(p.GetMessages())))
		}
		failures := 0
		for reopening := false; ; reopening = true {
			finished, err := r.attempt(ctx, reopening, take, func() { failures = 0 })
			if finished {
				return
			}
			failures++
			if r.policy.giveUp(err, failures) {
				yield(nil, err)
				return
			}
			if err := r.policy.wait(ctx, failures, err); err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// attempt reads one stream until it ends (finished) or fails (err).
func (r resumable[Response, P]) attempt(ctx context.Context, reopening bool, take func(P) bool, progress func()) (finished bool, err error) {
	if reopening && r.beforeReopen != nil {
		first, err := r.beforeReopen(ctx)
		if err != nil {
			return false, err
		}
		if first != nil && !take(first) {
			return true, nil
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.open(ctx)
	if err != nil {
		return false, wrapError(err, nil)
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, wrapError(err, stream.Trailer())
		}
		progress()
		if !take(p) {
			return true, nil
		}
	}
}

// Messages yields a session's messages in order, buffered ones included, streaming them page by
// page; broken midway, it goes on from the next seq. An unknown session yields nothing.
func (c *Client) Messages(ctx context.Context, sessionID string, opts ...LoadOption) iter.Seq2[Message, error] {
	return c.load(ctx, &pb.LoadRequest{SessionId: sessionID}, opts)
}

func (c *Client) load(ctx context.Context, template *pb.LoadRequest, opts []LoadOption) iter.Seq2[Message, error] {
	for _, opt := range opts {
		opt(template)
	}
	return func(yield func(Message, error) bool) {
		request := proto.CloneOf(template) // each loop reads from the start
		stream := resumable[pb.LoadResponse, *pb.LoadResponse]{
			policy: c.retry,
			open: func(ctx context.Context) (grpc.ServerStreamingClient[pb.LoadResponse], error) {
				return c.rpc.Load(about(ctx, request.GetSessionId()), request)
			},
			advance: func(nextSeq, count uint64) bool {
				// Read on from the next seq: the last n became the n - count after it.
				request.FromSeq, request.Last = nextSeq, false
				if request.Limit == 0 {
					return true
				}
				request.Limit -= min(count, request.Limit)
				return request.Limit > 0
			},
		}
		yieldMessages(stream.pages(ctx), yield)
	}
}

// yieldMessages yields the messages of every page until a failure, which it yields last.
func yieldMessages[P page](pages iter.Seq2[P, error], yield func(Message, error) bool) {
	for p, err := range pages {
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

// Load returns a session's messages (all of them, or those the options select).
func (c *Client) Load(ctx context.Context, sessionID string, opts ...LoadOption) ([]Message, error) {
	return collect(c.Messages(ctx, sessionID, opts...))
}

// Last returns a session's last n messages, in order.
func (c *Client) Last(ctx context.Context, sessionID string, n uint64) ([]Message, error) {
	return collect(c.load(ctx, &pb.LoadRequest{SessionId: sessionID, Limit: n, Last: true}, nil))
}

// watch is the pages of a watch from fromSeq, opened again after a retriable failure from the
// next seq not yet yielded, or the seq a rewind went back to.
func (c *Client) watch(ctx context.Context, sessionID string, fromSeq uint64) iter.Seq2[*pb.WatchResponse, error] {
	// Where the pages yielded so far end, once there are some.
	var streamedTo *uint64
	stream := resumable[pb.WatchResponse, *pb.WatchResponse]{
		policy: c.retry,
		open: func(ctx context.Context) (grpc.ServerStreamingClient[pb.WatchResponse], error) {
			return c.rpc.Watch(about(ctx, sessionID), &pb.WatchRequest{SessionId: sessionID, FromSeq: fromSeq})
		},
		// A rewound page has no messages and starts at the rewound seq: the watch goes on there.
		advance: func(nextSeq, _ uint64) bool {
			fromSeq = nextSeq
			streamedTo = &nextSeq
			return true
		},
		// A new stream cannot tell of a rewind made while the watch was disconnected (the server
		// does not know what this one yielded): a session now shorter than what was yielded was
		// rewound (or lost unsynced messages in a crash), so say so and go on from its end.
		beforeReopen: func(ctx context.Context) (*pb.WatchResponse, error) {
			if streamedTo == nil {
				return nil, nil
			}
			meta, ok, err := c.meta(ctx, sessionID, c.retry.once())
			if err != nil || !ok || meta.MessageCount >= *streamedTo {
				return nil, err
			}
			return &pb.WatchResponse{FirstSeq: meta.MessageCount, RewoundTo: &meta.MessageCount}, nil
		},
	}
	return stream.pages(ctx)
}

// Watch yields a session's messages from fromSeq on, then each new one as it is appended, each
// exactly once, until the loop stops, ctx ends (codes.Canceled, codes.DeadlineExceeded) or the
// session is deleted (codes.NotFound). When the server is unavailable (a restart, a dropped
// connection) it watches again, as the client's [RetryPolicy] says, from the next seq not yet
// yielded. A session that does not exist yet can be watched.
func (c *Client) Watch(ctx context.Context, sessionID string, fromSeq uint64) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		yieldMessages(c.watch(ctx, sessionID, fromSeq), yield)
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
		for p, err := range c.watch(ctx, sessionID, fromSeq) {
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

// validMessages refuses, before anything is sent, messages that are not each one JSON object:
// an *Error with codes.InvalidArgument naming the first.
func validMessages(messages []json.RawMessage) error {
	for i, message := range messages {
		if !json.Valid(message) || !bytes.HasPrefix(bytes.TrimLeft(message, " \t\r\n"), []byte("{")) {
			return newError(codes.InvalidArgument, "message %d is not a JSON object", i)
		}
	}
	return nil
}
