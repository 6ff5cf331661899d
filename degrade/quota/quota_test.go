package quota_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/degrade/quota"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// near reports whether d is within tol of want.
func near(d, want, tol time.Duration) bool { return d >= want-tol && d <= want+tol }

// The acceptance: tokens per minute 1,000 and 300-token replies, the fourth
// request in the minute is refused with a Retry-After.
func TestFourthRequestRefused(t *testing.T) {
	for _, est := range []int{
		310, // 10 prompt tokens + max_tokens 300
		266, // 10 prompt tokens + a route default of 256
		300,
	} {
		t.Run(fmt.Sprint("estimate ", est), func(t *testing.T) {
			q := quota.New(nil)
			lim := quota.Limits{TPM: 1000}
			for i := range 3 {
				now := t0.Add(time.Duration(i) * time.Second)
				r, wait, err := q.Reserve(ctx, "team-a", lim, est, now)
				if err != nil || wait != 0 {
					t.Fatalf("request %d: %v, %v", i+1, wait, err)
				}
				r.Commit(300)
			}
			// Left: 1000 − 900 + 3 s of refill (50) = 150.
			now := t0.Add(3 * time.Second)
			_, wait, err := q.Reserve(ctx, "team-a", lim, est, now)
			if !errors.Is(err, quota.ErrExceeded) {
				t.Fatalf("fourth request: %v", err)
			}
			want := time.Duration(float64(est-150) / 1000 * float64(time.Minute))
			if !near(wait, want, 10*time.Millisecond) {
				t.Fatalf("Retry-After %v, want %v", wait, want)
			}
			// Admitted once that time has passed.
			if _, _, err := q.Reserve(ctx, "team-a", lim, est, now.Add(wait)); err != nil {
				t.Fatalf("after Retry-After: %v", err)
			}
		})
	}
}

func TestRPM(t *testing.T) {
	q := quota.New(quota.NewMemory())
	lim := quota.Limits{RPM: 3}
	for i := range 3 {
		r, _, err := q.Reserve(ctx, "c", lim, 1000, t0)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		r.Commit(1000) // no TPM: tokens are not counted
	}
	_, wait, err := q.Reserve(ctx, "c", lim, 1, t0.Add(5*time.Second))
	if !errors.Is(err, quota.ErrExceeded) || !near(wait, 15*time.Second, time.Millisecond) {
		t.Fatalf("fourth: %v, %v (want 15s: one request per 20 s)", wait, err)
	}
	if _, _, err := q.Reserve(ctx, "c", lim, 1, t0.Add(20*time.Second)); err != nil {
		t.Fatalf("after 20s: %v", err)
	}
	// Other consumers have their own buckets.
	if _, _, err := q.Reserve(ctx, "d", lim, 1, t0); err != nil {
		t.Fatalf("another consumer: %v", err)
	}
}

func TestRPMAndTPMTogether(t *testing.T) {
	q := quota.New(nil)
	lim := quota.Limits{RPM: 60, TPM: 600}
	r, _, err := q.Reserve(ctx, "c", lim, 600, t0)
	if err != nil {
		t.Fatal(err)
	}
	// Tokens exhausted: refused, and the request is not taken either.
	_, wait, err := q.Reserve(ctx, "c", lim, 100, t0)
	if !errors.Is(err, quota.ErrExceeded) || !near(wait, 10*time.Second, time.Millisecond) {
		t.Fatalf("over TPM: %v, %v", wait, err)
	}
	r.Commit(0)
	for i := range 59 {
		if _, _, err := q.Reserve(ctx, "c", lim, 1, t0); err != nil {
			t.Fatalf("request %d: %v", i+2, err)
		}
	}
	if _, wait, err = q.Reserve(ctx, "c", lim, 1, t0); !errors.Is(err, quota.ErrExceeded) || !near(wait, time.Second, time.Millisecond) {
		t.Fatalf("over RPM: %v, %v", wait, err)
	}
}

func TestCommitReconciles(t *testing.T) {
	lim := quota.Limits{TPM: 1000}
	for _, tc := range []struct {
		name        string
		est, actual int
		// after settling, the largest estimate admitted at once
		fits, refused int
	}{
		{"refund", 500, 100, 900, 901},
		{"exact", 500, 500, 500, 501},
		{"charge", 100, 700, 300, 301},
		{"debt", 100, 1500, 0, 1},
		{"debt floored at a minute", 100, 50_000, 0, 1},
		{"estimate above the limit", 5000, 200, 800, 801},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := quota.New(nil)
			r, _, err := q.Reserve(ctx, "c", lim, tc.est, t0)
			if err != nil {
				t.Fatal(err)
			}
			r.Commit(tc.actual)
			r.Commit(0) // settled already: nothing happens
			r.Cancel()
			if tc.fits > 0 {
				r2, _, err := q.Reserve(ctx, "c", lim, tc.fits, t0)
				if err != nil {
					t.Fatalf("estimate %d: %v", tc.fits, err)
				}
				r2.Cancel()
			}
			if _, _, err := q.Reserve(ctx, "c", lim, tc.refused, t0); !errors.Is(err, quota.ErrExceeded) {
				t.Fatalf("estimate %d admitted", tc.refused)
			}
		})
	}
	// The floor: 50,000 tokens over a 1,000 limit wait about two minutes,
	// not fifty.
	q := quota.New(nil)
	r, _, _ := q.Reserve(ctx, "c", lim, 100, t0)
	r.Commit(50_000)
	if _, wait, _ := q.Reserve(ctx, "c", lim, 1000, t0); !near(wait, 2*time.Minute, time.Millisecond) {
		t.Fatalf("after a debt: wait %v", wait)
	}
}

