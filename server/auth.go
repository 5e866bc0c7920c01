package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// TokenBucket is the KV bucket that holds the tokens created through the API.
const TokenBucket = "tokens"

// tokenPrefix starts every token herald generates, so that a leaked token
// is recognisable (secret scanners) and a token is never mistaken for its id.
const tokenPrefix = "hrld_"

// Token is one caller's credentials and rights (see api.Token). The secret
// itself is never stored: only Hash, the hex SHA-256 of it.
//
// SHA-256 without salt or stretching is enough because herald's tokens are
// 256 random bits: nobody can guess one, so slow hashing (bcrypt, argon2)
// would protect nothing and would cost every request. A token written by
// hand in a configuration file is hashed the same way and is only as strong
// as its author made it.
type Token = api.Token

// validateToken checks the token's fields.
func validateToken(t *Token) error {
	switch {
	case t.Identity == "" || len(t.Identity) > herald.MaxSourceLen:
		return badRequest("identity", "identity must be 1 to %d characters", herald.MaxSourceLen)
	case !printableString(t.Identity):
		return badRequest("identity", "identity must be printable ASCII without spaces")
	case len(t.Hash) != 64:
		return badRequest("token", "token hash must be 64 hex characters (SHA-256)")
	case t.Rate < 0 || t.Burst < 0:
		return badRequest("rate", "rate and burst must not be negative")
	}
	if _, err := hex.DecodeString(t.Hash); err != nil {
		return badRequest("token", "token hash must be hex")
	}
	for _, f := range []struct {
		field    string
		patterns []string
	}{{"publish", t.Publish}, {"subscribe", t.Subscribe}} {
		for _, p := range f.patterns {
			if err := herald.ValidatePattern(p); err != nil {
				return badRequest(f.field, "%s", cleanMessage(err.Error()))
			}
		}
	}
	return validateSubjects(t)
}

// MaxTokenSubjects is the most subject patterns a token may hold.
const MaxTokenSubjects = api.MaxTokenSubjects

// validateSubjects checks a token's subject patterns.
func validateSubjects(t *Token) error {
	switch {
	case len(t.Subjects) == 0:
		return nil
	case t.Admin:
		return badRequest("subjects", "an admin token holds every subject: subject patterns cannot narrow it; "+
			"give them to a token without admin")
	case len(t.Subjects) > MaxTokenSubjects:
		return badRequest("subjects", "a token holds at most %d subject patterns", MaxTokenSubjects)
	}
	for _, p := range t.Subjects {
		if err := api.ValidateSubjectPattern(p); err != nil {
			return badRequest("subjects", "%s", cleanMessage(err.Error()))
		}
	}
	return nil
}

func printableString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// HashToken returns the hex SHA-256 of a token, the form in which herald
// stores it (token_sha256 in the configuration file).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewTokenSecret returns a new random token: "hrld_" and 256 random bits.
func NewTokenSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func newTokenID() string {
	var b [6]byte
	rand.Read(b[:])
	return "tok_" + hex.EncodeToString(b[:])
}

// principal is the caller of one request.
type principal struct {
	tok *Token // nil when the server runs open
	lim *rate.Limiter
}

func (p *principal) open() bool { return p.tok == nil }

func (p *principal) identity() string {
	if p.tok == nil {
		return ""
	}
	return p.tok.Identity
}

func (p *principal) admin() bool { return p.tok == nil || p.tok.Admin }

// mayPublish reports whether the caller may publish events named name. An
// admin token holds every right: it may publish any name (as its own
// identity) and read everything.
func (p *principal) mayPublish(name string) bool {
	if p.tok == nil || p.tok.Admin {
		return true
	}
	return slices.ContainsFunc(p.tok.Publish, func(pat string) bool { return herald.MatchName(pat, name) })
}

// maySubject reports whether the caller may publish to subject, and look
// it up: a token without subject patterns may use every subject, and an
// event without a subject is bound by none.
func (p *principal) maySubject(subject string) bool {
	if p.tok == nil || p.tok.Admin || len(p.tok.Subjects) == 0 || subject == "" {
		return true
	}
	return slices.ContainsFunc(p.tok.Subjects, func(pat string) bool { return api.MatchSubject(pat, subject) })
}

// subjectForbidden is the 403 of a subject outside the caller's subject
// patterns; verb says what the caller tried ("publish to", "read").
func subjectForbidden(verb, subject string) *apiError {
	ae := newError(http.StatusForbidden, CodeForbidden,
		"this token may not %s subject %q: it is outside the token's subject patterns", verb, subject)
	ae.Field = "subject"
	return ae
}

