package server

import (
	"crypto/subtle"
	"net/http"
	"sync"
	"time"

	"github.com/heraldhq/herald/api"
)

// Stream tickets let a browser's EventSource, which cannot send an
// Authorization header, open GET /v1/stream without putting a long-lived
// token in a URL: the page asks POST /v1/stream/tickets (with its token)
// for a ticket, and opens GET /v1/stream?ticket=<ticket>. A ticket
//
//   - lasts ticketTTL (30 s) and opens one stream: it is spent when used;
//   - carries exactly its token's rights, read when it is used: a token
//     revoked meanwhile makes its tickets worthless, and the stream counts
//     against the token's rate limit;
//   - opens GET /v1/stream only, never another endpoint, and is not a
//     bearer token;
//   - is kept in the memory of the server that made it: behind a load
//     balancer the stream must reach that server.
const ticketTTL = 30 * time.Second

// maxTickets caps the tickets outstanding at once; one more is refused
// with 503 until some expire or are used.
const maxTickets = 10000

// ticketPrefix starts every ticket, so that one cannot pass for a token.
const ticketPrefix = "hrst_"

// ticketQuery is the query parameter of GET /v1/stream that takes a ticket.
const ticketQuery = "ticket"

// tickets are the stream tickets a server has handed out and not yet seen
// used; safe for concurrent use.
type tickets struct {
	mu sync.Mutex
	m  map[string]ticket // by HashToken of the ticket
}

type ticket struct {
	tokenHash string // "" on an open server
	expires   time.Time
}

// issue returns a new ticket for the caller p, valid until the time it
// returns.
func (ts *tickets) issue(p *principal) (string, time.Time, error) {
	now := time.Now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = make(map[string]ticket)
	}
	for h, t := range ts.m {
		if !now.Before(t.expires) {
			delete(ts.m, h)
		}
	}
	if len(ts.m) >= maxTickets {
		return "", time.Time{}, &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure, Index: -1,
			RetryAfter: ticketTTL, Message: "too many stream tickets outstanding; retry later"}
	}
	secret := randomSecret(ticketPrefix)
	t := ticket{expires: now.Add(ticketTTL)}
	if p.tok != nil {
		t.tokenHash = p.tok.Hash
	}
	ts.m[HashToken(secret)] = t
	return secret, t.expires, nil
}

// redeem spends a ticket and returns the hash of its token ("" on an open
// server). An unknown, spent or expired ticket is a 401.
func (ts *tickets) redeem(secret string) (string, error) {
	h := HashToken(secret)
	ts.mu.Lock()
	t, ok := ts.m[h]
	delete(ts.m, h)
	ts.mu.Unlock()
	if !ok || !time.Now().Before(t.expires) {
		return "", newError(http.StatusUnauthorized, CodeUnauthorized,
			"the stream ticket is not valid: it is unknown, used or expired; ask POST /v1/stream/tickets for another")
	}
	return t.tokenHash, nil
}

// authenticate finds the caller of a request: by its console session
// (sessions.go), by its stream ticket on GET /v1/stream?ticket=, else by
// its token.
func (s *Server) authenticate(r *http.Request, rt route) (*principal, error) {
	if p, ok, err := s.sessionAuth(r); ok {
		return p, err
	}
	if rt.pattern != "GET /v1/stream" || !r.URL.Query().Has(ticketQuery) {
		return s.auth.authenticate(r)
	}
	tokenHash, err := s.tickets.redeem(r.URL.Query().Get(ticketQuery))
	if err != nil {
		return nil, err
	}
	return s.auth.byTokenHash(tokenHash)
}

// byTokenHash returns the principal of the token with this hash, as it is
// now; "" is the caller of an open server.
func (a *authenticator) byTokenHash(h string) (*principal, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if h == "" {
		if len(a.byHash) == 0 && !a.required {
			return &principal{}, nil
		}
	} else if t, ok := a.byHash[h]; ok && subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) == 1 {
		return &principal{tok: t, lim: a.limiters[t.ID]}, nil
	}
	return nil, newError(http.StatusUnauthorized, CodeUnauthorized, "the stream ticket's token is no longer valid")
}

// handleStreamTicket answers POST /v1/stream/tickets: a ticket that opens
// one SSE stream with the caller's rights (see tickets).
func (s *Server) handleStreamTicket(w http.ResponseWriter, r *http.Request, p *principal) error {
	if r.ContentLength > 0 {
		drain(r.Body)
		return badJSON("POST /v1/stream/tickets takes no body")
	}
	secret, expires, err := s.tickets.issue(p)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, api.StreamTicket{Ticket: secret, ExpiresAt: expires.UTC()})
	return nil
}
