package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/heraldhq/herald/api"
)

// Export writes the events matching q, from q.After to the log's current
// end, to w as JSON Lines (one event per line, in position order), and
// returns how many it wrote. progress, when not nil, is called after each
// event with the count so far.
func (c *Client) Export(ctx context.Context, w io.Writer, q EventQuery, progress func(n int)) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	for e, err := range c.AllEvents(ctx, q) {
		if err != nil {
			return n, err
		}
		if err := enc.Encode(e); err != nil {
			return n, fmt.Errorf("herald client: export: %w", err)
		}
		n++
		if progress != nil {
			progress(n)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("herald client: export: %w", err)
	}
	return n, nil
}

// ImportResult counts what Import did.
type ImportResult struct {
	// Read counts the events read from the input.
	Read int
	// Stored counts the events the server stored anew.
	Stored int
	// Duplicates counts the events whose id was already stored.
	Duplicates int
}

// ImportOption changes an Import call.
type ImportOption func(*importConfig)

type importConfig struct {
	batch    int
	maxBytes int
	progress func(ImportResult)
}

// ImportBatchSize sets how many events go in one request. Default: 500.
func ImportBatchSize(n int) ImportOption {
	return func(c *importConfig) {
		if n > 0 {
			c.batch = n
		}
	}
}

// ImportProgress calls f after each batch with the counts so far.
func ImportProgress(f func(ImportResult)) ImportOption {
	return func(c *importConfig) { c.progress = f }
}

// maxImportLine bounds one line of an import.
const maxImportLine = 8 << 20

// Import reads events as JSON Lines from r (the form Export writes) and
// publishes them in atomic batches, keeping their ids, so importing the
// same file twice stores each event once. A batch the server refuses for
// now (rate limit, backpressure, a lost connection) is sent again after
// the wait the server asks for. Blank lines are skipped; a line
// that is not an event stops the import with an error naming the line.
// Events keep their ids, names, data, timestamps and correlation; the
// server gives them new positions.
func (c *Client) Import(ctx context.Context, r io.Reader, opts ...ImportOption) (ImportResult, error) {
	cfg := importConfig{batch: 500, maxBytes: 2 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	var (
		res   ImportResult
		batch []*api.Event
		lines []int // the input line of each event of batch
		size  int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := c.publishRetrying(ctx, batch)
		if err != nil {
			var he *Error
			if errors.As(err, &he) && he.Index >= 0 && he.Index < len(lines) {
				return fmt.Errorf("line %d: %w", lines[he.Index], err)
			}
			return err
		}
		for _, p := range out {
			if p.Duplicate {
				res.Duplicates++
			} else {
				res.Stored++
			}
		}
		batch, lines, size = batch[:0], lines[:0], 0
		if cfg.progress != nil {
			cfg.progress(res)
		}
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxImportLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e api.Event
		if err := json.Unmarshal(b, &e); err != nil {
			return res, fmt.Errorf("line %d: not an event: %w", line, err)
		}
		e.Position = 0
		batch = append(batch, &e)
		lines = append(lines, line)
		res.Read++
		size += len(b)
		if len(batch) >= cfg.batch || size >= cfg.maxBytes {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("line %d: %w", line+1, err)
	}
	return res, flush()
}

// publishRetrying publishes a batch, trying again (at most 5 times in all)
// while the server is rate limiting, busy or unreachable and asks for a
// wait of at most a minute. It is safe because events keep their ids: a
// batch stored before its answer was lost is not stored twice.
func (c *Client) publishRetrying(ctx context.Context, batch []*api.Event) ([]PublishResult, error) {
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := c.PublishBatch(ctx, batch)
		var te *TransportError
		if err == nil || attempt == 5 || !(IsRetryable(err) || errors.As(err, &te)) {
			return out, err
		}
		var he *Error
		if errors.As(err, &he) && he.RetryAfter > 0 {
			wait = he.RetryAfter
		}
		if wait > time.Minute {
			return out, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}
