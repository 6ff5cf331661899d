package nacos

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"
)

// instanceReader reads a service's instance list straight from a Nacos
// server's HTTP API (GET /nacos/v1/ns/instance/list, served by Nacos 1.x,
// 2.x and 3.x). The list it returns is the caller's own: the SDK's cached
// lists are sorted in place by the SDK's goroutines on every push, so
// reading them from ours is a data race (nacos-sdk-go v2.3.5,
// naming_cache.isServiceInstanceChanged).
type instanceReader struct {
	servers   []string // "host:port"
	namespace string
	username  string
	password  string
	client    *http.Client

	mu      sync.Mutex
	next    int // server to try first
	token   string
	expires time.Time
}

func newInstanceReader(cfg ClientConfig) *instanceReader {
	return &instanceReader{
		servers: cfg.Servers, namespace: cfg.Namespace, username: cfg.Username, password: cfg.Password,
		client: &http.Client{Timeout: time.Duration(cfg.TimeoutMs) * time.Millisecond},
	}
}

type instanceList struct {
	Hosts []model.Instance `json:"hosts"`
}

// instances returns every instance Nacos sends subscribers (enabled ones,
// healthy or not) of service in group, trying each server in turn.
func (r *instanceReader) instances(group, service string) ([]model.Instance, error) {
	q := url.Values{"serviceName": {service}, "groupName": {group}, "healthyOnly": {"false"}}
	if r.namespace != "" {
		q.Set("namespaceId", r.namespace)
	}
	r.mu.Lock()
	start := r.next
	r.mu.Unlock()
	var lastErr error
	for i := range r.servers {
		n := (start + i) % len(r.servers)
		list, err := r.get(r.servers[n], q)
		if err == nil {
			r.mu.Lock()
			r.next = n
			r.mu.Unlock()
			return list.Hosts, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (r *instanceReader) get(server string, q url.Values) (*instanceList, error) {
	if r.username != "" {
		tok, err := r.accessToken(server)
		if err != nil {
			return nil, err
		}
		q.Set("accessToken", tok)
	}
	resp, err := r.client.Get("http://" + server + "/nacos/v1/ns/instance/list?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
		r.mu.Lock()
		r.token = "" // log in again next time
		r.mu.Unlock()
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nacos: %s: %s: %.200s", server, resp.Status, body)
	}
	var list instanceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("nacos: %s: instance list: %w", server, err)
	}
	return &list, nil
}

// accessToken logs in when Nacos auth is on, and reuses the token for half
// its lifetime.
func (r *instanceReader) accessToken(server string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.token != "" && time.Now().Before(r.expires) {
		return r.token, nil
	}
	form := url.Values{"username": {r.username}, "password": {r.password}}
	resp, err := r.client.Post("http://"+server+"/nacos/v1/auth/login", "application/x-www-form-urlencoded",
		strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"accessToken"`
		TokenTTL    int64  `json:"tokenTtl"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || out.AccessToken == "" {
		return "", fmt.Errorf("nacos: %s: login failed: %s", server, resp.Status)
	}
	r.token, r.expires = out.AccessToken, time.Now().Add(time.Duration(out.TokenTTL)*time.Second/2)
	return r.token, nil
}
