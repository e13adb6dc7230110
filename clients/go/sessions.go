package sessionstore

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/sessionstore/sessionstore/clients/go/gen/sessionstore/v1"
)

// unary makes a unary call about sessionID ("" for none), retried as policy says, turning its
// failure into an *Error that carries what the trailing metadata reported.
func unary[Request, Response any](
	ctx context.Context,
	policy RetryPolicy,
	sessionID string,
	call func(context.Context, Request, ...grpc.CallOption) (Response, error),
	request Request,
) (Response, error) {
	return retry(ctx, policy, func() (Response, error) {
		var trailer metadata.MD
		response, err := call(about(ctx, sessionID), request, grpc.Trailer(&trailer))
		return response, wrapError(err, trailer)
	})
}

// SetLabelsOption adjusts SetLabels.
type SetLabelsOption func(*pb.SetLabelsRequest)

// ExpectedLabelsRevision changes the labels only if they are at revision (SessionMeta.LabelsRevision);
// otherwise SetLabels fails with codes.Aborted and [Error.ActualLabelsRevision] says the actual one.
func ExpectedLabelsRevision(revision uint64) SetLabelsOption {
	return func(r *pb.SetLabelsRequest) { r.ExpectedLabelsRevision = &revision }
}

// SetLabels sets labels of a session (an empty value removes one) and returns its new meta;
// codes.NotFound for an unknown session. Retried only without [ExpectedLabelsRevision] (a retry
// of a change that happened would fail with codes.Aborted).
func (c *Client) SetLabels(ctx context.Context, sessionID string, labels map[string]string, opts ...SetLabelsOption) (SessionMeta, error) {
	request := &pb.SetLabelsRequest{SessionId: sessionID, Labels: labels}
	for _, opt := range opts {
		opt(request)
	}
	policy := c.retry
	if request.ExpectedLabelsRevision != nil {
		policy = policy.once()
	}
	response, err := unary(ctx, policy, sessionID, c.rpc.SetLabels, request)
	if err != nil {
		return SessionMeta{}, err
	}
	return metaFromProto(response.GetMeta()), nil
}

// Fork creates newSessionID holding the first atSeq messages of sessionID (nothing is copied;
// appends to either never affect the other), labelled as the source with labels (nil for none)
// over them, and returns its meta. It fails with codes.AlreadyExists if newSessionID exists, and
// codes.OutOfRange if atSeq is past the source's length ([Error.ActualLength]) or below its first
// kept seq ([Error.FirstSeq]). Not retried: a retry of a fork that happened would fail with
// codes.AlreadyExists.
func (c *Client) Fork(ctx context.Context, sessionID string, atSeq uint64, newSessionID string, labels map[string]string) (SessionMeta, error) {
	request := &pb.ForkRequest{SessionId: sessionID, AtSeq: atSeq, NewSessionId: newSessionID, Labels: labels}
	response, err := unary(ctx, c.retry.once(), sessionID, c.rpc.Fork, request)
	if err != nil {
		return SessionMeta{}, err
	}
	return metaFromProto(response.GetMeta()), nil
}

// RewindOption adjusts Rewind.
type RewindOption func(*pb.RewindRequest)

// RewindExpectedSeq rewinds only if the session's length is seq, so that no message the caller
// has not seen is dropped; otherwise Rewind fails with codes.Aborted and [Error.ActualLength].
func RewindExpectedSeq(seq uint64) RewindOption {
	return func(r *pb.RewindRequest) { r.ExpectedSeq = &seq }
}

// Rewound is what Rewind dropped, and the session's meta after it.
type Rewound struct {
	// Dropped are the messages dropped, oldest first, with the seqs they had.
	Dropped []Message
	Meta    SessionMeta
}

// Rewind drops the messages from toSeq on (the session's length becomes toSeq) and returns them;
// watchers are told ([Client.WatchEvents]). Not retried: a retry of a rewind that happened would
// drop nothing.
func (c *Client) Rewind(ctx context.Context, sessionID string, toSeq uint64, opts ...RewindOption) (Rewound, error) {
	request := &pb.RewindRequest{SessionId: sessionID, ToSeq: toSeq}
	for _, opt := range opts {
		opt(request)
	}
	response, err := unary(ctx, c.retry.once(), sessionID, c.rpc.Rewind, request)
	if err != nil {
		return Rewound{}, err
	}
	dropped := make([]Message, len(response.GetDroppedMessages()))
	for i, text := range response.GetDroppedMessages() {
		dropped[i] = Message{Seq: toSeq + uint64(i), JSON: json.RawMessage(text)}
	}
	return Rewound{Dropped: dropped, Meta: metaFromProto(response.GetMeta())}, nil
}

// PopLast removes a session's last message and returns it; ok is false for an empty or unknown
// session (pop_item of the OpenAI Agents SDK's sessions). If another writer appends in between it
// fails with codes.Aborted rather than drop their message. The rewind is not retried.
func (c *Client) PopLast(ctx context.Context, sessionID string) (message Message, ok bool, err error) {
	meta, exists, err := c.Meta(ctx, sessionID)
	if err != nil || !exists || meta.MessageCount == meta.FirstSeq {
		return Message{}, false, err
	}
	rewound, err := c.Rewind(ctx, sessionID, meta.MessageCount-1, RewindExpectedSeq(meta.MessageCount))
	if err != nil {
		return Message{}, false, err
	}
	return rewound.Dropped[0], true, nil
}

// Trimmed is what Trim dropped, and the session's meta after it (Meta.FirstSeq is the first kept).
type Trimmed struct {
	// Count is how many messages this call dropped.
	Count uint64
	Meta  SessionMeta
}

// Trim drops the messages before beforeSeq (at most the session's length). Seqs do not change;
// reading from a seq below the first kept one then fails with codes.OutOfRange and [Error.FirstSeq].
// Not retried: a retry of a trim that happened would report nothing dropped.
func (c *Client) Trim(ctx context.Context, sessionID string, beforeSeq uint64) (Trimmed, error) {
	response, err := unary(ctx, c.retry.once(), sessionID, c.rpc.Trim, &pb.TrimRequest{SessionId: sessionID, BeforeSeq: beforeSeq})
	if err != nil {
		return Trimmed{}, err
	}
	return Trimmed{Count: response.GetTrimmed(), Meta: metaFromProto(response.GetMeta())}, nil
}
