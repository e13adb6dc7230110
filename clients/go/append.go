package sessionstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// AppendOption adjusts an append ([Client.Append]) or an appender ([Client.Appender]).
type AppendOption func(*pb.AppendRequest)

// ExpectedSeq makes the append conditional: the first message must get seq, otherwise the append
// stores nothing and fails with codes.Aborted, and [Error.ActualLength] says the session's length.
// Retrying an append that was stored, with the same seq and messages, stores nothing twice (so
// Client.Append is retried with it). Given to [Client.Appender], it makes the appender strict.
func ExpectedSeq(seq uint64) AppendOption {
	return func(r *pb.AppendRequest) { r.ExpectedSeq = &seq }
}

// Sync acknowledges the append only once its messages, and every earlier one, are fsynced.
func Sync() AppendOption {
	return func(r *pb.AppendRequest) { r.Sync = true }
}

// Labels labels the session if this append creates it; an existing session keeps its own
// ([Client.SetLabels] changes them). An [Appender] sends them with a request at seq 0 only.
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

func ackOf(response *pb.AppendResponse) Ack {
	return Ack{
		SessionID:    response.GetSessionId(),
		FirstSeq:     response.GetFirstSeq(),
		NextSeq:      response.GetNextSeq(),
		DurableCount: response.GetDurableCount(),
	}
}

// Append appends messages, each one JSON object, to a session, in order, atomically. They are
// stored byte for byte (raw CR/LF between tokens become spaces). A message that is not a JSON
// object fails the call with codes.InvalidArgument before anything is sent. Retried only with
// [ExpectedSeq] (the server acknowledges a resend of what it stored, rather than store it twice).
func (c *Client) Append(ctx context.Context, sessionID string, messages []json.RawMessage, opts ...AppendOption) (Ack, error) {
	if err := validMessages(messages); err != nil {
		return Ack{}, err
	}
	request := appendRequest(sessionID, messages, opts)
	policy := c.retry
	if request.ExpectedSeq == nil {
		policy = policy.once()
	}
	return retry(ctx, policy, func() (Ack, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.openAppend(ctx, sessionID)
		if err != nil {
			return Ack{}, err
		}
		ack, err := stream.send(request)
		if err == nil {
			stream.finish()
		}
		return ack, err
	})
}

// appendStream is one Append stream, to one session.
type appendStream struct {
	grpc.BidiStreamingClient[pb.AppendRequest, pb.AppendResponse]
}

func (c *Client) openAppend(ctx context.Context, sessionID string) (appendStream, error) {
	stream, err := c.rpc.Append(about(ctx, sessionID))
	return appendStream{stream}, wrapError(err, nil)
}

// send sends one request and waits for its acknowledgement, or why the stream ended.
func (s appendStream) send(request *pb.AppendRequest) (Ack, error) {
	// A failed Send means the stream has ended: Recv says why.
	if err := s.Send(request); err != nil && !errors.Is(err, io.EOF) {
		return Ack{}, wrapError(err, nil)
	}
	response, err := s.Recv()
	if errors.Is(err, io.EOF) {
		return Ack{}, newError(codes.Unavailable, "the server ended the Append stream")
	}
	if err != nil {
		return Ack{}, wrapError(err, s.Trailer())
	}
	return ackOf(response), nil
}

// finish half-closes the stream and waits for the server to end it. Everything sent on it was
// acknowledged, so how it ends concerns nothing.
func (s appendStream) finish() {
	if s.CloseSend() != nil {
		return
	}
	for {
		if _, err := s.Recv(); err != nil {
			return
		}
	}
}

// Appender is a long-lived writer to one session, for an agent that appends message after
// message: each Append sends one request on one Append stream and returns its acknowledgement.
//
// Every request claims the seq its first message must get (expected_seq), so when the stream
// breaks (the server restarts, the connection drops) the appender opens another, with the
// client's [RetryPolicy], and sends the request again at the same seq: the server stores it if it
// lacks it and acknowledges it if it holds it already (the ack was what got lost), so every
// message is stored exactly once, in order, while the appender is the session's only writer.
//
// Without [ExpectedSeq], the appender starts at the session's length and moves past the messages
// of another writer that appended meanwhile; with it, it is strict and fails with codes.Aborted
// instead. Any other failure, or more broken streams in a row than the policy allows, fails the
// appender: Append and Close then return that error.
//
// An Appender is not safe for concurrent use: one Append at a time.
type Appender struct {
	client    *Client
	ctx       context.Context
	sessionID string
	strict    bool
	sync      bool
	labels    map[string]string
	// next is the seq the next request claims.
	next uint64
	// stream is the open Append stream, if any; cancel ends it.
	stream appendStream
	cancel context.CancelFunc
	err    error
	closed bool
}

