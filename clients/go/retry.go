package sessionstore

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// RetryPolicy says how calls that are safe to repeat are retried, and how streams (Messages,
// Watch, an [Appender]) reconnect, when a failure says nothing about the call itself: the server
// is unavailable (restarting, shutting down, unreachable, the connection dropped) or the
// transport reset the stream. Waits grow from InitialDelay, doubling up to MaxDelay, each ±25 %
// at random; at most MaxAttempts attempts in a row fail before the call gives up (a page read,
// or an append acknowledged, resets the count). A zero field takes the default's value.
type RetryPolicy struct {
	// MaxAttempts is how many attempts in a row may fail; 1 disables retries. Default 10.
	MaxAttempts int
	// InitialDelay is the wait before the first retry. Default 100 ms.
	InitialDelay time.Duration
	// MaxDelay is the longest wait between attempts. Default 5 s.
	MaxDelay time.Duration
}

// DefaultRetryPolicy is the policy of a client without [WithRetry]: the same in every
// sessionstore client.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 10, InitialDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}

// WithRetry makes the client retry (and reconnect its streams) as policy says instead of as
// [DefaultRetryPolicy] does.
func WithRetry(policy RetryPolicy) Option {
	return Option{apply: func(c *connection) error {
		c.retry = policy
		return nil
	}}
}

// orDefaults is the policy with its zero fields set to the default's.
func (p RetryPolicy) orDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultRetryPolicy.InitialDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	return p
}

// once is the policy for a call that is not safe to repeat: a single attempt.
func (p RetryPolicy) once() RetryPolicy {
	p.MaxAttempts = 1
	return p
}

// delay is the wait before retry number retry (1 for the first), with ±25 % jitter.
func (p RetryPolicy) delay(retry int) time.Duration {
	base := p.MaxDelay
	if retry <= 30 { // past that the doubling overflows; MaxDelay is reached long before
		base = min(p.MaxDelay, p.InitialDelay<<(retry-1))
	}
	return time.Duration(float64(base) * (0.75 + rand.Float64()*0.5))
}

// isRetriable reports whether err says nothing about the call itself, so that trying again (on
// another replica, perhaps) is the answer: Unavailable, and a stream reset by the transport
// (Internal "RST_STREAM"), as a proxy does when the replica behind it dies. The call may or may
// not have taken effect: only calls for which that makes no difference are retried.
func isRetriable(err error) bool {
	code := CodeOf(err)
	return code == codes.Unavailable || (code == codes.Internal && strings.Contains(err.Error(), "RST_STREAM"))
}

// giveUp reports whether the failure number failures (err) ends the call: not retriable, or too
// many in a row.
func (p RetryPolicy) giveUp(err error, failures int) bool {
	return !isRetriable(err) || failures >= p.MaxAttempts
}

// wait sleeps before retry number retry. It returns last, the failure being retried, if ctx's
// deadline would pass first (another attempt could not end in time), and ctx's error (an
// *Error) if ctx ends meanwhile.
func (p RetryPolicy) wait(ctx context.Context, retry int, last error) error {
	delay := p.delay(retry)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= delay {
		return last
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return contextError(ctx)
	case <-timer.C:
		return nil
	}
}

// retry runs attempt until it succeeds, fails in a way that is not retriable, or runs out of
// attempts (or of ctx).
func retry[T any](ctx context.Context, policy RetryPolicy, attempt func() (T, error)) (T, error) {
	for failures := 1; ; failures++ {
		result, err := attempt()
		if err == nil || policy.giveUp(err, failures) {
			return result, err
		}
		if err := policy.wait(ctx, failures, err); err != nil {
			var zero T
			return zero, err
		}
	}
}
