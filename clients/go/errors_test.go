package sessionstore

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestErrorReportsWhatTheTrailerSays(t *testing.T) {
	trailer := metadata.Pairs(ActualLabelsRevisionKey, "7", FirstSeqKey, "12", "other", "1")
	err := wrapError(status.Error(codes.Aborted, "stale"), trailer)
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Aborted || e.Message != "stale" {
		t.Fatalf("wrapError = %#v", err)
	}
	if revision, ok := e.ActualLabelsRevision(); !ok || revision != 7 {
		t.Errorf("ActualLabelsRevision() = %d, %v; want 7, true", revision, ok)
	}
	if seq, ok := e.FirstSeq(); !ok || seq != 12 {
		t.Errorf("FirstSeq() = %d, %v; want 12, true", seq, ok)
	}
	if length, ok := e.ActualLength(); ok {
		t.Errorf("ActualLength() = %d, true; want none", length)
	}
	if status.Code(err) != codes.Aborted || CodeOf(err) != codes.Aborted {
		t.Errorf("status.Code, CodeOf = %v, %v", status.Code(err), CodeOf(err))
	}
}

func TestErrorIgnoresAValueThatIsNotANumber(t *testing.T) {
	err := wrapError(status.Error(codes.OutOfRange, "past the end"), metadata.Pairs(ActualLengthKey, "many"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("wrapError = %#v", err)
	}
	if length, ok := e.ActualLength(); ok {
		t.Errorf("ActualLength() = %d, true; want none", length)
	}
}