// mayPublishAny reports whether the caller may publish any name at all.
func (p *principal) mayPublishAny() bool {
	return p.tok == nil || p.tok.Admin || len(p.tok.Publish) > 0
}

// mayRead reports whether the caller may read events named name.
func (p *principal) mayRead(name string) bool {
	if p.tok == nil || p.tok.Admin {
		return true
	}
	return slices.ContainsFunc(p.tok.Subscribe, func(pat string) bool { return herald.MatchName(pat, name) })
}

// mayReadPattern reports whether every name pattern matches is one the
// caller may read.
func (p *principal) mayReadPattern(pattern string) bool {
	if p.tok == nil || p.tok.Admin {
		return true
	}
	return slices.ContainsFunc(p.tok.Subscribe, func(allowed string) bool { return patternCovers(allowed, pattern) })
}

// defaultReadPattern is the name pattern a read without one uses: ">" for
// a caller who may read everything, the token's only subscribe pattern
// when it has one, and otherwise ">" with filtered set, meaning every event
// must be checked with mayRead. A token with no subscribe pattern gets
// ">" unfiltered, which checkReadPattern then refuses.
func (p *principal) defaultReadPattern() (pattern string, filtered bool) {
	switch {
	case p.mayReadPattern(">"):
		return ">", false
	case len(p.tok.Subscribe) == 1:
		return p.tok.Subscribe[0], false
	case len(p.tok.Subscribe) > 1:
		return "", true
	}
	return ">", false
}

// patternCovers reports whether every name that pattern req matches is also
// matched by pattern allowed.
func patternCovers(allowed, req string) bool {
	for {
		if allowed == ">" {
			return req != ""
		}
		as, arest, amore := strings.Cut(allowed, ".")
		rs, rrest, rmore := strings.Cut(req, ".")
		switch {
		case rs == ">":
			return false // allowed is not ">" here
		case as == "*":
			// covers a literal or "*"
		case as != rs:
			return false
		}
		if !amore || !rmore {
			return amore == rmore
		}
		allowed, req = arest, rrest
	}
}

// authenticator knows the tokens: those of the configuration and those
// created through the API (kept in the store's KV). It is safe for
// concurrent use.
type authenticator struct {
	kv herald.KV
	// required is set when the server must never be open (it listens
	// beyond loopback): with no token known every request is refused
	// rather than served anonymously, and the last admin token cannot be
	// revoked.
	required bool

	mu       sync.RWMutex
	byHash   map[string]*Token
	limiters map[string]*rate.Limiter // by token ID
	config   []*Token
	lastLoad atomic.Int64 // unix nanoseconds of the last load

	// onRevoke are told the identity of each token that goes away
	// (revoked here, or gone from the store); ends are the cancel
	// functions of the streams open with each token, by token ID.
	onRevoke []func(identity string)
	ends     map[string]map[*int]func()
}

// watch calls end when token id is revoked, until the returned function
// is called. It returns false (and registers nothing) when the token is
// already gone.
func (a *authenticator) watch(id string, end func()) (stop func(), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	known := false
	for _, t := range a.byHash {
		if t.ID == id {
			known = true
			break
		}
	}
	if !known {
		return nil, false
	}
	if a.ends == nil {
		a.ends = map[string]map[*int]func(){}
	}
	if a.ends[id] == nil {
		a.ends[id] = map[*int]func(){}
	}
	k := new(int)
	a.ends[id][k] = end
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.ends[id], k)
		if len(a.ends[id]) == 0 {
			delete(a.ends, id)
		}
	}, true
}

// goneLocked ends what token t opened and returns its identity, for
// tellGone once a.mu is released.
func (a *authenticator) goneLocked(t *Token) string {
	for _, end := range a.ends[t.ID] {
		end()
	}
	delete(a.ends, t.ID)
	return t.Identity
}

// tellGone tells the watchers of revocation about identities whose tokens
// went away, and returns when they are done: a revoke answered 204 has
// already paused the webhooks its identity owned. It must be called
// without a.mu held, since the watchers read the tokens.
func (a *authenticator) tellGone(identities []string) {
	for _, id := range identities {
		for _, f := range a.onRevoke {
			f(id)
		}
	}
}

// hasIdentity reports whether any token of identity is known.
func (a *authenticator) hasIdentity(identity string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, t := range a.byHash {
		if t.Identity == identity {
			return true
		}
	}
	return false
}

// isAdmin reports whether identity holds an admin token.
func (a *authenticator) isAdmin(identity string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, t := range a.byHash {
		if t.Identity == identity && t.Admin {
			return true
		}
	}
	return false
}

