package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Console sessions let a browser use the API after giving a token once, on
// the console's login page, without the token ever reaching JavaScript:
//
//   - POST /ui/login takes the token, checks it as every request is
//     checked, and sets the cookie sessionCookie: HttpOnly, SameSite=Strict,
//     Secure under TLS, expiring after sessionTTL. The server keeps, in
//     memory, the hash of the cookie's secret with the hash of the token:
//     at most maxSessionsPerToken of one token (a login beyond them ends
//     that token's oldest session), so that one token holder cannot take
//     every session from the others, and at most maxSessions in all (a
//     login beyond them is refused with 503 until sessions expire).
//   - A request without Authorization that carries the cookie is the
//     token's request: the same principal, the same rights and rate limit,
//     looked up anew on every request, so that a token revoked ends its
//     sessions (and the streams they opened) at once. An EventSource sends
//     the cookie, so the console needs no stream ticket.
//   - A request with the cookie that may change something (any method
//     but GET, HEAD and OPTIONS) must carry the session's CSRF token in
//     csrfHeader: a page of another site cannot read it, and SameSite=Strict
//     already keeps the cookie from its requests.
//   - POST /ui/logout ends the session. A server restart ends them all.
//
// An open server (no token) has no sessions: the console needs no login.
const (
	sessionCookie = "herald_session"
	csrfHeader    = "Herald-Csrf"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 10000
	// maxSessionsPerToken: a browser logs in once per session; a token
	// may be open in a few browsers at once.
	maxSessionsPerToken = 16
	sessionPrefix       = "hrss_"
)

// sessions are the console's login sessions; safe for concurrent use.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session // by HashToken of the cookie's secret
}

type session struct {
	tokenHash string
	csrf      string
	expires   time.Time
}

func randomSecret(prefix string) string {
	var b [32]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for the token with this hash and returns the
// cookie's secret and the session.
func (ss *sessions) create(tokenHash string) (string, *session, error) {
	now := time.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*session{}
	}
	// The token's own sessions first: past its share, its oldest ends.
	n, oldest := 0, ""
	for h, s := range ss.m {
		if s.tokenHash != tokenHash {
			continue
		}
		if !now.Before(s.expires) {
			delete(ss.m, h)
			continue
		}
		n++
		if oldest == "" || s.expires.Before(ss.m[oldest].expires) {
			oldest = h
		}
	}
	if n >= maxSessionsPerToken {
		delete(ss.m, oldest)
	}
	if len(ss.m) >= maxSessions {
		for h, s := range ss.m {
			if !now.Before(s.expires) {
				delete(ss.m, h)
			}
		}
	}
	if len(ss.m) >= maxSessions {
		return "", nil, &apiError{Status: http.StatusServiceUnavailable, Code: CodeBackpressure, Index: -1,
			RetryAfter: time.Minute, Message: "too many console sessions open; retry later"}
	}
	secret := randomSecret(sessionPrefix)
	s := &session{tokenHash: tokenHash, csrf: randomSecret(""), expires: now.Add(sessionTTL)}
	ss.m[HashToken(secret)] = s
	return secret, s, nil
}

// get returns the live session of a cookie's secret, or nil.
func (ss *sessions) get(secret string) *session {
	h := HashToken(secret)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[h]
	if !ok {
		return nil
	}
	if !time.Now().Before(s.expires) {
		delete(ss.m, h)
		return nil
	}
	return s
}

// end forgets the session of a cookie's secret.
func (ss *sessions) end(secret string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, HashToken(secret))
}

// sessionSecret returns the session cookie's value, or "".
func sessionSecret(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// safeMethod reports whether a method changes nothing (needs no CSRF token).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sessionAuth finds the caller of a request that carries a console session
// cookie and no Authorization header; ok is false for any other request,
// which is authenticated as before. A session whose token is gone is ended.
func (s *Server) sessionAuth(r *http.Request) (p *principal, ok bool, err error) {
	if r.Header.Get("Authorization") != "" {
		return nil, false, nil
	}
	secret := sessionSecret(r)
	if secret == "" || (!s.auth.enabled() && !s.auth.required) {
		return nil, false, nil // an open server has no sessions
	}
	sess := s.sessions.get(secret)
	if sess == nil {
		return nil, true, newError(http.StatusUnauthorized, CodeUnauthorized, "the console session has ended: log in again")
	}
	p, err = s.auth.byTokenHash(sess.tokenHash)
	if err != nil {
		s.sessions.end(secret)
		return nil, true, newError(http.StatusUnauthorized, CodeUnauthorized, "the session's token is no longer valid: log in again")
	}
	if !safeMethod(r.Method) && !sess.csrfOK(r) {
		return p, true, newError(http.StatusForbidden, CodeForbidden, "a console request that changes something needs the session's CSRF token in %s", csrfHeader)
	}
	return p, true, nil
}

// csrfOK reports whether r carries the session's CSRF token (compared in
// constant time).
func (sess *session) csrfOK(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(sess.csrf)) == 1
}
