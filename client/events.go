package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhq/herald/api"
)

// PublishResult is what the server did with one published event.
type PublishResult = api.PublishResult

// PublishOption changes one Publish or PublishBatch call.
type PublishOption func(*publishConfig)

type publishConfig struct {
	expect    uint64
	hasExpect bool
}

// ExpectVersion makes the publish succeed only while the events' subject
// has exactly n events stored (0: none yet); otherwise nothing is stored and
// the error wraps api.ErrConflict. Every event must then have the same
// subject. Default: no check.
func ExpectVersion(n uint64) PublishOption {
	return func(p *publishConfig) { p.expect, p.hasExpect = n, true }
}

// Publish appends one event and returns its id and position. An event whose
// id is already stored is not stored again: the result then has Duplicate
// set and the first position. On a server with tokens, an id held by an
// event another identity published is refused instead: a *Error with code
// api.CodeIDTaken, wrapping api.ErrConflict.
//
// An event without an id gets a new one (api.NewID) in e.ID before the
// first attempt, so that publishing e again after any error is
// idempotent: after an error wrapping api.ErrOutcomeUnknown (the server
// could not tell whether it stored the event), a lost connection or a
// timeout, publish the same e again. Publish changes no other field; the
// timestamp and correlation id it leaves empty are filled by the server.
func (c *Client) Publish(ctx context.Context, e *api.Event, opts ...PublishOption) (PublishResult, error) {
	if e == nil {
		return PublishResult{}, &api.ValidationError{Reason: "the event is nil", Err: api.ErrInvalidEvent}
	}
	if e.ID == "" {
		e.ID = api.NewID()
	}
	res, err := c.publish(ctx, e, opts)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Index == 0 {
			ce.Index = -1 // one event, not "event 0 of the batch"
		}
		return PublishResult{}, err
	}
	return res[0], nil
}

// PublishBatch appends events atomically: all of them or none. The results
// are in the order of events. A rejected event is named by the error's
// Index (see *Error). Like Publish, it gives each event without an id a
// new one before the first attempt, so the batch can be sent again as it
// is after an error.
func (c *Client) PublishBatch(ctx context.Context, events []*api.Event, opts ...PublishOption) ([]PublishResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	for i, e := range events {
		if e == nil {
			return nil, &api.ValidationError{Index: i, Reason: "the event is nil", Err: api.ErrInvalidEvent}
		}
	}
	for _, e := range events {
		if e.ID == "" {
			e.ID = api.NewID()
		}
	}
	return c.publish(ctx, api.EventBatch{Events: events}, opts)
}

func (c *Client) publish(ctx context.Context, body any, opts []PublishOption) ([]PublishResult, error) {
	var pc publishConfig
	for _, o := range opts {
		o(&pc)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/events", nil, body)
	if err != nil {
		return nil, err
	}
	if pc.hasExpect {
		req.Header.Set(api.HeaderExpectedVersion, strconv.FormatUint(pc.expect, 10))
	}
	var out api.PublishAnswer
	status, err := c.decode(req, &out)
	if err != nil {
		return nil, err
	}
	if len(out.Events) == 0 {
		return nil, errShortAnswer("POST /v1/events")
	}
	if status == http.StatusOK {
		// 200: every event was already stored.
		for i := range out.Events {
			out.Events[i].Duplicate = true
		}
	}
	return out.Events, nil
}

// EventQuery selects events from the log. Zero fields select everything.
type EventQuery struct {
	// After reads the events after this position (exclusive); 0 is the start.
	After uint64
	// Limit caps one page; 0 lets the server choose.
	Limit int
	// Name is a name pattern ("recording.*", "recording.>", ">").
	Name string
	// CorrelationID, Subject and SourcePlugin match those fields exactly.
	CorrelationID string
	Subject       string
	SourcePlugin  string
	// Since and Until bound the events' timestamps: Since inclusive, Until
	// exclusive; zero means unbounded.
	Since, Until time.Time
	// Raw asks for the events as stored: the fields a schema marks
	// sensitive stay sealed (and open again only in a herald that holds
	// their keys), for backups that a forget must still reach. By default
	// events come decoded.
	Raw bool
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("name", q.Name)
	set("correlation_id", q.CorrelationID)
	set("subject", q.Subject)
	set("source_plugin", q.SourcePlugin)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Raw {
		v.Set("raw", "true")
	}
	return v
}

// EventPage is one page of the log.
type EventPage = api.EventPage

// Events reads one page of the log: the events after q.After matching q, in
// position order.
func (c *Client) Events(ctx context.Context, q EventQuery) (*EventPage, error) {
	var page EventPage
	if _, err := c.do(ctx, http.MethodGet, "/v1/events", q.values(), nil, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// AllEvents reads the log page by page from q.After to its current end and
// yields every event matching q, in position order; q.Limit sets the page
// size. An error ends the sequence as its last pair. Stopping the loop early
// stops the reading.
func (c *Client) AllEvents(ctx context.Context, q EventQuery) iter.Seq2[*api.Event, error] {
	return func(yield func(*api.Event, error) bool) {
		for {
			page, err := c.Events(ctx, q)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			next := page.NextAfter
			if n := len(page.Events); n > 0 && next <= q.After {
				next = page.Events[n-1].Position
			}
			if len(page.Events) == 0 || next <= q.After {
				return
			}
			q.After = next
		}
	}
}

// Event returns the event with the given id; the error wraps
// api.ErrNotFound when there is none.
func (c *Client) Event(ctx context.Context, id string) (*api.Event, error) {
	var e api.Event
	if _, err := c.do(ctx, http.MethodGet, "/v1/events/"+seg(id), nil, nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}
