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

// Subscription is a push subscription as the server shows it: its
// definition (api.PushSubscription: the server delivers every event
// matching Filter to Endpoint, a webhook, with retries and a dead-letter
// queue) and its progress.
type Subscription = api.PushSubscriptionInfo

// Backoff is an exponential backoff with jitter between retries.
type Backoff = api.Backoff

// PutSubscription creates the push subscription s.Name, or replaces its
// definition, and returns it as the server stored it. Zero fields take the
// server's defaults. When s.Secret is empty on creation the server
// generates one and returns it this once, in the result's Secret.
func (c *Client) PutSubscription(ctx context.Context, s api.PushSubscription) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, http.MethodPut, "/v1/subscriptions/"+seg(s.Name), nil, s, &out); err != nil {
		return nil, err
	}
	if out.Name == "" {
		out.Name = s.Name
	}
	return &out, nil
}

// CreateSubscription creates the push subscription s.Name, like
// PutSubscription, but never replaces one: when the name exists the error
// wraps api.ErrConflict and nothing changes.
func (c *Client) CreateSubscription(ctx context.Context, s api.PushSubscription) (*Subscription, error) {
	req, err := c.newRequest(ctx, http.MethodPut, "/v1/subscriptions/"+seg(s.Name), nil, s)
	if err != nil {
		return nil, err
	}
	req.Header.Set("If-None-Match", "*")
	var out Subscription
	if _, err := c.decode(req, &out); err != nil {
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
	var out api.PushSubscriptionList
	if _, err := c.do(ctx, http.MethodGet, "/v1/subscriptions", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Subscriptions, nil
}

// ReplayTarget is where ReplaySubscription moves a subscription: a
// position, or the first event at or after a time. Set exactly one.
type ReplayTarget = api.ReplayTarget

// ReplayFromPosition moves a subscription to just after position p.
func ReplayFromPosition(p uint64) ReplayTarget { return ReplayTarget{Position: &p} }

// ReplayFromTime moves a subscription to the first event at or after t.
func ReplayFromTime(t time.Time) ReplayTarget { return ReplayTarget{Time: t.UTC()} }

// ReplaySubscription moves the subscription name back (or forward) to
// target; it delivers again every event from there on.
func (c *Client) ReplaySubscription(ctx context.Context, name string, target ReplayTarget) (*Subscription, error) {
	var out Subscription
	if _, err := c.do(ctx, http.MethodPost, "/v1/subscriptions/"+seg(name)+"/replay", nil, target, &out); err != nil {
		return nil, err
	}
	return &out, nil
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
	var out api.DeadLetterList
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
	var out api.RedriveAnswer
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
	var out api.SchemaList
	if _, err := c.do(ctx, http.MethodGet, "/v1/schemas", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Schemas, nil
}

// Token is an API token's description: who it is for and what it may do.
// The secret itself is returned only once, by CreateToken.
type Token = api.Token

// CreateToken makes a token for t.Identity with t's rights and returns its
// secret, which the server shows only this once, and its description. It
// needs an admin token.
func (c *Client) CreateToken(ctx context.Context, t Token) (secret string, info *Token, err error) {
	req := api.TokenRequest{Identity: t.Identity, Publish: t.Publish, Subscribe: t.Subscribe,
		Subjects: t.Subjects, Admin: t.Admin, Rate: t.Rate, Burst: t.Burst}
	var out api.TokenCreated
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
	var out api.TokenList
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

// Subject returns subject's version (how many events were ever stored for
// it, what ExpectVersion is compared with) and the positions of its
// first and last events the server holds. A subject without events is at
// version 0. A token that may not read every event of the subject gets an
// error wrapping herald.ErrForbidden: the version counts events it may not
// see.
func (c *Client) Subject(ctx context.Context, subject string) (*api.SubjectInfo, error) {
	var out api.SubjectInfo
	if _, err := c.do(ctx, http.MethodGet, "/v1/subjects/"+seg(subject), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StreamTicket asks for a ticket that opens one SSE stream with this
// client's rights, for a browser page: it opens
// GET /v1/stream?ticket=<ticket> with an EventSource, which cannot send a
// token. A ticket lasts 30 seconds and is spent by its first use.
func (c *Client) StreamTicket(ctx context.Context) (*api.StreamTicket, error) {
	var out api.StreamTicket
	if _, err := c.do(ctx, http.MethodPost, "/v1/stream/tickets", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
