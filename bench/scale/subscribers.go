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
// service that, like a replica's watcher, read a service's list over HTTP
// after each push, from a goroutine of their own.
type subscribers struct {
	clients       []naming_client.INamingClient
	todo          chan string
	done          chan struct{}
	wg            sync.WaitGroup
	pushes, reads atomic.Int64
	http          *http.Client
	addr, group   string
}

func subscribe(o Options, group string) (*subscribers, error) {
	s := &subscribers{todo: make(chan string, 1<<16), done: make(chan struct{}), addr: o.NacosAddr, group: group,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	for range 8 { // the reads, 8 at a time as a watcher's
		s.wg.Go(s.read)
	}
	for n := range o.Subscribers {
		c, err := namingClient(o, fmt.Sprintf("subscriber-%d", n))
		if err != nil {
			return s, err
		}
		s.clients = append(s.clients, c)
		for i := range o.Services {
			name := svcName(i)
			err := c.Subscribe(&vo.SubscribeParam{ServiceName: name, GroupName: group,
				SubscribeCallback: func([]model.Instance, error) {
					s.pushes.Add(1)
					select {
					case s.todo <- name:
					default: // a full queue: the read of a later push covers it
					}
				}})
			if err != nil {
				return s, fmt.Errorf("scale: subscribe %s: %w", name, err)
			}
		}
	}
	// The SDK calls back inside Subscribe: wait for the reads those first
	// callbacks queued, so that the burst's figures are the burst's.
	for deadline := time.Now().Add(2 * time.Minute); len(s.todo) > 0; time.Sleep(50 * time.Millisecond) { // polling the queue
		if time.Now().After(deadline) {
			return s, fmt.Errorf("scale: the subscribers' first reads did not end within 2 minutes")
		}
	}
	return s, nil
}

func (s *subscribers) read() {
	for {
		select {
		case <-s.done:
			return
		case name := <-s.todo:
			q := url.Values{"serviceName": {name}, "groupName": {s.group}, "healthyOnly": {"false"}}
			if resp, err := s.http.Get("http://" + s.addr + "/nacos/v1/ns/instance/list?" + q.Encode()); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.reads.Add(1)
			}
		}
	}
}

func (s *subscribers) close() {
	for _, c := range s.clients {
		c.CloseClient()
	}
	close(s.done)
	s.wg.Wait()
	s.http.CloseIdleConnections()
}
