package nacos

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// ConfigClient reads, watches and publishes Nacos Config entries over the
// HTTP API (modelgate's routing config can live there). It is safe for
// concurrent use.
type ConfigClient struct {
	api *httpAPI
}

// DialConfig returns a Nacos Config client; cfg is as for Dial (CacheDir
// and LogDir are not used).
func DialConfig(cfg ClientConfig) (*ConfigClient, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("nacos: no servers configured")
	}
	if cfg.TimeoutMs == 0 {
		cfg.TimeoutMs = 5000
	}
	api, err := newHTTPAPI(cfg)
	if err != nil {
		return nil, err
	}
	return &ConfigClient{api: api}, nil
}

func (c *ConfigClient) params(dataID, group string) url.Values {
	q := url.Values{"dataId": {dataID}, "group": {group}}
	if c.api.namespace != "" {
		q.Set("tenant", c.api.namespace)
	}
	return q
}

// Get returns the content of dataID in group; "" if there is none.
func (c *ConfigClient) Get(dataID, group string) (string, error) {
	body, status, err := c.api.call(context.Background(), http.MethodGet, "/nacos/v1/cs/configs", c.params(dataID, group), nil, 0)
	// Nacos answers 409 "requested file is being modified" to a read that
	// meets a write: retry for a moment.
	for i := 0; err == nil && status == http.StatusConflict && i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		body, status, err = c.api.call(context.Background(), http.MethodGet, "/nacos/v1/cs/configs", c.params(dataID, group), nil, 0)
	}
	switch {
	case err != nil:
		return "", fmt.Errorf("nacos: get config %s/%s: %w", group, dataID, err)
	case status == http.StatusNotFound:
		return "", nil
	case status != http.StatusOK:
		return "", fmt.Errorf("nacos: get config %s/%s: status %d: %.200s", group, dataID, status, body)
	}
	return string(body), nil
}

// Publish writes content to dataID in group.
func (c *ConfigClient) Publish(dataID, group, content string) error {
	form := c.params(dataID, group)
	form.Set("content", content)
	form.Set("type", "yaml")
	body, status, err := c.api.call(context.Background(), http.MethodPost, "/nacos/v1/cs/configs", nil, form, 0)
	if err != nil || status != http.StatusOK || string(body) != "true" {
		return fmt.Errorf("nacos: publish config %s/%s: status %d %.200s: %v", group, dataID, status, body, err)
	}
	return nil
}

// CompareAndPublish writes content to dataID in group if the entry still
// holds prev (Nacos compares the MD5 of its content, the casMd5 header);
// it reports false, with no error, when the entry changed meanwhile. With
// prev "" it publishes unconditionally: Nacos cannot compare against an
// entry that does not exist yet.
func (c *ConfigClient) CompareAndPublish(dataID, group, content, prev string) (bool, error) {
	form := c.params(dataID, group)
	form.Set("content", content)
	form.Set("type", "yaml")
	var hdr http.Header
	if prev != "" {
		sum := md5.Sum([]byte(prev))
		hdr = http.Header{"Casmd5": {hex.EncodeToString(sum[:])}}
	}
	body, status, err := c.api.callWith(context.Background(), http.MethodPost, "/nacos/v1/cs/configs", nil, form, 0, hdr)
	var se *statusError
	switch {
	case prev != "" && errors.As(err, &se) && string(se.body) == "false":
		return false, nil // Nacos 3 answers 500 "false" when the MD5 no longer matches
	case err != nil:
		return false, fmt.Errorf("nacos: publish config %s/%s: %w", group, dataID, err)
	case status == http.StatusOK && string(body) == "true":
		return true, nil
	case prev != "" && status == http.StatusOK && string(body) == "false":
		return false, nil
	}
	return false, fmt.Errorf("nacos: publish config %s/%s: status %d %.200s", group, dataID, status, body)
}

// Watch calls onChange with the content of dataID in group, first with the
// current content (if there is any) and then on every change, from its own
// goroutine, until ctx is done. It long-polls Nacos, so a change arrives
// within a network round trip; errors are retried every retry (default 1s).
func (c *ConfigClient) Watch(ctx context.Context, dataID, group string, retry time.Duration, onChange func(content string)) {
	if retry <= 0 {
		retry = time.Second
	}
	const poll = 30 * time.Second
	cur, curMD5 := "", ""
	first := true
	for ctx.Err() == nil {
		if !first {
			q := url.Values{"Listening-Configs": {dataID + "\x02" + group + "\x02" + curMD5 + tenantPart(c.api.namespace) + "\x01"}}
			body, status, err := c.api.call(ctx, http.MethodPost, "/nacos/v1/cs/configs/listener", nil, q, poll)
			if err != nil || status != http.StatusOK {
				sleepCtx(ctx, retry)
				continue
			}
			if len(body) == 0 {
				continue // no change within the poll
			}
		}
		content, err := c.Get(dataID, group)
		if err != nil {
			sleepCtx(ctx, retry)
			continue
		}
		sum := md5.Sum([]byte(content))
		if m := hex.EncodeToString(sum[:]); m != curMD5 || first {
			if content != "" && (content != cur || first) {
				onChange(content)
			}
			cur, curMD5 = content, m
			if content == "" {
				curMD5 = ""
			}
		}
		first = false
	}
}

func tenantPart(ns string) string {
	if ns == "" {
		return ""
	}
	return "\x02" + ns
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Close closes idle connections.
func (c *ConfigClient) Close() { c.api.client.CloseIdleConnections() }
