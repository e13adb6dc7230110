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

// ActualLengthKey is the trailing metadata key of an ABORTED expected_seq mismatch: the session's
// actual length, in decimal.
const ActualLengthKey = "sessionstore-actual-length"

// Error is a failed call: the gRPC status code and message the server answered.
type Error struct {
	// Code is the gRPC status code: InvalidArgument (bad input, nothing stored), NotFound,
	// Aborted (expected_seq mismatch), ResourceExhausted, Unavailable (safe to retry), DataLoss.
	Code codes.Code
	// Message says what to fix.
	Message string
	// actualLength is the session's length that an Aborted append reported, when it did.
	actualLength *uint64
	status       *status.Status
}

func (e *Error) Error() string {
	return fmt.Sprintf("sessionstore: %s: %s", e.Code, e.Message)
}

// GRPCStatus lets status.Code and status.FromError see the status of an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// ActualLength is the session's length when an append failed with Aborted because its
// expected_seq did not match; ok is false for other errors.
func (e *Error) ActualLength() (length uint64, ok bool) {
	if e.actualLength == nil {
		return 0, false
	}
	return *e.actualLength, true
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
	e := &Error{Code: s.Code(), Message: s.Message(), status: s}
	if values := trailer.Get(ActualLengthKey); len(values) > 0 {
		if n, parseErr := strconv.ParseUint(values[0], 10, 64); parseErr == nil {
			e.actualLength = &n
		}
	}
	return e
}
