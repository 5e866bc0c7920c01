// Package testlog gives tests a log destination that goroutines may write
// to while the test reads it.
package testlog

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// Buffer collects what is written to it. It is safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger that writes to w.
func Logger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
