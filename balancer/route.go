package balancer

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/modelgate/modelgate/discovery"
)

// maxVersions bounds a split, so that a pick can track tried versions in
// one word.
const maxVersions = 64

// Route says which instances serve a route and how its traffic divides.
type Route struct {
	// Name is what Request.Route names; required and unique.
	Name string
	// Service is the pool key "GROUP@@service", or a service name in
	// discovery.DefaultGroup; required.
	Service string
	// Models are the names the route goes by (its model, aliases, upstream
	// model). An instance whose metadata lists the models it serves is
	// picked only if one of them is here (discovery.Instance.ServesAny);
	// instances that list none serve any route of their service. Nil means
	// no check.
	Models []string
	// Tags are required: only instances carrying all of them are picked.
	// Nil means any instance.
	Tags map[string]string
	// Prefer are preferred tags: instances carrying all of them are picked
	// while any is available (usable, breaker not open, below its
	// max_concurrency); else the others are. Nil means no preference.
	Prefer map[string]string
	// Split divides traffic between versions (metadata "version") by
	// relative weight, e.g. {"v1": 90, "v2": 10}, however many instances
	// each version has; within a version Nacos weights decide. Versions not
	// in a non-empty Split get no traffic; a version with no available
	// instance gives its share to the others. Nil means every version, each
	// taking the sum of its instances' Nacos weights as its share, so a
	// canary by Nacos weight holds under any load.
	Split map[string]int
	// Policy chooses within each of the route's candidate sets; nil means
	// the balancer's (WithPolicy). The engine-aware policy (package engine)
	// is usually set per route, with its own scorer weights.
	Policy Policy
	// Breaker configures the circuit breakers of the instances of the
	// route's service; nil means the balancer's (WithBreaker). Breakers are
	// per instance, so routes of one service that set it must agree. A
	// change (SetRoutes) restarts the service's breakers closed.
	Breaker *BreakerSettings
}

// Validate reports the first problem with r, naming the field.
func (r Route) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: route %q: %s", ErrBadRoute, r.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Name == "":
		return bad("name is empty")
	case r.Service == "":
		return bad("service is empty")
	case len(r.Split) > maxVersions:
		return bad("split has %d versions, at most %d", len(r.Split), maxVersions)
	}
	total := 0
	for _, v := range slices.Sorted(maps.Keys(r.Split)) {
		if r.Split[v] < 0 {
			return bad("split[%q] = %d, want ≥ 0", v, r.Split[v])
		}
		total += r.Split[v]
	}
	if len(r.Split) > 0 && total == 0 {
		return bad("split weights are all 0")
	}
	if r.Breaker != nil {
		if err := r.Breaker.Validate(); err != nil {
			return fmt.Errorf("route %q: %w", r.Name, err)
		}
	}
	return nil
}

// ValidateRoutes validates every route and that names are unique, and
// returns all the problems joined.
func ValidateRoutes(routes []Route) error {
	_, errs := sortRoutes(routes)
	return errors.Join(errs...)
}

// sortRoutes returns, in a new slice, the routes that are valid and not a
// repeat of an earlier name, and the errors of the others.
func sortRoutes(routes []Route) (good []Route, errs []error) {
	seen := make(map[string]bool, len(routes))
	breakers := map[string]Route{} // by service: the first route that sets one
	for _, r := range routes {
		err := r.Validate()
		if err == nil && seen[r.Name] {
			err = fmt.Errorf("%w: route %q: name is used twice", ErrBadRoute, r.Name)
		}
		if err == nil && r.Breaker != nil {
			if first, ok := breakers[r.serviceKey()]; !ok {
				breakers[r.serviceKey()] = r
			} else if first.Breaker.withDefaults() != r.Breaker.withDefaults() {
				err = fmt.Errorf("%w: route %q: breaker differs from route %q's, of the same service %s (breakers are per instance)",
					ErrBadRoute, r.Name, first.Name, r.serviceKey())
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seen[r.Name] = true
		good = append(good, r)
	}
	return good, errs
}

// serviceKey returns the pool key of r.Service.
func (r Route) serviceKey() string {
	return discovery.ServiceKey(discovery.SplitServiceKey(r.Service, discovery.DefaultGroup))
}

// formatTags writes tags as "k=v,k2=v2", sorted by key.
func formatTags(tags map[string]string) string {
	var sb strings.Builder
	for i, k := range slices.Sorted(maps.Keys(tags)) {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(k + "=" + tags[k])
	}
	return sb.String()
}
