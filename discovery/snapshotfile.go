package discovery

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// snapshotFile is the on-disk form of a pool: the raw fields of each
// instance, as a source delivered them.
type snapshotFile struct {
	Written  time.Time                `json:"written"`
	Services map[string][]rawInstance `json:"services"`
}

type rawInstance struct {
	Service  string            `json:"service"`
	Group    string            `json:"group"`
	Cluster  string            `json:"cluster,omitempty"`
	Host     string            `json:"host"`
	Port     int               `json:"port"`
	Weight   float64           `json:"weight"`
	Healthy  bool              `json:"healthy"`
	Enabled  bool              `json:"enabled"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// WriteSnapshotFile writes every service of s to path atomically: to a
// temporary file in the same folder, synced, then renamed over path, so a
// reader (or a crash) sees the old file or the new one, never a mix.
func WriteSnapshotFile(path string, s *Snapshot, now time.Time) error {
	f := snapshotFile{Written: now.UTC(), Services: map[string][]rawInstance{}}
	for _, svc := range s.Services() {
		list := make([]rawInstance, 0, len(svc.Instances))
		for _, in := range svc.Instances {
			list = append(list, rawInstance{Service: in.Service, Group: in.Group, Cluster: in.Cluster, Host: in.Host,
				Port: in.Port, Weight: in.Weight, Healthy: in.Healthy, Enabled: in.Enabled, Metadata: in.Metadata})
		}
		f.Services[svc.Key] = list
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("discovery: pool snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("discovery: pool snapshot: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("discovery: pool snapshot: %w", err)
	}
	return nil
}

// ReadSnapshotFile reads a file written by WriteSnapshotFile: the instances
// of each service, by key, ready for Pool.Update, and when it was written.
func ReadSnapshotFile(path string) (map[string][]*Instance, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("discovery: pool snapshot: %w", err)
	}
	var f snapshotFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, time.Time{}, fmt.Errorf("discovery: pool snapshot %s: %w", path, err)
	}
	out := make(map[string][]*Instance, len(f.Services))
	for key, list := range f.Services {
		ins := make([]*Instance, 0, len(list))
		for _, r := range list {
			ins = append(ins, &Instance{Service: r.Service, Group: r.Group, Cluster: r.Cluster, Host: r.Host,
				Port: r.Port, Weight: r.Weight, Healthy: r.Healthy, Enabled: r.Enabled, Metadata: r.Metadata})
		}
		out[key] = ins
	}
	return out, f.Written, nil
}
