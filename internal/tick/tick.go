// Package tick runs a function now and then once per interval of an
// injected clock, so that tests drive periodic work with a fake clock.
package tick

import (
	"context"
	"time"
)

// Clock schedules a call after d, as time.AfterFunc does; stop cancels it.
// degrade.Clock satisfies it.
type Clock interface {
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Every calls f at once and then each time interval() has passed on clk
// after the previous call returned, until ctx is done. interval is read
// before each wait, so a change applies from the next one. Every returns
// when ctx is done, leaving no timer behind.
func Every(ctx context.Context, clk Clock, interval func() time.Duration, f func()) {
	wake := make(chan struct{}, 1)
	for {
		f()
		stop := clk.AfterFunc(interval(), func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		select {
		case <-ctx.Done():
			stop()
			return
		case <-wake:
		}
	}
}
