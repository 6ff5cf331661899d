package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/discovery/nacos"
)

// nacosSync is a canary.Sync over one Nacos Config entry.
type nacosSync struct {
	client        *nacos.ConfigClient
	dataID, group string
}

func (s nacosSync) Get() (string, error) { return s.client.Get(s.dataID, s.group) }

func (s nacosSync) Publish(content, prev string) (bool, error) {
	return s.client.CompareAndPublish(s.dataID, s.group, content, prev)
}

// canarySync returns the canary controller's options for canary_sync.
func (d *daemon) canarySync() ([]canary.Option, error) {
	cs := d.cfg.CanarySync
	if cs == nil {
		return nil, nil
	}
	client, err := nacos.DialConfig(nacosClientConfig(d.cfg.Discovery.Nacos))
	if err != nil {
		return nil, err
	}
	d.canaryCfg = client
	d.closers = append(d.closers, client.Close)
	host, _ := os.Hostname()
	replica := fmt.Sprintf("%s/%d", host, os.Getpid()) // until the listener's address is known
	return []canary.Option{canary.WithSync(nacosSync{client, cs.DataID, cs.Group}, replica)}, nil
}

// loadCanarySync follows the rollouts already in the canary_sync entry, so
// that a restart resumes (or stays aborted) where the replicas are.
func (d *daemon) loadCanarySync() error {
	if d.canaryCfg == nil {
		return nil
	}
	cs := d.cfg.CanarySync
	cur, err := d.canaryCfg.Get(cs.DataID, cs.Group)
	if err != nil {
		return fmt.Errorf("canary_sync: %w", err)
	}
	if cur != "" {
		d.router.Canary().Follow(cur)
	}
	return nil
}

// runCanarySync follows every change of the canary_sync entry until ctx
// is done.
func (d *daemon) runCanarySync(ctx context.Context) {
	if d.canaryCfg == nil {
		return
	}
	cs := d.cfg.CanarySync
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { d.canaryCfg.Watch(ctx, cs.DataID, cs.Group, time.Second, d.router.Canary().Follow) })
	// Nacos's long poll can take a second or more to announce a change on
	// a loaded server; an abort should not wait that long, so the entry is
	// also read every canaryPoll.
	t := time.NewTicker(canaryPoll)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if cur, err := d.canaryCfg.Get(cs.DataID, cs.Group); err == nil && cur != "" && cur != last {
				last = cur
				d.router.Canary().Follow(cur)
			}
		}
	}
}

// canaryPoll is how often the canary_sync entry is read besides the watch.
const canaryPoll = 500 * time.Millisecond