func newAuthenticator(kv herald.KV, config []Token, required bool) (*authenticator, error) {
	a := &authenticator{kv: kv, required: required, byHash: map[string]*Token{}, limiters: map[string]*rate.Limiter{}}
	for i := range config {
		t := config[i]
		if t.ID == "" {
			t.ID = "config-" + t.Identity
		}
		t.Hash = strings.ToLower(t.Hash)
		t.FromConfig = true
		if err := validateToken(&t); err != nil {
			return nil, fmt.Errorf("token %q: %s", t.Identity, toAPIError(err).Message)
		}
		if _, dup := a.byHash[t.Hash]; dup {
			return nil, fmt.Errorf("token %q: the same token is configured twice", t.Identity)
		}
		a.config = append(a.config, &t)
		a.add(&t)
	}
	return a, nil
}

// load brings the tokens kept in KV up to date: it adds new ones and drops
// revoked ones (several servers may share one store). Configured tokens
// stay as they are and win over a stored token with the same secret.
func (a *authenticator) load(ctx context.Context) error {
	vals, err := a.kv.ListValues(ctx, TokenBucket)
	if err != nil {
		return err
	}
	a.tellGone(a.merge(vals))
	return nil
}

// merge applies the stored tokens vals and returns the identities of the
// tokens that went away.
func (a *authenticator) merge(vals map[string][]byte) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []string
	a.lastLoad.Store(time.Now().UnixNano())
	seen := make(map[string]bool, len(vals))
	for _, v := range vals {
		var t Token
		if err := json.Unmarshal(v, &t); err != nil || len(t.Hash) != 64 {
			continue
		}
		seen[t.Hash] = true
		if _, known := a.byHash[t.Hash]; known {
			continue // keep its rate limiter's state
		}
		t.FromConfig = false
		a.add(&t)
	}
	for h, t := range a.byHash {
		if !t.FromConfig && !seen[h] {
			delete(a.byHash, h)
			delete(a.limiters, t.ID)
			gone = append(gone, a.goneLocked(t))
		}
	}
	return gone
}

// reloadOnMiss is how often an unknown token may make the server look in
// the store for tokens another server created.
const reloadOnMiss = time.Second

// tokenRefresh is how often, by default, the server reloads the stored
// tokens (and schemas and push subscriptions), so that a token revoked on
// another server sharing the store stops working here.
const tokenRefresh = 15 * time.Second

// mayReload reports whether an unknown token may trigger a reload now.
func (a *authenticator) mayReload() bool {
	last := a.lastLoad.Load()
	now := time.Now().UnixNano()
	return now-last > int64(reloadOnMiss) && a.lastLoad.CompareAndSwap(last, now)
}

func (a *authenticator) add(t *Token) {
	a.byHash[t.Hash] = t
	if t.Rate > 0 {
		burst := t.Burst
		if burst <= 0 {
			burst = max(1, int(t.Rate))
		}
		a.limiters[t.ID] = rate.NewLimiter(rate.Limit(t.Rate), burst)
	}
}

// enabled reports whether any token exists: then every request must carry one.
func (a *authenticator) enabled() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.byHash) > 0
}

// authenticate returns the caller of r. With no token known the server is
// open and every caller is the anonymous principal.
func (a *authenticator) authenticate(r *http.Request) (*principal, error) {
	p, miss, err := a.lookup(r)
	if miss && a.mayReload() {
		if lerr := a.load(r.Context()); lerr == nil {
			p, _, err = a.lookup(r)
		}
	}
	return p, err
}

// lookup finds the caller's token; miss is set when a token was given and
// is unknown.
func (a *authenticator) lookup(r *http.Request) (p *principal, miss bool, err error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if len(a.byHash) == 0 {
		if a.required {
			return nil, false, newError(http.StatusUnauthorized, CodeUnauthorized,
				"this server requires tokens and has none: configure an admin token in its configuration file")
		}
		return &principal{}, false, nil
	}
	secret := bearer(r)
	if secret == "" {
		return nil, false, newError(http.StatusUnauthorized, CodeUnauthorized, "a token is required: send Authorization: Bearer <token>")
	}
	h := HashToken(secret)
	t, ok := a.byHash[h]
	// The map lookup is keyed by the hash, not the secret: its timing tells
	// nothing useful about the secret. The constant-time comparison makes
	// the final check independent of how much of the hash matched.
	if !ok || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) != 1 {
		return nil, true, newError(http.StatusUnauthorized, CodeUnauthorized, "the token is not valid")
	}
	return &principal{tok: t, lim: a.limiters[t.ID]}, false, nil
}

