package nacos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"
)

// httpAPI calls a Nacos server's v1 HTTP API, served by Nacos 1.x, 2.x and
// 3.x, trying each configured server in turn and logging in when Nacos auth
// is on.
//
// Instance lists are read here rather than from the SDK: the SDK's cached
// lists are sorted in place by the SDK's goroutines on every push, so
// reading them from ours is a data race (nacos-sdk-go v2.3.5,
// naming_cache.isServiceInstanceChanged). Nacos Config is watched here
// too: the SDK's config client races with itself on CloseClient.
type httpAPI struct {
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

func newHTTPAPI(cfg ClientConfig) *httpAPI {
	return &httpAPI{
		servers: cfg.Servers, namespace: cfg.Namespace, username: cfg.Username, password: cfg.Password,
		client: &http.Client{Timeout: time.Duration(cfg.TimeoutMs) * time.Millisecond},
	}
}

type instanceList struct {
	Hosts []model.Instance `json:"hosts"`
}

// instances returns every instance Nacos sends subscribers (enabled ones,
// healthy or not) of service in group.
func (r *httpAPI) instances(group, service string) ([]model.Instance, error) {
	q := url.Values{"serviceName": {service}, "groupName": {group}, "healthyOnly": {"false"}}
	if r.namespace != "" {
		q.Set("namespaceId", r.namespace)
	}
	body, status, err := r.call(context.Background(), http.MethodGet, "/nacos/v1/ns/instance/list", q, nil, 0)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("nacos: instance list: status %d: %.200s", status, body)
	}
	var list instanceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("nacos: instance list: %w", err)
	}
	return list.Hosts, nil
}

// call sends one request to the first server that answers; q goes in the
// URL, form (if not nil) in the body. timeout 0 uses the client's.
func (r *httpAPI) call(ctx context.Context, method, path string, q, form url.Values, timeout time.Duration) ([]byte, int, error) {
	r.mu.Lock()
	start := r.next
	r.mu.Unlock()
	var lastErr error
	for i := range r.servers {
		n := (start + i) % len(r.servers)
		body, status, err := r.callOne(ctx, r.servers[n], method, path, q, form, timeout)
		if err == nil {
			r.mu.Lock()
			r.next = n
			r.mu.Unlock()
			return body, status, nil
		}
		lastErr = err
	}
	return nil, 0, lastErr
}

func (r *httpAPI) callOne(ctx context.Context, server, method, path string, q, form url.Values, timeout time.Duration) ([]byte, int, error) {
	q = cloneValues(q)
	if r.username != "" {
		tok, err := r.accessToken(server)
		if err != nil {
			return nil, 0, err
		}
		q.Set("accessToken", tok)
	}
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+server+path+"?"+q.Encode(), rd)
	if err != nil {
		return nil, 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	client := r.client
	if timeout > 0 {
		req.Header.Set("Long-Pulling-Timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
		client = &http.Client{Transport: r.client.Transport, Timeout: timeout + r.client.Timeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
		r.mu.Lock()
		r.token = "" // log in again next time
		r.mu.Unlock()
	}
	if resp.StatusCode >= 500 {
		return nil, resp.StatusCode, fmt.Errorf("nacos: %s: %s: %.200s", server, resp.Status, body)
	}
	return body, resp.StatusCode, nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	return out
}

// accessToken logs in when Nacos auth is on, and reuses the token for half
// its lifetime.
func (r *httpAPI) accessToken(server string) (string, error) {
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
