//go:build !linux

// Package mute is a no-op outside Linux, where VictoriaMetrics/metrics has
// no pressure metrics to log about.
package mute

// Restore does nothing.
func Restore() {}
