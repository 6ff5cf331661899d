package scale

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// subscribers stand in for more replicas: SDK clients subscribed to every
// service that, like a replica's watcher, mark a service dirty on its
// push and read the dirty services' lists over HTTP, 8 at a time, from a
// goroutine of their own.
type subscribers struct {
	subs          []*subscriber
	done          chan struct{}
	wg            sync.WaitGroup
	pushes, reads atomic.Int64
	http          *http.Client
	addr, group   string
}

type subscriber struct {
	client naming_client.INamingClient
	wake   chan struct{}
	mu     sync.Mutex
	dirty  map[string]bool // guarded by mu
	busy   bool            // reading; guarded by mu
}

func subscribe(o Options, group string) (*subscribers, error) {
	s := &subscribers{done: make(chan struct{}), addr: o.NacosAddr, group: group,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8 * o.Subscribers}}}
	for n := range o.Subscribers {
		c, err := namingClient(o, fmt.Sprintf("subscriber-%d", n))
		if err != nil {
			return s, err
		}
		sub := &subscriber{client: c, wake: make(chan struct{}, 1), dirty: map[string]bool{}}
		s.subs = append(s.subs, sub)
		s.wg.Go(func() { s.run(sub) })
		for i := range o.Services {
			name := svcName(i)
			err := c.Subscribe(&vo.SubscribeParam{ServiceName: name, GroupName: group,
				SubscribeCallback: func([]model.Instance, error) {
					s.pushes.Add(1)
					sub.mu.Lock()
					sub.dirty[name] = true
					sub.mu.Unlock()
					select {
					case sub.wake <- struct{}{}:
					default:
					}
				}})
			if err != nil {
				return s, fmt.Errorf("scale: subscribe %s: %w", name, err)
			}
		}
	}
	// The SDK calls back inside Subscribe: let the reads of those first
	// callbacks end, so that the burst's figures are the burst's.
	return s, s.drain(2 * time.Minute)
}

// run reads the services the subscriber's pushes marked, 8 at a time.
func (s *subscribers) run(sub *subscriber) {
	sem := make(chan struct{}, 8)
	for {
		select {
		case <-s.done:
			return
		case <-sub.wake:
		}
		sub.mu.Lock()
		var todo []string
		for name := range sub.dirty {
			todo = append(todo, name)
		}
		clear(sub.dirty)
		sub.busy = true
		sub.mu.Unlock()
		var wg sync.WaitGroup
		for _, name := range todo {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.read(name)
			})
		}
		wg.Wait()
		sub.mu.Lock()
		sub.busy = false
		sub.mu.Unlock()
	}
}

func (s *subscribers) read(name string) {
	q := url.Values{"serviceName": {name}, "groupName": {s.group}, "healthyOnly": {"false"}}
	if resp, err := s.http.Get("http://" + s.addr + "/nacos/v1/ns/instance/list?" + q.Encode()); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		s.reads.Add(1)
	}
}

// drain waits until no subscriber has a service to read or a read running.
func (s *subscribers) drain(within time.Duration) error {
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) { // polling the subscribers' state
		idle := true
		for _, sub := range s.subs {
			sub.mu.Lock()
			idle = idle && !sub.busy && len(sub.dirty) == 0
			sub.mu.Unlock()
		}
		if idle {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scale: the subscribers' reads did not end within %v", within)
		}
	}
}

func (s *subscribers) close() {
	for _, sub := range s.subs {
		sub.client.CloseClient()
	}
	close(s.done)
	s.wg.Wait()
	s.http.CloseIdleConnections()
}
