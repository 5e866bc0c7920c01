// Package client is a Go client for herald's HTTP API (v1): publish and read
// events, follow the live stream, and manage push subscriptions, the
// dead-letter queue, schemas and tokens of a herald server.
//
// The API itself, endpoint by endpoint with curl examples, is described in
// docs/http.md of herald's repository
// (https://github.com/heraldhq/herald/blob/main/docs/http.md), and served
// by every server as an OpenAPI 3.1 document at GET /v1/openapi.json.
//
// Errors the server answers with are *Error values that wrap herald's
// sentinel errors, so errors.Is(err, herald.ErrConflict) works across the
// network as it does in-process.
//
// The types the client sends and returns are those of package api, which
// package herald aliases (api.Event is herald.Event): the client imports
// api and the standard library only, not the bus, its metrics, its JSON
// Schema compiler or any store.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to one herald server. It is safe for concurrent use and
// holds no resources of its own beyond its http.Client's idle connections.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	agent string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as a bearer token with every request. Default: no
// token, which an open (loopback, tokenless) server accepts.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithHTTPClient makes the client send its requests with hc. Default:
// http.DefaultClient. hc should have no overall Timeout, or Stream will be
// cut off after it; deadlines come from each call's context. Requests with a
// body over 1 MiB ask "Expect: 100-continue", so that a body the server
// refuses is not sent; give hc's transport an ExpectContinueTimeout (as
// http.DefaultTransport has), or such a body is sent at once and a refusal
// may arrive as a reset connection.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithUserAgent sets the User-Agent header. Default: "herald-client".
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.agent = ua }
}

// New returns a client of the herald server at baseURL, such as
// "http://127.0.0.1:7480". A URL without a scheme is taken as http. It
// returns an error when baseURL is not an http or https URL with a host.
func New(baseURL string, opts ...Option) (*Client, error) {
	raw := strings.TrimSpace(baseURL)
	if raw == "" {
		return nil, errors.New("herald client: empty server URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("herald client: server URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("herald client: server URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("herald client: server URL %q has no host", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, hc: http.DefaultClient, agent: "herald-client"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	return c, nil
}

// BaseURL returns the server URL the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// endpoint returns the URL of path, whose segments the caller escaped with
// seg, with query q.
func (c *Client) endpoint(path string, q url.Values) string {
	u := c.BaseURL() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// newRequest builds a request; body, when not nil, is encoded as JSON unless
// it is already []byte.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return nil, fmt.Errorf("herald client: encoding request: %w", err)
			}
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q), r)
	if err != nil {
		return nil, fmt.Errorf("herald client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if req.ContentLength > expectContinueAbove {
			// Ask before sending a large body: a server that refuses it
			// (too large, forbidden, rate limited) answers at once and the
			// body is never sent, instead of the server closing the
			// connection under a body still being written.
			req.Header.Set("Expect", "100-continue")
		}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// expectContinueAbove is the body size above which a request asks
// "Expect: 100-continue". It takes effect with a transport whose
// ExpectContinueTimeout is set, as http.DefaultTransport's is.
const expectContinueAbove = 1 << 20

// send performs req and returns the response when its status is 2xx; any
// other status becomes an *Error, and the body is closed.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &TransportError{URL: c.BaseURL(), Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp.StatusCode, resp.Header, resp.Body)
	}
	return resp, nil
}

// do sends a request and decodes a 2xx JSON answer into out (when not nil).
// It returns the status code.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) (int, error) {
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return 0, err
	}
	return c.decode(req, out)
}

// decode sends req and decodes a 2xx JSON answer into out (when not nil).
func (c *Client) decode(req *http.Request, out any) (int, error) {
	resp, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// No size limit: the client trusts its server, and reads any page it
	// sends (the server bounds its pages by bytes; an older or differently
	// configured one may send more).
	body := resp.Body
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("herald client: %s %s: decoding the answer: %w", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, nil
}

// errShortAnswer reports a 2xx answer that lacks what it must carry.
func errShortAnswer(what string) error {
	return fmt.Errorf("herald client: %s: the server's answer is incomplete", what)
}

// TransportError is a failure to talk to the server at all: it could not be
// reached, or the connection broke before an answer came.
type TransportError struct {
	// URL is the server's base URL.
	URL string
	// Err is the underlying error from net/http.
	Err error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("cannot reach %s: %v", e.URL, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