// Appender starts an [Appender] writing to sessionID; ctx bounds its life (cancelling it fails
// the appender). Options: [ExpectedSeq] (the seq its first message must get: strict), [Sync]
// (acknowledge once fsynced), [Labels] (the session's labels if the appender creates it: they go
// with a request at seq 0). Without ExpectedSeq it reads the session's length first. Close it
// when done.
func (c *Client) Appender(ctx context.Context, sessionID string, opts ...AppendOption) (*Appender, error) {
	template := appendRequest(sessionID, nil, opts)
	a := &Appender{
		client: c, ctx: ctx, sessionID: sessionID,
		strict: template.ExpectedSeq != nil, sync: template.Sync, labels: template.Labels,
	}
	if a.strict {
		a.next = template.GetExpectedSeq()
		return a, nil
	}
	meta, _, err := c.Meta(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	a.next = meta.MessageCount
	return a, nil
}

// SessionID is the session the appender writes to.
func (a *Appender) SessionID() string { return a.sessionID }

// NextSeq is the seq the next message appended will get (if no other writer appends first).
func (a *Appender) NextSeq() uint64 { return a.next }

// Append appends messages (each one JSON object) in one request at the appender's next seq and
// returns its acknowledgement, reconnecting as needed. A message that is not a JSON object is
// refused (codes.InvalidArgument) before anything is sent, and the appender goes on; any other
// failure fails the appender.
func (a *Appender) Append(messages []json.RawMessage) (Ack, error) {
	if a.err != nil {
		return Ack{}, a.err
	}
	if a.closed {
		return Ack{}, newError(codes.FailedPrecondition, "the appender is closed")
	}
	if err := validMessages(messages); err != nil {
		return Ack{}, err
	}
	request := appendRequest(a.sessionID, messages, nil)
	request.Sync = a.sync
	for failures := 1; ; failures++ {
		request.ExpectedSeq = &a.next
		request.Labels = nil
		if a.next == 0 {
			request.Labels = a.labels
		}
		ack, err := a.send(request)
		if err == nil {
			if ack.FirstSeq != a.next {
				return Ack{}, a.fail(newError(codes.Internal,
					"unexpected acknowledgement (first_seq %d, expected %d)", ack.FirstSeq, a.next))
			}
			a.next += uint64(len(messages))
			return ack, nil
		}
		a.dropStream()
		moved := a.moveAfterOtherWriter(err)
		if !moved && !isRetriable(err) {
			return Ack{}, a.fail(err)
		}
		if failures >= a.client.retry.MaxAttempts {
			return Ack{}, a.fail(gaveUp(err, failures))
		}
		if !moved {
			if err := a.client.retry.wait(a.ctx, failures, err); err != nil {
				return Ack{}, a.fail(err)
			}
		}
	}
}

// moveAfterOtherWriter reports whether err is codes.Aborted because another writer appended at
// the seq this (non-strict) appender claimed, and if so moves it past their messages. That request
// was not stored (a request is stored whole at the seq it names, and a resend of a stored one is
// acknowledged). A session shorter than claimed (deleted, or a crash lost unsynced messages) is
// not papered over: the appender fails.
func (a *Appender) moveAfterOtherWriter(err error) bool {
	var e *Error
	if a.strict || !errors.As(err, &e) || e.Code != codes.Aborted {
		return false
	}
	length, ok := e.ActualLength()
	if !ok || length <= a.next {
		return false
	}
	a.next = length
	return true
}

// send sends request on the open stream, opening one first if there is none.
func (a *Appender) send(request *pb.AppendRequest) (Ack, error) {
	if a.stream.BidiStreamingClient == nil {
		ctx, cancel := context.WithCancel(a.ctx)
		stream, err := a.client.openAppend(ctx, a.sessionID)
		if err != nil {
			cancel()
			return Ack{}, err
		}
		a.stream, a.cancel = stream, cancel
	}
	return a.stream.send(request)
}

func (a *Appender) dropStream() {
	if a.cancel != nil {
		a.cancel()
	}
	a.stream, a.cancel = appendStream{}, nil
}

// fail makes err the appender's end: every later call returns it.
func (a *Appender) fail(err error) error {
	a.dropStream()
	if a.ctx.Err() != nil {
		err = contextError(a.ctx)
	}
	a.err = err
	return err
}

// gaveUp is err after the appender's last attempt, saying so.
func gaveUp(err error, attempts int) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	given := *e
	given.Message = fmt.Sprintf("%s (gave up after %d attempts)", e.Message, attempts)
	given.status = status.New(e.Code, given.Message)
	return &given
}

// Close ends the stream: every Append returned its acknowledgement already, so nothing is left
// to wait for. It returns the appender's failure, if it failed; later Appends fail with
// codes.FailedPrecondition.
func (a *Appender) Close() error {
	if a.closed || a.err != nil {
		a.closed = true
		return a.err
	}
	a.closed = true
	if a.stream.BidiStreamingClient != nil {
		a.stream.finish()
	}
	a.dropStream()
	return nil
}