func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// allow takes n from the caller's token bucket, or returns a rate_limited
// error saying when to come back.
func (p *principal) allow(n int) error {
	if p.lim == nil {
		return nil
	}
	now := time.Now()
	if n > p.lim.Burst() {
		e := newError(http.StatusTooManyRequests, CodeRateLimited,
			"the request holds %d events, more than this token's burst of %d: send smaller batches", n, p.lim.Burst())
		e.RetryAfter = time.Second
		return e
	}
	res := p.lim.ReserveN(now, n)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		e := newError(http.StatusTooManyRequests, CodeRateLimited, "rate limit of %g events/s exceeded", float64(p.lim.Limit()))
		e.RetryAfter = d
		return e
	}
	return nil
}

// allowMore charges a publish of n events, whose request already took one
// (allow(1)), for the other n-1.
func (p *principal) allowMore(n int) error {
	if p.lim == nil {
		return nil
	}
	if n > p.lim.Burst() {
		e := newError(http.StatusTooManyRequests, CodeRateLimited,
			"the request holds %d events, more than this token's burst of %d: send smaller batches", n, p.lim.Burst())
		e.RetryAfter = time.Second
		return e
	}
	if n <= 1 {
		return nil
	}
	return p.allow(n - 1)
}

// create makes a new token, keeps its hash in KV and returns the secret,
// which is shown this once.
func (a *authenticator) create(ctx context.Context, t Token) (string, *Token, error) {
	secret := NewTokenSecret()
	t.ID = newTokenID()
	t.Hash = HashToken(secret)
	t.CreatedAt = time.Now().UTC()
	t.FromConfig = false
	if err := validateToken(&t); err != nil {
		return "", nil, err
	}
	if !t.Admin && !a.enabled() {
		return "", nil, badRequest("admin", "the first token must be an admin token (admin: true): once a token exists "+
			"every call needs one, and only an admin can create the others")
	}
	b, err := json.Marshal(&t)
	if err != nil {
		return "", nil, err
	}
	if err := a.kv.PutValue(ctx, TokenBucket, t.ID, b); err != nil {
		return "", nil, err
	}
	a.mu.Lock()
	a.add(&t)
	a.mu.Unlock()
	return secret, &t, nil
}

// list returns every token, without hashes, sorted by identity.
func (a *authenticator) list() []Token {
	a.mu.RLock()
	out := make([]Token, 0, len(a.byHash))
	for _, t := range a.byHash {
		c := *t
		c.Hash = ""
		out = append(out, c)
	}
	a.mu.RUnlock()
	slices.SortFunc(out, func(x, y Token) int { return strings.Compare(x.Identity+x.ID, y.Identity+y.ID) })
	return out
}

// revoke removes the API token id. When it returns, the streams the token
// opened have ended and the webhooks of an identity left without a token
// are paused.
func (a *authenticator) revoke(ctx context.Context, id string) error {
	identity, err := a.remove(ctx, id)
	if err != nil {
		return err
	}
	a.tellGone([]string{identity})
	return nil
}

// remove deletes the API token id and returns its identity.
func (a *authenticator) remove(ctx context.Context, id string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var found *Token
	for _, t := range a.byHash {
		if t.ID == id {
			found = t
			break
		}
	}
	if found == nil {
		return "", notFound("no token %q", id)
	}
	if found.FromConfig {
		return "", newError(http.StatusConflict, CodeConflict, "token %q comes from the configuration file: remove it there", id)
	}
	if found.Admin {
		admins := 0
		for _, t := range a.byHash {
			if t.Admin {
				admins++
			}
		}
		switch {
		case admins == 1 && a.required:
			return "", newError(http.StatusConflict, CodeConflict,
				"token %q is the last admin token, and this server listens beyond loopback, where it is never open: create another admin token first", id)
		case admins == 1 && len(a.byHash) > 1:
			return "", newError(http.StatusConflict, CodeConflict,
				"token %q is the last admin token: nobody could manage the other tokens; create another admin token first, or revoke the others", id)
		}
	}
	if err := a.kv.DeleteValue(ctx, TokenBucket, id); err != nil && !errors.Is(err, herald.ErrNotFound) {
		return "", err
	}
	delete(a.byHash, found.Hash)
	delete(a.limiters, found.ID)
	return a.goneLocked(found), nil
}

// AuthEnabled reports whether the server requires tokens: whether any token
// is configured or kept in the store. Without one the server is open.
func (s *Server) AuthEnabled() bool { return s.auth.enabled() }
