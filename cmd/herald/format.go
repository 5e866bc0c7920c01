package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// palette colours text with ANSI escapes, or not at all.
type palette bool

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func (p palette) paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (p palette) dim(s string) string    { return p.paint(ansiDim, s) }
func (p palette) name(s string) string   { return p.paint(ansiBold+ansiCyan, s) }
func (p palette) good(s string) string   { return p.paint(ansiGreen, s) }
func (p palette) warn(s string) string   { return p.paint(ansiYellow, s) }
func (p palette) bad(s string) string    { return p.paint(ansiRed, s) }
func (p palette) strong(s string) string { return p.paint(ansiBold, s) }

// eventLines formats events one per line for a person, in columns that
// line up: position, time, name, subject, data, then the priority when it
// is not normal and the source. The name and subject columns are as wide as
// the widest seen so far (at least a common width), so a stream of events
// stays aligned.
type eventLines struct {
	p            palette
	nameW, subjW int
}

func newEventLines(p palette) *eventLines { return &eventLines{p: p, nameW: 28, subjW: 16} }

func (l *eventLines) line(e *herald.Event) string {
	p := l.p
	l.nameW = max(l.nameW, min(len(e.Name), 64))
	l.subjW = max(l.subjW, min(len(e.Subject), 64))
	var b strings.Builder
	b.WriteString(p.dim(fmt.Sprintf("%6d", e.Position)))
	b.WriteString("  ")
	b.WriteString(p.dim(e.Timestamp.UTC().Format("2006-01-02 15:04:05.000")))
	b.WriteString("  ")
	b.WriteString(p.name(e.Name))
	b.WriteString(strings.Repeat(" ", max(0, l.nameW-len(e.Name))+2))
	b.WriteString(p.warn(e.Subject))
	b.WriteString(strings.Repeat(" ", max(0, l.subjW-len(e.Subject))+2))
	b.WriteString(string(e.Data))
	if e.Priority != herald.PriorityNormal {
		b.WriteString("  ")
		b.WriteString(p.bad("priority " + e.Priority.String()))
	}
	if e.SourcePlugin != "" {
		b.WriteString("  ")
		b.WriteString(p.dim("from " + e.SourcePlugin))
	}
	return b.String()
}

// shortTime formats t for tables.
func shortTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// plural returns "1 thing" or "N things".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// writeJSONIndent writes v as indented JSON.
func writeJSONIndent(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
