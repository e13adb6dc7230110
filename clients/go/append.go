package sessionstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"google.golang.org/grpc"

	pb "github.com/sessionstore/sessionstore/clients/go/gen/sessionstore/v1"
)

// Ack is the server's acknowledgement of one append.
type Ack struct {
	SessionID string `json:"session_id"`
	// FirstSeq is the seq given to the first message appended.
	FirstSeq uint64 `json:"first_seq"`
	// NextSeq is the session's length after the append.
	NextSeq uint64 `json:"next_seq"`
	// Messages [0, DurableCount) of the session are fsynced.
	DurableCount uint64 `json:"durable_count"`
}

// AppendOption adjusts an append.
type AppendOption func(*pb.AppendRequest)

// ExpectedSeq makes the append conditional: the first message must get seq, otherwise the append
// stores nothing and fails with codes.Aborted, and [Error.ActualLength] says the session's length.
// Retrying an append that was stored, with the same seq and messages, stores nothing twice.
func ExpectedSeq(seq uint64) AppendOption {
	return func(r *pb.AppendRequest) { r.ExpectedSeq = &seq }
}

// Sync acknowledges the append only once its messages, and every earlier one, are fsynced.
func Sync() AppendOption {
	return func(r *pb.AppendRequest) { r.Sync = true }
}

// Labels labels the session if this append creates it; an existing session keeps its own
// ([Client.SetLabels] changes them).
func Labels(labels map[string]string) AppendOption {
	return func(r *pb.AppendRequest) { r.Labels = labels }
}

func appendRequest(sessionID string, messages []json.RawMessage, opts []AppendOption) *pb.AppendRequest {
	request := &pb.AppendRequest{SessionId: sessionID, Messages: make([]string, len(messages))}
	for i, message := range messages {
		request.Messages[i] = string(message)
	}
	for _, opt := range opts {
		opt(request)
	}
	return request
}

// Append appends messages, each one JSON object, to a session, in order. They are stored byte for
// byte (raw CR/LF between tokens become spaces).
func (c *Client) Append(ctx context.Context, sessionID string, messages []json.RawMessage, opts ...AppendOption) (Ack, error) {
	appender, err := c.NewAppender(about(ctx, sessionID))
	if err != nil {
		return Ack{}, err
	}
	ack, err := appender.Append(sessionID, messages, opts...)
	if closeErr := appender.Close(); err == nil {
		err = closeErr
	}
	return ack, err
}

// Appender is one Append stream, for an agent that appends many times: each Append sends one
// request and waits for its ack. One Appender may feed many sessions. It is not safe for
// concurrent use. Once an append fails the stream is over, and every later call returns that error.
type Appender struct {
	stream grpc.BidiStreamingClient[pb.AppendRequest, pb.AppendResponse]
	cancel context.CancelFunc
	err    error
}

// NewAppender opens an Append stream; Close it when done.
func (c *Client) NewAppender(ctx context.Context) (*Appender, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.Append(ctx)
	if err != nil {
		cancel()
		return nil, wrapError(err, nil)
	}
	return &Appender{stream: stream, cancel: cancel}, nil
}

// Append appends messages to a session and waits for the ack; see [Client.Append].
func (a *Appender) Append(sessionID string, messages []json.RawMessage, opts ...AppendOption) (Ack, error) {
	if a.err != nil {
		return Ack{}, a.err
	}
	// A failed Send means the stream has ended: Recv returns why.
	if err := a.stream.Send(appendRequest(sessionID, messages, opts)); err != nil && !errors.Is(err, io.EOF) {
		a.err = wrapError(err, nil)
		return Ack{}, a.err
	}
	response, err := a.stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		a.err = wrapError(err, a.stream.Trailer())
		return Ack{}, a.err
	}
	return Ack{
		SessionID:    response.GetSessionId(),
		FirstSeq:     response.GetFirstSeq(),
		NextSeq:      response.GetNextSeq(),
		DurableCount: response.GetDurableCount(),
	}, nil
}

// Close ends the stream and waits for the server to end it; it returns the stream's error, if any.
func (a *Appender) Close() error {
	defer a.cancel()
	if a.err != nil {
		return a.err
	}
	a.err = errors.New("sessionstore: append on a closed Appender")
	if err := a.stream.CloseSend(); err != nil {
		return wrapError(err, nil)
	}
	for {
		if _, err := a.stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return wrapError(err, a.stream.Trailer())
		}
	}
}
