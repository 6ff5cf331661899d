package balancer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/modelgate/modelgate/discovery"
)

// ErrNoInstance means no usable instance matches the request. Errors
// returned by Pick wrap it with the reason.
var ErrNoInstance = errors.New("balancer: no available instance")

// Request says what a pick must satisfy. Pickers do not keep it.
type Request struct {
	Route   string            // route name, for statistics
	Service string            // pool key, "GROUP@@service"
	Model   string            // model name the client asked for
	Tags    map[string]string // tags an instance must carry
	Exclude []string          // IDs of instances already tried
}

// Result is the outcome of one upstream attempt.
type Result struct {
	Err     error         // nil on success
	Status  int           // HTTP status from upstream, 0 if none
	Latency time.Duration // until the reply (or the stream) ended
	TTFT    time.Duration // until the first token, for streams
}

// Picked is the instance chosen for one attempt.
type Picked struct {
	Instance *discovery.Instance
	done     func(Result)
}

// Done reports the outcome of the attempt. Call it exactly once.
func (p Picked) Done(r Result) {
	if p.done != nil {
		p.done(r)
	}
}

// Picker chooses an instance. Implementations are safe for concurrent use.
type Picker interface {
	Pick(req *Request) (Picked, error)
}

// Weighted picks among usable instances at random in proportion to their
// weights.
type Weighted struct {
	pool *discovery.Pool
}

var _ Picker = (*Weighted)(nil)

// NewWeighted returns a weighted random picker over pool.
func NewWeighted(pool *discovery.Pool) *Weighted { return &Weighted{pool: pool} }

// Pick implements Picker.
func (w *Weighted) Pick(req *Request) (Picked, error) {
	svc := w.pool.Snapshot().Service(req.Service)
	if svc == nil {
		return Picked{}, fmt.Errorf("%w: service %s is not known", ErrNoInstance, req.Service)
	}
	var total float64
	for _, in := range svc.Instances {
		if eligible(in, req) {
			total += in.Weight
		}
	}
	if total == 0 {
		return Picked{}, fmt.Errorf("%w: service %s has no usable instance", ErrNoInstance, req.Service)
	}
	x := rand.Float64() * total
	var last *discovery.Instance
	for _, in := range svc.Instances {
		if !eligible(in, req) {
			continue
		}
		last = in
		if x -= in.Weight; x < 0 {
			break
		}
	}
	return Picked{Instance: last}, nil
}

func eligible(in *discovery.Instance, req *Request) bool {
	return in.Usable() && in.HasTags(req.Tags) && !slices.Contains(req.Exclude, in.ID())
}
