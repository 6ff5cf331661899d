package quota_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/modelgate/modelgate/degrade/quota"
)

// With 1,000 tokens a minute and 300-token replies, the fourth request in
// the minute is refused.
func ExampleQuotas_Reserve() {
	q := quota.New(nil)
	lim := quota.Limits{RPM: 600, TPM: 1000}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const estimate = 10 + 300 // prompt tokens + max_tokens
	for i := range 4 {
		r, retry, err := q.Reserve(context.Background(), "team-a", lim, estimate, now)
		if errors.Is(err, quota.ErrExceeded) {
			fmt.Printf("request %d: 429, Retry-After: %.0f\n", i+1, math.Ceil(retry.Seconds()))
			continue
		}
		r.Commit(300) // the usage of the reply
		fmt.Printf("request %d: 200\n", i+1)
	}
	// Output:
	// request 1: 200
	// request 2: 200
	// request 3: 200
	// request 4: 429, Retry-After: 13
}
