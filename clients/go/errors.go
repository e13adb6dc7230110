package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Trailing metadata keys in which the server reports, in decimal, what a failed call ran into.
const (
	// ActualLengthKey: the session's actual length, on an Aborted expected_seq mismatch (Append,
	// Rewind) and on OutOfRange past the session's end (Fork, Rewind, Trim).
	ActualLengthKey = "sessionstore-actual-length"
	// ActualLabelsRevisionKey: the session's labels revision, on an Aborted SetLabels whose
	// expected revision is not it.
	ActualLabelsRevisionKey = "sessionstore-actual-labels-revision"
	// FirstSeqKey: the first seq kept, on OutOfRange below a trimmed session's start.
	FirstSeqKey = "sessionstore-first-seq"
)

// Error is a failed call: the gRPC status code and message the server answered.
type Error struct {
	// Code is the gRPC status code: InvalidArgument (bad input, nothing stored; the client
	// refuses a message that is not a JSON object itself, before sending anything), NotFound,
	// AlreadyExists (a fork into an existing id), Aborted (an expected seq or labels revision
	// that is not the session's), OutOfRange (a seq past the session's end or below its first
	// kept one), ResourceExhausted, Unavailable (what the client retries), DataLoss; and, from
	// the client itself, FailedPrecondition (an [Appender] used after Close), Unauthenticated (a
	// [TokenFunc] that failed), Canceled and DeadlineExceeded (the context's).
	Code codes.Code
	// Message says what to fix.
	Message string
	// reported holds what the server reported in the trailing metadata, by key.
	reported map[string]uint64
	status   *status.Status
}

func (e *Error) Error() string {
	return fmt.Sprintf("sessionstore: %s: %s", e.Code, e.Message)
}

// GRPCStatus lets status.Code and status.FromError see the status of an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// ActualLength is the session's length when an append or rewind failed with Aborted because its
// expected seq did not match, or a fork, rewind or trim point was past the end (OutOfRange); ok
// is false for other errors.
func (e *Error) ActualLength() (length uint64, ok bool) {
	length, ok = e.reported[ActualLengthKey]
	return length, ok
}

// ActualLabelsRevision is the session's labels revision when SetLabels failed with Aborted
// because [ExpectedLabelsRevision] did not match; ok is false for other errors.
func (e *Error) ActualLabelsRevision() (revision uint64, ok bool) {
	revision, ok = e.reported[ActualLabelsRevisionKey]
	return revision, ok
}

// FirstSeq is the first seq a trimmed session keeps when a read (or fork) below it failed with
// OutOfRange: read from there. ok is false for other errors.
func (e *Error) FirstSeq() (seq uint64, ok bool) {
	seq, ok = e.reported[FirstSeqKey]
	return seq, ok
}

// CodeOf is the gRPC status code of err: codes.OK for nil, codes.Unknown for an error that
// carries none.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// newError is an error the client raises itself, of the same type as the server's.
func newError(code codes.Code, format string, args ...any) *Error {
	s := status.Newf(code, format, args...)
	return &Error{Code: code, Message: s.Message(), status: s, reported: map[string]uint64{}}
}

// contextError is why ctx ended, as an *Error: codes.Canceled or codes.DeadlineExceeded.
func contextError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return newError(codes.DeadlineExceeded, "%v", ctx.Err())
	}
	return newError(codes.Canceled, "%v", ctx.Err())
}

// wrapError turns an error of a gRPC call into an *Error; trailer is the call's trailing metadata,
// if known. io.EOF and nil pass through.
func wrapError(err error, trailer metadata.MD) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	s, ok := status.FromError(err)
	if !ok {
		switch {
		case errors.Is(err, context.Canceled):
			s = status.New(codes.Canceled, err.Error())
		case errors.Is(err, context.DeadlineExceeded):
			s = status.New(codes.DeadlineExceeded, err.Error())
		default:
			return err
		}
	}
	e := &Error{Code: s.Code(), Message: s.Message(), status: s, reported: map[string]uint64{}}
	for _, key := range []string{ActualLengthKey, ActualLabelsRevisionKey, FirstSeqKey} {
		if values := trailer.Get(key); len(values) > 0 {
			if n, parseErr := strconv.ParseUint(values[0], 10, 64); parseErr == nil {
				e.reported[key] = n
			}
		}
	}
	return e
}
