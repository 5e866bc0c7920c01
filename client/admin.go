package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
)

// Trace is a correlation chain: every event that shares a correlation id,
// in log order, each with the outcome of every subscription that handled it.
type Trace struct {
	CorrelationID string       `json:"correlation_id"`
	Events        []TraceEvent `json:"events"`
}

// TraceEvent is one event of a Trace with its outcomes.
type TraceEvent struct {
	Event    *herald.Event    `json:"event"`
	Outcomes []herald.Outcome `json:"outcomes"`
}

// Correlation returns the chain of events that share correlation id id. The
// error wraps herald.ErrNotFound when no event has it.
func (c *Client) Correlation(ctx context.Context, id string) (*Trace, error) {
	var t Trace
	if _, err := c.do(ctx, http.MethodGet, "/v1/correlations/"+seg(id), nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Subscription is a durable push subscription: the server delivers every
// event matching Filter to Endpoint (a webhook), with retries and a
// dead-letter queue. Zero fields take the server's defaults.
type Subscription struct {
	// Name identifies the subscription; it is the path segment of its URL.
	Name string `json:"name,omitempty"`
	// Filter is a name pattern ("recording.*", "recording.>", ">").
	Filter string `json:"filter"`
	// Endpoint is the webhook URL events are POSTed to.
	Endpoint string `json:"endpoint"`
	// Secret signs each delivery (HMAC-SHA256 of the body) so the endpoint
	// can verify the sender. Write-only: servers do not return it.
	Secret string `json:"secret,omitempty"`
	// MaxAttempts is how many times an event is tried before it is
	// dead-lettered (the first try included).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Backoff bounds the waits between attempts.
	Backoff *Backoff `json:"backoff,omitempty"`
	// Concurrency is how many deliveries may be in flight at once.
	Concurrency int `json:"concurrency,omitempty"`
	// Timeout bounds one delivery.
	Timeout herald.Duration `json:"timeout,omitempty"`
	// Start is where a new subscription begins: "earliest", "latest" or a
	// position.
	Start string `json:"start,omitempty"`

	// Stats is set by the server on reads: how far the subscription is.
	Stats *SubscriptionStats `json:"stats,omitempty"`
}

// Backoff is an exponential backoff with jitter between retries.
type Backoff struct {
	Initial herald.Duration `json:"initial,omitempty"`
	Max     herald.Duration `json:"max,omitempty"`
}

// SubscriptionStats is how far a subscription has come.
type SubscriptionStats struct {
	// Position is the subscription's checkpoint: every event up to it is done.
	Position uint64 `json:"position"`
	// Head is the log's last position; Lag is Head-Position.
	Head uint64 `json:"head"`
	Lag  uint64 `json:"lag"`
	// Handled, Failed, Retried, DeadLettered count deliveries.
	Handled      uint64 `json:"handled"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	InFlight     int    `json:"in_flight"`
}

// PutSubscription creates the push subscription s.Name, or replaces its
// definition, and returns it as the server stored it.
func (c *Client) PutSubscription(ctx context.Context, s Subscription) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, http.MethodPut, "/v1/subscriptions/"+seg(s.Name), nil, s, &out); err != nil {
		return nil, err
	}
	if out.Name == "" {
		out.Name = s.Name
	}
	return &out, nil
}

// GetSubscription returns the push subscription name with its stats; the
// error wraps herald.ErrNotFound when there is none.
func (c *Client) GetSubscription(ctx context.Context, name string) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, http.MethodGet, "/v1/subscriptions/"+seg(name), nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Name == "" {
		out.Name = name
	}
	return &out, nil
}

// DeleteSubscription removes the push subscription name; the error wraps
// herald.ErrNotFound when there is none.
func (c *Client) DeleteSubscription(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/subscriptions/"+seg(name), nil, nil, nil)
	return err
}

// Subscriptions lists the push subscriptions, with their stats.
func (c *Client) Subscriptions(ctx context.Context) ([]Subscription, error) {
	var out struct {
		Subscriptions []Subscription `json:"subscriptions"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/subscriptions", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Subscriptions, nil
}

// ReplayTarget is where Replay moves a subscription: a position, or the
// first event at or after a time. Set exactly one.
type ReplayTarget struct {
	Position *uint64   `json:"position,omitempty"`
	Time     time.Time `json:"time,omitzero"`
}

// ReplayFromPosition moves a subscription to just after position p.
func ReplayFromPosition(p uint64) ReplayTarget { return ReplayTarget{Position: &p} }

// ReplayFromTime moves a subscription to the first event at or after t.
func ReplayFromTime(t time.Time) ReplayTarget { return ReplayTarget{Time: t.UTC()} }

// ReplaySubscription moves the subscription name back (or forward) to
// target; it delivers again every event from there on.
func (c *Client) ReplaySubscription(ctx context.Context, name string, target ReplayTarget) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/subscriptions/"+seg(name)+"/replay", nil, target, nil)
	return err
}

// DeadLetterQuery selects dead letters.
type DeadLetterQuery struct {
	// Subscription selects one subscription's entries; "" selects all.
	Subscription string
	// Limit caps the list; 0 lets the server choose.
	Limit int
}

// DeadLetters lists the dead-letter queue, oldest first.
func (c *Client) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]herald.DeadLetter, error) {
	v := url.Values{}
	if q.Subscription != "" {
		v.Set("subscription", q.Subscription)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		DeadLetters []herald.DeadLetter `json:"dead_letters"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/dlq", v, nil, &out); err != nil {
		return nil, err
	}
	return out.DeadLetters, nil
}

// countAnswer is the answer of calls that act on several entries.
type countAnswer struct {
	Count int `json:"count"`
}

// Redrive delivers the dead letter id again to its subscription; the entry
// leaves the queue once the delivery succeeds. The error wraps
// herald.ErrNotFound when there is no such entry.
func (c *Client) Redrive(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/dlq/"+seg(id)+"/redrive", nil, nil, nil)
	return err
}

// RedriveAll redrives every dead letter of subscription ("" for every
// subscription) and returns how many it redrove.
func (c *Client) RedriveAll(ctx context.Context, subscription string) (int, error) {
	v := url.Values{}
	v.Set("subscription", subscription)
	var out countAnswer
	if _, err := c.do(ctx, http.MethodPost, "/v1/dlq/redrive", v, nil, &out); err != nil {
		return 0, err
	}
	return out.Count, nil
}

// Discard removes the dead letter id from the queue for good. The error
// wraps herald.ErrNotFound when there is no such entry.
func (c *Client) Discard(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/dlq/"+seg(id), nil, nil, nil)
	return err
}

// PutSchema registers the JSON Schema that the data of events named name
// with version version must satisfy from now on. schema must be a JSON
// Schema document; the error wraps herald.ErrInvalidEvent when the server
// cannot compile it.
func (c *Client) PutSchema(ctx context.Context, name string, version int, schema json.RawMessage) error {
	_, err := c.do(ctx, http.MethodPut, schemaPath(name, version), nil, []byte(schema), nil)
	return err
}

// Schema returns the JSON Schema registered for name and version; the error
// wraps herald.ErrNotFound when there is none.
func (c *Client) Schema(ctx context.Context, name string, version int) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, schemaPath(name, version), nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func schemaPath(name string, version int) string {
	return "/v1/schemas/" + seg(name) + "/" + strconv.Itoa(version)
}
