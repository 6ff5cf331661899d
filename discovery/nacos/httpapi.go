package nacos

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/model"
)

// httpAPI calls a Nacos server's v1 HTTP API, served by Nacos 1.x, 2.x and
// 3.x, trying each configured server in turn, logging in when a username is
// set and signing requests when an access key is.
//
// Instance lists are read here rather than from the SDK: the SDK's cached
// lists are sorted in place by the SDK's goroutines on every push, so
// reading them from ours is a data race (nacos-sdk-go v2.3.5,
// naming_cache.isServiceInstanceChanged). Services are listed here too: the
// SDK turns a failed login into an empty listing. Nacos Config is watched
// here as well: the SDK's config client races with itself on CloseClient.
type httpAPI struct {
	servers   []string // "host:port"
	scheme    string   // "http" or "https"
	namespace string
	username  string
	password  string
	accessKey string
	secretKey string
	client    *http.Client
	calls     atomic.Uint64 // requests sent, logins included

	mu      sync.Mutex
	next    int // server to try first: random at start, then the last that answered
	login   int // index in loginPaths of the login API the servers serve
	token   string
	expires time.Time
}

func newHTTPAPI(cfg ClientConfig) (*httpAPI, error) {
	r := &httpAPI{
		servers: cfg.Servers, scheme: "http", namespace: cfg.Namespace, username: cfg.Username, password: cfg.Password,
		accessKey: cfg.AccessKey, secretKey: cfg.SecretKey,
		client: &http.Client{Timeout: time.Duration(cfg.TimeoutMs) * time.Millisecond},
		// Each process starts at a random server, as the SDK does for its
		// gRPC connection, so that replicas configured alike spread their
		// reads over a cluster instead of all reading from the first.
		next: firstServer(len(cfg.Servers)),
	}
	if cfg.TLS != nil {
		tc, err := cfg.TLS.config()
		if err != nil {
			return nil, err
		}
		r.scheme = "https"
		r.client.Transport = &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	}
	return r, nil
}

// firstServer picks the server a new client tries first (a test may fix it).
var firstServer = func(n int) int { return rand.IntN(max(n, 1)) }

// config builds the TLS client config: the CA file's certificates are the
// only roots trusted.
func (t *TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nacos: tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nacos: tls ca_file %s: no PEM certificate in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
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
	r.sign(q, group+"@@"+service)
	body, err := r.get("/nacos/v1/ns/instance/list", q)
	if err != nil {
		return nil, err
	}
	var list instanceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("nacos: instance list: %w", err)
	}
	return list.Hosts, nil
}

