package sessionstore

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestWhatIsRetried(t *testing.T) {
	for err, want := range map[error]bool{
		status.Error(codes.Unavailable, "connection refused"):                                   true,
		wrapError(status.Error(codes.Unavailable, "shutting down"), nil):                        true,
		status.Error(codes.Internal, "stream terminated by RST_STREAM with error code: CANCEL"): true,
		status.Error(codes.Internal, "a bug"):                                                   false,
		status.Error(codes.Aborted, "expected seq 3"):                                           false,
		status.Error(codes.DeadlineExceeded, "deadline"):                                        false,
		newError(codes.Canceled, "context canceled"):                                            false,
		errors.New("not a status"):                                                              false,
	} {
		if isRetriable(err) != want {
			t.Errorf("isRetriable(%v) = %v, want %v", err, !want, want)
		}
	}
}

func TestBackoffDoublesUpToTheMaximumWithJitter(t *testing.T) {
	policy := RetryPolicy{}.orDefaults()
	if policy != DefaultRetryPolicy {
		t.Fatalf("a zero policy's defaults = %+v, want %+v", policy, DefaultRetryPolicy)
	}
	for retry, base := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond,
		7: 5 * time.Second, 100: 5 * time.Second,
	} {
		for range 50 {
			delay := policy.delay(retry)
			if delay < base*3/4 || delay > base*5/4 {
				t.Fatalf("delay(%d) = %v, want %v ± 25 %%", retry, delay, base)
			}
		}
	}
}
