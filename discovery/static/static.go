// Package static feeds a discovery.Pool from a fixed list of instances: a
// YAML file that is re-read when it changes, or a list given in code (the
// embedded default of `modelgate demo`).
package static

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/modelgate/modelgate/discovery"
)

// Entry is one instance in a static pool file.
type Entry struct {
	Service  string            `yaml:"service"`
	Group    string            `yaml:"group"`   // default discovery.DefaultGroup
	Addr     string            `yaml:"addr"`    // "host:port"
	Weight   *float64          `yaml:"weight"`  // default 1
	Healthy  *bool             `yaml:"healthy"` // default true
	Enabled  *bool             `yaml:"enabled"` // default true
	Metadata map[string]string `yaml:"metadata"`
}

// File is the layout of a static pool file.
type File struct {
	Instances []Entry `yaml:"instances"`
}

// Parse decodes a pool file, rejecting unknown fields, and returns its
// instances grouped by service key.
func Parse(data []byte) (map[string][]*discovery.Instance, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("static: %w", err)
	}
	return Group(f.Instances)
}

// Group turns entries into instances grouped by service key.
func Group(entries []Entry) (map[string][]*discovery.Instance, error) {
	out := map[string][]*discovery.Instance{}
	for i, e := range entries {
		if e.Service == "" {
			return nil, fmt.Errorf("static: instances[%d]: service is required", i)
		}
		host, portStr, err := net.SplitHostPort(e.Addr)
		if err != nil {
			return nil, fmt.Errorf("static: instances[%d].addr %q: %w", i, e.Addr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("static: instances[%d].addr %q: bad port", i, e.Addr)
		}
		in := &discovery.Instance{
			Service: e.Service, Group: e.Group, Host: host, Port: port,
			Weight: 1, Healthy: true, Enabled: true, Metadata: e.Metadata,
		}
		if e.Weight != nil {
			in.Weight = *e.Weight
		}
		if e.Healthy != nil {
			in.Healthy = *e.Healthy
		}
		if e.Enabled != nil {
			in.Enabled = *e.Enabled
		}
		key := discovery.ServiceKey(e.Group, e.Service)
		out[key] = append(out[key], in)
	}
	return out, nil
}

// Source is a discovery.Source over a static list.
type Source struct {
	path     string
	interval time.Duration
	log      zerolog.Logger
	fixed    map[string][]*discovery.Instance
}

var _ discovery.Source = (*Source)(nil)

// Option sets an optional knob of a file Source.
type Option func(*Source)

// WithInterval sets how often the file is checked for a change (default
// 1s; zero or negative keeps the default).
func WithInterval(d time.Duration) Option {
	return func(s *Source) {
		if d > 0 {
			s.interval = d
		}
	}
}

// WithLogger sets the logger of reloads and of files that fail to parse
// (default: none).
func WithLogger(l zerolog.Logger) Option { return func(s *Source) { s.log = l } }

// NewFile returns a Source that reads path and re-reads it when its
// content changed. A file that fails to parse on reload is logged and the
// previous pool kept.
func NewFile(path string, opts ...Option) *Source {
	s := &Source{path: path, interval: time.Second, log: zerolog.Nop()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// NewList returns a Source that publishes entries once.
func NewList(entries []Entry) (*Source, error) {
	fixed, err := Group(entries)
	if err != nil {
		return nil, err
	}
	return &Source{fixed: fixed, log: zerolog.Nop()}, nil
}

// Run implements discovery.Source. A file that cannot be read or parsed at
// start is an error; later failures keep the last good pool.
func (s *Source) Run(ctx context.Context, pool *discovery.Pool) error {
	if s.fixed != nil {
		apply(pool, nil, s.fixed)
		pool.MarkSynced()
		<-ctx.Done()
		return ctx.Err()
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("static: %w", err)
	}
	cur, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%w (file %s)", err, s.path)
	}
	apply(pool, nil, cur)
	pool.MarkSynced()

	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		next, err := os.ReadFile(s.path)
		if err != nil || bytes.Equal(next, data) {
			if err != nil {
				s.log.Warn().Err(err).Str("file", s.path).Msg("static pool file unreadable, keeping the last pool")
			}
			continue
		}
		data = next
		parsed, err := Parse(next)
		if err != nil {
			s.log.Error().Err(err).Str("file", s.path).Msg("static pool file rejected, keeping the last pool")
			continue
		}
		apply(pool, cur, parsed)
		cur = parsed
	}
}

// apply publishes next and removes services that were in prev only.
func apply(pool *discovery.Pool, prev, next map[string][]*discovery.Instance) {
	for key, list := range next {
		pool.Update(key, list)
	}
	for key := range prev {
		if _, ok := next[key]; !ok {
			pool.Remove(key)
		}
	}
}
