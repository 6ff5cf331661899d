package balancer

import (
	"context"
	"errors"
	"time"

	"github.com/modelgate/modelgate/discovery"
)

// Request says what a pick must satisfy. Pick reads it during the call and
// keeps nothing; the caller may reuse it for the next attempt, typically
// after appending the picked instance's ID to Exclude.
type Request struct {
	Route     string            // route name (see Route.Name); unknown names fall back to Service
	Service   string            // pool key, "GROUP@@service"; used when Route is empty or unknown
	Model     string            // model name the client asked for, for custom policies
	Tags      map[string]string // tags an instance must also carry; they narrow the route's, never widen
	StickyKey string            // optional, e.g. a user id: the same key gets the same version of a split
	Exclude   []string          // IDs of instances already tried; never picked again
	// Prompt is the prompt's leading content as the client sent it — the
	// chat messages array, or the completion prompt — for policies that
	// score prefix-cache affinity (package engine). Nil means none.
	Prompt []byte
}

// Result is the outcome of one upstream attempt, reported through
// Picked.Done. It feeds the instance's latency average and circuit breaker:
//
//   - a client cancellation (Canceled, or Err wrapping context.Canceled)
//     counts neither for nor against the instance;
//   - status 429 and 5xx count as failures;
//   - other 4xx count as successes: the instance answered, the request was bad;
//   - otherwise a non-nil Err (a transport error, a timeout including
//     context.DeadlineExceeded, a stream broken midway) is a failure.
type Result struct {
	Err      error         // nil on success
	Status   int           // HTTP status from upstream, 0 if none
	Latency  time.Duration // until the reply (or the stream) ended
	TTFT     time.Duration // until the first token, for streams; preferred over Latency for the average
	Tokens   int           // tokens generated, if known
	Canceled bool          // the client gave up; not the instance's fault
}

// outcome is how a Result counts for the instance.
type outcome uint8

const (
	success outcome = iota
	failure
	excluded
)

func (r *Result) outcome() outcome {
	switch {
	case r.Canceled || (r.Err != nil && errors.Is(r.Err, context.Canceled)):
		return excluded
	case r.Status == 429 || r.Status >= 500:
		return failure
	case r.Status >= 400:
		return success
	case r.Err != nil:
		return failure
	}
	return success
}

// sample is the latency the result contributes to the instance's average:
// the time to first token when known, else the whole latency.
func (r *Result) sample() time.Duration {
	if r.TTFT > 0 {
		return r.TTFT
	}
	return r.Latency
}

// Picked is the instance chosen for one attempt. It is a small value, safe
// to copy; exactly one copy must have Done called on it, exactly once.
type Picked struct {
	Instance *discovery.Instance

	st      *stats // nil for pickers without statistics
	gen     uint32 // breaker generation at the pick
	probe   bool   // holds one of the half-open breaker's probe slots
	counted bool   // the outcome goes to the breaker (false for panic picks)
}

// Done reports the outcome of the attempt: it releases the in-flight slot
// and feeds the instance's latency average, failure count and breaker. Call
// it exactly once, from any goroutine.
func (p Picked) Done(r Result) {
	if p.st != nil {
		p.st.done(&p, &r)
	}
}

// Picker chooses an instance. Implementations are safe for concurrent use.
type Picker interface {
	Pick(req *Request) (Picked, error)
}
