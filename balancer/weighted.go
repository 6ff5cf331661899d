package balancer

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/modelgate/modelgate/discovery"
)

// Weighted picks among usable instances at random in proportion to their
// weights, with no breakers, routes or statistics. Its Picked.Done does
// nothing.
//
// It is the first cut, kept until the router uses Balancer (New with
// random.New() makes the same choice); it will then be removed. It is not
// marked Deprecated so that staticcheck stays quiet meanwhile.
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
