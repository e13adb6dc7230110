package sessionstore

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	pb "github.com/sessionstore/sessionstore/clients/go/gen/sessionstore/v1"
)

// SessionIDKey is the metadata key naming the session a call is about, so that a router (a load
// balancer hashing on it) can send every call about a session to the same replica.
const SessionIDKey = "x-session-id"

// about adds to ctx the metadata of a call about one session.
func about(ctx context.Context, sessionID string) context.Context {
	if sessionID == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, SessionIDKey, sessionID)
}

// DefaultAddress is where `sessionstore serve` listens by default.
const DefaultAddress = "127.0.0.1:50051"

// Client calls a sessionstore server. It is safe for concurrent use.
type Client struct {
	conn  *grpc.ClientConn
	rpc   pb.SessionStoreClient
	retry RetryPolicy
}

// New connects (lazily) to the server at target, e.g. "127.0.0.1:50051". It takes this package's
// connection options ([Option]: [TLS], [RootCAs], [ClientCertificate], [Insecure], [Token],
// [TokenFunc], [WithRetry]) and any grpc.DialOption. The connection is plaintext to a loopback target
// (localhost, 127.0.0.0/8, ::1, a unix socket) and TLS, trusting the system's CAs, to any other,
// unless the options say otherwise; a grpc.WithTransportCredentials among opts overrides them.
func New(target string, opts ...grpc.DialOption) (*Client, error) {
	var chosen connection
	var others []grpc.DialOption
	for _, opt := range opts {
		if option, ok := opt.(Option); ok {
			if err := option.apply(&chosen); err != nil {
				return nil, err
			}
		} else {
			others = append(others, opt)
		}
	}
	dialOptions, err := chosen.dialOptions(target)
	if err != nil {
		return nil, err
	}
	retry := chosen.retry.orDefaults()
	// The channel reconnects on the retry policy's schedule, not grpc's (from 1 s up to 2 min),
	// so that a retry after a restart finds the server back rather than a channel still waiting.
	reconnect := grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
		BaseDelay: retry.InitialDelay, Multiplier: 2, Jitter: 0.25, MaxDelay: retry.MaxDelay,
	}, MinConnectTimeout: 20 * time.Second})
	dialOptions = append([]grpc.DialOption{reconnect}, dialOptions...)
	conn, err := grpc.NewClient(target, append(dialOptions, others...)...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, rpc: pb.NewSessionStoreClient(conn), retry: retry}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Raw is the generated gRPC client, for what this package does not wrap.
func (c *Client) Raw() pb.SessionStoreClient { return c.rpc }

// SessionMeta describes a session.
type SessionMeta struct {
	SessionID        string `json:"session_id"`
	CreatedAtMs      uint64 `json:"created_at_ms"`
	AgentLoopVersion string `json:"agent_loop_version"`
	// MessageCount includes messages still buffered on the server.
	MessageCount uint64 `json:"message_count"`
	// Messages [0, DurableCount) are fsynced.
	DurableCount uint64 `json:"durable_count"`
	// UpdatedAtMs is when a message was last appended (or the session created, forked, rewound).
	UpdatedAtMs uint64 `json:"updated_at_ms"`
	// Labels are the session's labels, e.g. {"user": "alice"}; [Client.SetLabels] changes them.
	Labels map[string]string `json:"labels"`
	// LabelsRevision grows by one at every change of the labels; 0 for a session never labelled.
	LabelsRevision uint64 `json:"labels_revision"`
	// ParentSessionID is the session this one was forked from ("" if it was not), at ParentSeq:
	// its first ParentSeq messages are the parent's.
	ParentSessionID string `json:"parent_session_id"`
	ParentSeq       uint64 `json:"parent_seq"`
	// FirstSeq is the first seq kept: the messages before it were trimmed.
	FirstSeq uint64 `json:"first_seq"`
}

func metaFromProto(m *pb.SessionMeta) SessionMeta {
	return SessionMeta{
		SessionID:        m.GetSessionId(),
		CreatedAtMs:      m.GetCreatedAtMs(),
		AgentLoopVersion: m.GetAgentLoopVersion(),
		MessageCount:     m.GetMessageCount(),
		DurableCount:     m.GetDurableCount(),
		UpdatedAtMs:      m.GetUpdatedAtMs(),
		Labels:           m.GetLabels(),
		LabelsRevision:   m.GetLabelsRevision(),
		ParentSessionID:  m.GetParentSessionId(),
		ParentSeq:        m.GetParentSeq(),
		FirstSeq:         m.GetFirstSeq(),
	}
}

// Meta is a session's metadata; ok is false for a session that does not exist (nothing was
// ever appended to it, or it was deleted). Retried.
func (c *Client) Meta(ctx context.Context, sessionID string) (meta SessionMeta, ok bool, err error) {
	return c.meta(ctx, sessionID, c.retry)
}

