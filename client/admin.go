package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhq/herald/api"
)

// Correlation returns the chain of events that share correlation id id. The
// error wraps api.ErrNotFound when no event has it.
func (c *Client) Correlation(ctx context.Context, id string) (*api.Trace, error) {
	var t api.Trace
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
	Timeout api.Duration `json:"timeout,omitempty"`
	// Start is where a new subscription begins: "earliest" (the server's
	// default), "latest" or a position. It applies only while the
	// subscription has no checkpoint.
	Start string `json:"start,omitempty"`

	// The fields below are set by the server on reads.

	// Owner is the identity that created the subscription.
	Owner     string    `json:"owner,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// SecretSet tells that deliveries are signed.
	SecretSet bool `json:"secret_set,omitempty"`
	// Running tells that the subscription is delivering.
	Running bool `json:"running,omitempty"`
	// Position is the checkpoint: every event up to it is done; Lag is how
	// many positions the log's head is ahead of it.
	Position uint64 `json:"position,omitempty"`
	Lag      uint64 `json:"lag,omitempty"`
	// Stats counts deliveries.
	Stats *api.SubscriptionStats `json:"stats,omitempty"`
}

// Backoff is an exponential backoff with jitter between retries.
type Backoff struct {
	Initial api.Duration `json:"initial,omitempty"`
	Max     api.Duration `json:"max,omitempty"`
}

// PutSubscription creates the push subscription s.Name, or replaces its
// definition, and returns it as the server stored it. When s.Secret is
// empty on creation the server generates one and returns it this once, in
// the result's Secret.
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
// error wraps api.ErrNotFound when there is none.
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
// api.ErrNotFound when there is none.
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
	// EventID selects the entries of one event.
	EventID string
	// Limit caps the list; 0 lets the server choose.
	Limit int
}

// DeadLetters lists the dead-letter queue, oldest first.
func (c *Client) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]api.DeadLetter, error) {
	v := url.Values{}
	if q.Subscription != "" {
		v.Set("subscription", q.Subscription)
	}
	if q.EventID != "" {
		v.Set("event_id", q.EventID)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		DeadLetters []api.DeadLetter `json:"dead_letters"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/dlq", v, nil, &out); err != nil {
		return nil, err
	}
	return out.DeadLetters, nil
}

// Redrive delivers the dead letter id again to its subscription; the entry
// leaves the queue once the delivery succeeds. The error wraps
// api.ErrNotFound when there is no such entry.
func (c *Client) Redrive(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/dlq/"+seg(id)+"/redrive", nil, nil, nil)
	return err
}

// RedriveAll redrives every dead letter of subscription ("" for every
// subscription) and returns how many it redrove.
func (c *Client) RedriveAll(ctx context.Context, subscription string) (int, error) {
	v := url.Values{}
	v.Set("subscription", subscription)
	var out struct {
		Redriven int `json:"redriven"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/dlq/redrive", v, nil, &out); err != nil {
		return 0, err
	}
	return out.Redriven, nil
}

// Discard removes the dead letter id from the queue for good. The error
// wraps api.ErrNotFound when there is no such entry.
func (c *Client) Discard(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/dlq/"+seg(id), nil, nil, nil)
	return err
}

// PutSchema registers the JSON Schema that the data of events named name
// with version version must satisfy from now on. schema must be a JSON
// Schema document; the error wraps api.ErrInvalidEvent when the server
// cannot compile it.
func (c *Client) PutSchema(ctx context.Context, name string, version int, schema json.RawMessage) error {
	_, err := c.do(ctx, http.MethodPut, schemaPath(name, version), nil, []byte(schema), nil)
	return err
}

// Schema returns the JSON Schema registered for name and version; the error
// wraps api.ErrNotFound when there is none.
func (c *Client) Schema(ctx context.Context, name string, version int) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, schemaPath(name, version), nil, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Schemas lists the registered schemas by name and version.
func (c *Client) Schemas(ctx context.Context) ([]api.SchemaRef, error) {
	var out struct {
		Schemas []api.SchemaRef `json:"schemas"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/schemas", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Schemas, nil
}

// Token is an API token's description: who it is for and what it may do.
// The secret itself is returned only once, by CreateToken.
type Token struct {
	// ID names the token in listings and in RevokeToken; it is not a secret.
	ID string `json:"id,omitempty"`
	// Identity is who the caller is: the source_plugin of what it publishes.
	Identity string `json:"identity"`
	// Publish and Subscribe list the name patterns the token may publish
	// and may read (read, stream, push subscriptions); empty: none.
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	// Admin allows schemas, dead letters, tokens and every subscription.
	Admin bool `json:"admin,omitempty"`
	// Rate is the events (or requests) per second allowed, Burst the token
	// bucket's size; 0 means no limit and max(1, Rate).
	Rate  float64 `json:"rate,omitempty"`
	Burst int     `json:"burst,omitempty"`
	// CreatedAt is when the token was made (set by the server).
	CreatedAt time.Time `json:"created_at,omitzero"`
	// FromConfig marks tokens of the server's configuration file, which the
	// API cannot revoke.
	FromConfig bool `json:"from_config,omitempty"`
}

// CreateToken makes a token for t.Identity with t's rights and returns its
// secret, which the server shows only this once, and its description. It
// needs an admin token.
func (c *Client) CreateToken(ctx context.Context, t Token) (secret string, info *Token, err error) {
	req := struct {
		Identity  string   `json:"identity"`
		Publish   []string `json:"publish"`
		Subscribe []string `json:"subscribe"`
		Admin     bool     `json:"admin"`
		Rate      float64  `json:"rate"`
		Burst     int      `json:"burst"`
	}{t.Identity, t.Publish, t.Subscribe, t.Admin, t.Rate, t.Burst}
	var out struct {
		Token string `json:"token"`
		Info  Token  `json:"info"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/tokens", nil, req, &out); err != nil {
		return "", nil, err
	}
	if out.Token == "" {
		return "", nil, errShortAnswer("POST /v1/tokens")
	}
	return out.Token, &out.Info, nil
}

// Tokens lists the server's tokens (without their secrets). It needs an
// admin token.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out struct {
		Tokens []Token `json:"tokens"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/tokens", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevokeToken revokes the token id at once. It needs an admin token; the
// error wraps api.ErrNotFound when there is no such token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/tokens/"+seg(id), nil, nil, nil)
	return err
}

func schemaPath(name string, version int) string {
	return "/v1/schemas/" + seg(name) + "/" + strconv.Itoa(version)
}

// Forget forgets subject on the server: the key its sensitive fields are
// encrypted with is deleted (crypto-shredding), so from then on those
// fields read as null everywhere the events were copied. Events of the
// subject published afterwards get a new key. It needs an admin token when
// the server has tokens; forgetting a subject the server never saw is not
// an error. The error wraps api.ErrNotFound when the server encrypts no
// field (it keeps no keys).
func (c *Client) Forget(ctx context.Context, subject string) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/subjects/"+seg(subject)+"/forget", nil, nil, nil)
	return err
}
