package api

import "time"

// HistoryPoint is what the server did between two samples.
type HistoryPoint struct {
	// Time is the end of the interval; Seconds its length.
	Time    time.Time `json:"time"`
	Seconds float64   `json:"seconds"`
	// Published counts the events appended to the log, PublishRate the
	// same per second.
	Published   uint64  `json:"published"`
	PublishRate float64 `json:"publish_rate"`
	// Deliveries counts webhook delivery attempts; Errors the failed
	// ones; DeadLettered the events given up on.
	Deliveries   uint64 `json:"deliveries"`
	Errors       uint64 `json:"errors"`
	DeadLettered uint64 `json:"dead_lettered"`
	// P50Ms and P99Ms estimate the median and 99th percentile of the
	// delivery attempts' durations, in milliseconds, from a histogram
	// (absent when there was no attempt).
	P50Ms *float64 `json:"p50_ms,omitempty"`
	P99Ms *float64 `json:"p99_ms,omitempty"`
}

// History is the answer of GET /v1/history.
type History struct {
	// IntervalSeconds is how often the server samples.
	IntervalSeconds float64 `json:"interval_seconds"`
	// Points are oldest first; the last one ends now.
	Points []HistoryPoint `json:"points"`
	// Subscriptions holds, for each push subscription the caller
	// manages, the events it handled in each interval of Points.
	Subscriptions map[string][]uint64 `json:"subscriptions"`
}