func (c *Client) meta(ctx context.Context, sessionID string, policy RetryPolicy) (SessionMeta, bool, error) {
	response, err := unary(ctx, policy, sessionID, c.rpc.LoadMeta, &pb.LoadMetaRequest{SessionId: sessionID})
	if CodeOf(err) == codes.NotFound {
		return SessionMeta{}, false, nil
	}
	if err != nil {
		return SessionMeta{}, false, err
	}
	return metaFromProto(response.GetMeta()), true, nil
}

// ListOption adjusts List.
type ListOption func(*pb.ListRequest)

// PageSize fetches n sessions per call (the server's default is 100, its maximum 1000).
func PageSize(n uint32) ListOption { return func(r *pb.ListRequest) { r.PageSize = n } }

// LabelSelector lists only the sessions whose labels match selector, in Kubernetes syntax:
// "user=alice,env!=prod,team,!draft,tier in (a,b),tier notin (c)"; every requirement must hold.
func LabelSelector(selector string) ListOption {
	return func(r *pb.ListRequest) { r.LabelSelector = selector }
}

// ListOrder is the order of a listing.
type ListOrder int32

const (
	// ByID lists sessions by id (the default).
	ByID = ListOrder(pb.ListOrder_LIST_ORDER_BY_ID)
	// ByUpdatedDesc lists the most recently appended first (then by id).
	ByUpdatedDesc = ListOrder(pb.ListOrder_LIST_ORDER_BY_UPDATED_DESC)
)

// OrderBy lists in the given order.
func OrderBy(order ListOrder) ListOption {
	return func(r *pb.ListRequest) { r.Order = pb.ListOrder(order) }
}

// List yields the sessions whose id starts with prefix ("" for all), by id unless [OrderBy]
// says otherwise, those matching a [LabelSelector] only if given, fetching pages as the loop
// asks for more; each page is retried.
func (c *Client) List(ctx context.Context, prefix string, opts ...ListOption) iter.Seq2[SessionMeta, error] {
	return func(yield func(SessionMeta, error) bool) {
		request := &pb.ListRequest{Prefix: prefix}
		for _, opt := range opts {
			opt(request)
		}
		for {
			response, err := unary(ctx, c.retry, "", c.rpc.List, request)
			if err != nil {
				yield(SessionMeta{}, err)
				return
			}
			for _, meta := range response.GetSessions() {
				if !yield(metaFromProto(meta), nil) {
					return
				}
			}
			request.PageToken = response.GetNextPageToken()
			if request.PageToken == "" {
				return
			}
		}
	}
}

// Delete deletes a session (its buffer and its stored messages); it reports whether it existed.
// The session can then start again at seq 0. Not retried: a retry of a delete that happened
// would report false.
func (c *Client) Delete(ctx context.Context, sessionID string) (existed bool, err error) {
	response, err := unary(ctx, c.retry.once(), sessionID, c.rpc.Delete, &pb.DeleteRequest{SessionId: sessionID})
	if err != nil {
		return false, err
	}
	return response.GetExisted(), nil
}

// Flush writes a session's buffered messages to storage and fsyncs them; it returns how many
// messages it wrote (0 for a session that does not exist). [Client.FlushAll] flushes every
// session. Retried.
func (c *Client) Flush(ctx context.Context, sessionID string) (flushed uint64, err error) {
	if sessionID == "" {
		return 0, newError(codes.InvalidArgument, "Flush needs a session id; FlushAll flushes every session")
	}
	response, err := unary(ctx, c.retry, sessionID, c.rpc.Flush, &pb.FlushRequest{SessionId: sessionID})
	if err != nil {
		return 0, err
	}
	return response.GetFlushed(), nil
}

// FlushAllResult is what [Client.FlushAll] did: how many messages it wrote, and the sessions it
// could not flush.
type FlushAllResult struct {
	Flushed  uint64
	Failures []FlushFailure
}

// FlushFailure is a session that FlushAll could not flush, and why: the error its own Flush would
// answer (codes.DataLoss for a damaged record, codes.Unavailable when storage fails).
type FlushFailure struct {
	SessionID string
	Error     *Error
}

// FlushAll writes and fsyncs every session's buffered messages (of the caller's tenant). Sessions
// that cannot be flushed do not stop the others: they come back in Failures. Retried.
func (c *Client) FlushAll(ctx context.Context) (FlushAllResult, error) {
	response, err := unary(ctx, c.retry, "", c.rpc.Flush, &pb.FlushRequest{})
	if err != nil {
		return FlushAllResult{}, err
	}
	result := FlushAllResult{Flushed: response.GetFlushed()}
	for _, failure := range response.GetFailures() {
		result.Failures = append(result.Failures, FlushFailure{
			SessionID: failure.GetSessionId(),
			Error:     newError(codes.Code(failure.GetCode()), "%s", failure.GetMessage()),
		})
	}
	return result, nil
}

// Marshal encodes values (structs, maps, ...) as messages with encoding/json. Each must encode
// to a JSON object (appending anything else fails with codes.InvalidArgument).
func Marshal(values ...any) ([]json.RawMessage, error) {
	messages := make([]json.RawMessage, len(values))
	for i, value := range values {
		data, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		messages[i] = data
	}
	return messages, nil
}