func TestCancel(t *testing.T) {
	q := quota.New(nil)
	lim := quota.Limits{RPM: 1, TPM: 100}
	r, _, err := q.Reserve(ctx, "c", lim, 100, t0)
	if err != nil || r.Estimated() != 100 {
		t.Fatal(err)
	}
	if _, _, err := q.Reserve(ctx, "c", lim, 1, t0); !errors.Is(err, quota.ErrExceeded) {
		t.Fatal("second request admitted")
	}
	r.Cancel()
	r.Commit(100) // settled already
	if _, _, err := q.Reserve(ctx, "c", lim, 100, t0); err != nil {
		t.Fatalf("after Cancel: %v", err)
	}
}

func TestUnlimitedAndMinimumEstimate(t *testing.T) {
	q := quota.New(nil)
	r, wait, err := q.Reserve(ctx, "c", quota.Limits{}, 1_000_000, t0)
	if err != nil || wait != 0 || r.Estimated() != 0 {
		t.Fatalf("unlimited: %v %v", wait, err)
	}
	r.Commit(5)
	r.Cancel()
	quota.Reservation{}.Commit(1)
	// A zero estimate still reserves one token.
	lim := quota.Limits{TPM: 2}
	for i := range 2 {
		if _, _, err := q.Reserve(ctx, "z", lim, 0, t0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, _, err := q.Reserve(ctx, "z", lim, 0, t0); !errors.Is(err, quota.ErrExceeded) {
		t.Fatal("third zero-estimate request admitted")
	}
}

func TestLimitsShrink(t *testing.T) {
	q := quota.New(nil)
	if _, _, err := q.Reserve(ctx, "c", quota.Limits{TPM: 10_000}, 1, t0); err != nil {
		t.Fatal(err)
	}
	// The limit drops to 100: the bucket holds at most 100 at once, and an
	// estimate of 101 needs only a full bucket.
	if _, _, err := q.Reserve(ctx, "c", quota.Limits{TPM: 100}, 101, t0); err != nil {
		t.Fatalf("capped estimate refused: %v", err)
	}
	if _, _, err := q.Reserve(ctx, "c", quota.Limits{TPM: 100}, 1, t0); !errors.Is(err, quota.ErrExceeded) {
		t.Fatal("bucket above the new limit")
	}
}

// failing is a Store whose every call fails.
type failing struct{}

func (failing) Take(context.Context, string, quota.Limits, int, time.Time) (time.Duration, bool, error) {
	return 0, false, errors.New("down")
}

func (failing) Give(context.Context, string, quota.Limits, int, int) error {
	return errors.New("down")
}

func TestStoreFailure(t *testing.T) {
	q := quota.New(failing{})
	_, _, err := q.Reserve(ctx, "c", quota.Limits{RPM: 1}, 1, t0)
	if err == nil || errors.Is(err, quota.ErrExceeded) {
		t.Fatalf("store failure: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	q := quota.New(nil)
	lim := quota.Limits{RPM: 1000, TPM: 100_000}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := range 8 {
		wg.Go(func() {
			for range 200 {
				r, _, err := q.Reserve(ctx, fmt.Sprint("c", g%2), lim, 10, t0)
				if err == nil {
					mu.Lock()
					admitted++
					mu.Unlock()
					r.Commit(10)
				}
			}
		})
	}
	wg.Wait()
	if admitted != 1600 {
		t.Fatalf("admitted %d of 1600 within limits", admitted)
	}
	// Each consumer has now used 800 of its 1,000 requests.
	for c := range 2 {
		for i := range 200 {
			if _, _, err := q.Reserve(ctx, fmt.Sprint("c", c), lim, 10, t0); err != nil {
				t.Fatalf("consumer %d request %d: %v", c, i, err)
			}
		}
		if _, _, err := q.Reserve(ctx, fmt.Sprint("c", c), lim, 10, t0); !errors.Is(err, quota.ErrExceeded) {
			t.Fatalf("consumer %d over its RPM admitted", c)
		}
	}
}