// services returns one page of the service names of group, and the total.
func (r *httpAPI) services(group string, page, size int) ([]string, int, error) {
	q := url.Values{"groupName": {group}, "pageNo": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(size)}}
	if r.namespace != "" {
		q.Set("namespaceId", r.namespace)
	}
	r.sign(q, "")
	body, err := r.get("/nacos/v1/ns/service/list", q)
	if err != nil {
		return nil, 0, err
	}
	var list struct {
		Count int      `json:"count"`
		Doms  []string `json:"doms"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, 0, fmt.Errorf("nacos: service list: %w", err)
	}
	return list.Doms, list.Count, nil
}

// get is a GET that wants 200; a refusal is ErrAuth.
func (r *httpAPI) get(path string, q url.Values) ([]byte, error) {
	body, status, err := r.call(context.Background(), http.MethodGet, path, q, nil, 0)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s: status %d: %s", ErrAuth, path, status, serverMessage(body))
	case status != http.StatusOK:
		return nil, fmt.Errorf("nacos: %s: status %d: %.200s", path, status, body)
	}
	return body, nil
}

// sign adds the access-key signature that Nacos's naming API checks when
// an access key is configured: HMAC-SHA1 of "millis@@GROUP@@service" (or
// of "millis" alone) with the secret key, base64, as the SDK sends it.
func (r *httpAPI) sign(q url.Values, resource string) {
	if r.accessKey == "" {
		return
	}
	data := strconv.FormatInt(time.Now().UnixMilli(), 10)
	if resource != "" {
		data += "@@" + resource
	}
	q.Set("ak", r.accessKey)
	q.Set("data", data)
	q.Set("signature", signHMACSHA1(data, r.secretKey))
}

func signHMACSHA1(data, key string) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// serverMessage is the readable part of a Nacos error body (plain text, or
// JSON with a message field), cut to 200 bytes.
func serverMessage(body []byte) string {
	var j struct {
		Message string `json:"message"`
		Data    any    `json:"data"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &j) == nil && j.Message != "" {
		msg = j.Message
		if s, ok := j.Data.(string); ok && s != "" {
			msg += ": " + s
		}
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// call sends one request to the first server that answers; q goes in the
// URL, form (if not nil) in the body. timeout 0 uses the client's. A login
// refused by a server is an answer: it is returned as ErrAuth at once,
// without trying the other servers.
func (r *httpAPI) call(ctx context.Context, method, path string, q, form url.Values, timeout time.Duration) ([]byte, int, error) {
	return r.callWith(ctx, method, path, q, form, timeout, nil)
}

// callWith is call with extra request headers.
func (r *httpAPI) callWith(ctx context.Context, method, path string, q, form url.Values, timeout time.Duration, hdr http.Header) ([]byte, int, error) {
	r.mu.Lock()
	start := r.next
	r.mu.Unlock()
	var lastErr error
	for i := range r.servers {
		n := (start + i) % len(r.servers)
		body, status, err := r.callOne(ctx, r.servers[n], method, path, q, form, timeout, hdr)
		if err == nil || errors.Is(err, ErrAuth) {
			r.mu.Lock()
			r.next = n
			r.mu.Unlock()
			return body, status, err
		}
		lastErr = err
	}
	return nil, 0, lastErr
}

func (r *httpAPI) callOne(ctx context.Context, server, method, path string, q, form url.Values, timeout time.Duration, hdr http.Header) ([]byte, int, error) {
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
	req, err := http.NewRequestWithContext(ctx, method, r.scheme+"://"+server+path+"?"+q.Encode(), rd)
	if err != nil {
		return nil, 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	client := r.client
	if timeout > 0 {
		req.Header.Set("Long-Pulling-Timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
		client = &http.Client{Transport: r.client.Transport, Timeout: timeout + r.client.Timeout}
	}
	r.calls.Add(1)
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
		return nil, resp.StatusCode, &statusError{server: server, status: resp.Status, body: body}
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

// Login APIs: Nacos 3's own first; Nacos 1.x and 2.x have only the older
// one (Nacos 3 serves it too, but answers a wrong password there with a
// compatibility error instead of the reason).
var loginPaths = []string{"/nacos/v3/auth/user/login", "/nacos/v1/auth/users/login"}

// accessToken logs in when Nacos auth is on, and reuses the token for half
// its lifetime. A login the server refuses is ErrAuth with the server's
// message; one that could not be sent is a plain error.
func (r *httpAPI) accessToken(server string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.token != "" && time.Now().Before(r.expires) {
		return r.token, nil
	}
	var (
		status int
		body   []byte
		err    error
	)
	for i := r.login; i < len(loginPaths); i++ {
		status, body, err = r.loginOnce(server, loginPaths[i])
		if err != nil {
			return "", err
		}
		if status != http.StatusNotFound && status != http.StatusGone {
			r.login = i
			break
		}
	}
	// Nacos 3 answers a wrong password with 500 (its message only where
	// server.error.include-message is on, as in its distribution's
	// config): only a gateway's "unavailable" is a failure to reach it.
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "", fmt.Errorf("nacos: %s: login: status %d: %.200s", server, status, body)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
		TokenTTL    int64  `json:"tokenTtl"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		return "", fmt.Errorf("%w: %s: login as %q refused: status %d: %s", ErrAuth, server, r.username, status, serverMessage(body))
	}
	r.token, r.expires = out.AccessToken, time.Now().Add(time.Duration(out.TokenTTL)*time.Second/2)
	return r.token, nil
}

func (r *httpAPI) loginOnce(server, path string) (int, []byte, error) {
	form := url.Values{"username": {r.username}, "password": {r.password}}
	r.calls.Add(1)
	resp, err := r.client.Post(r.scheme+"://"+server+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// statusError is a 5xx answer from a Nacos server.
type statusError struct {
	server, status string
	body           []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("nacos: %s: %s: %.200s", e.server, e.status, e.body)
}
