package degrade

import (
	"fmt"
	"strconv"
	"strings"
)

// Tier is a route's degradation level. Higher tiers include the measures of
// the lower ones: a route in TierCap also sheds its sheddable traffic.
type Tier uint8

// The tiers, in order of severity.
const (
	// TierNormal serves every request as usual.
	TierNormal Tier = iota
	// TierShed answers sheddable routes with 503 and Retry-After, or sends
	// them to their fallback route.
	TierShed
	// TierCap enforces the route's concurrency cap; excess requests wait in
	// a bounded priority queue until their deadline.
	TierCap
	// TierCache answers from the reply cache, stale entries included; a
	// miss still tries upstream.
	TierCache
)

// NumTiers is the number of tiers; valid tiers are below it.
const NumTiers = 4

var tierNames = [NumTiers]string{"normal", "shed", "cap", "cache"}

// String returns the tier's name: "normal", "shed", "cap" or "cache".
func (t Tier) String() string {
	if t < NumTiers {
		return tierNames[t]
	}
	return "tier(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText encodes the tier as its name, for JSON and YAML.
func (t Tier) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("degrade: marshal tier %d: %w", uint8(t), ErrBadTier)
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a tier's name or number, as ParseTier.
func (t *Tier) UnmarshalText(b []byte) error {
	v, err := ParseTier(string(b))
	if err == nil {
		*t = v
	}
	return err
}

// Valid reports whether t is one of the four tiers.
func (t Tier) Valid() bool { return t < NumTiers }

// ParseTier accepts a tier's number ("0"–"3") or its name, in any case, as
// the admin API receives it. It does not accept "auto": unpinning is the
// caller's word, not a tier.
func ParseTier(s string) (Tier, error) {
	for i, name := range tierNames {
		if strings.EqualFold(s, name) || s == strconv.Itoa(i) {
			return Tier(i), nil
		}
	}
	return 0, fmt.Errorf("degrade: parse tier %q: %w", s, ErrBadTier)
}
