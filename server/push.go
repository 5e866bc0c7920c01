package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// SubscriptionBucket is the KV bucket that keeps push subscriptions.
const SubscriptionBucket = "push_subscriptions"

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of a webhook
// delivery's body, keyed with the subscription's secret.
const SignatureHeader = api.HeaderSignature

// maxRetryAfter bounds how long a delivery waits on an endpoint's
// Retry-After before it gives its attempt back to the bus.
const maxRetryAfter = 60 * time.Second

// PushSubscription is a durable subscription whose events the server POSTs
// to a webhook (see api.PushSubscription). Zero fields take the bus's
// defaults. Its durable name is Name, so its dead letters and outcomes carry
// that name.
type PushSubscription = api.PushSubscription

// BackoffConfig bounds the exponential backoff between delivery attempts.
type BackoffConfig = api.Backoff

// StartSpec is where a new push subscription starts: "earliest", "latest"
// or a position (a JSON number or a string of digits).
type StartSpec = api.StartSpec

// startOf returns the herald.Start of a StartSpec.
func startOf(s StartSpec) (herald.Start, error) {
	switch v := strings.TrimSpace(string(s)); v {
	case "", "earliest":
		return herald.StartEarliest, nil
	case "latest":
		return herald.StartLatest, nil
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > math.MaxInt64 {
			return herald.Start{}, badRequest("start", "start must be \"earliest\", \"latest\" or a position")
		}
		return herald.StartPosition(n), nil
	}
}

const defaultDeliveryTimeout = 10 * time.Second

// validateSub checks d and fills what can be defaulted.
func validateSub(d *PushSubscription) error {
	if api.ValidateSubscriptionName(d.Name) != nil {
		return badRequest("name", "a subscription name is 1 to %d characters of [A-Za-z0-9_.-]", api.MaxSubscriptionNameLen)
	}
	if d.Filter == "" {
		d.Filter = ">"
	}
	if err := herald.ValidatePattern(d.Filter); err != nil {
		return badRequest("filter", "%s", cleanMessage(err.Error()))
	}
	u, err := url.Parse(d.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("endpoint", "endpoint must be an http:// or https:// URL")
	}
	if u.User != nil {
		return badRequest("endpoint", "endpoint must not carry credentials; use the secret and Herald-Signature")
	}
	switch {
	case d.MaxAttempts < 0 || d.MaxAttempts > 1000:
		return badRequest("max_attempts", "max_attempts must be between 1 and 1000")
	case d.Concurrency < 0 || d.Concurrency > 1024:
		return badRequest("concurrency", "concurrency must be between 1 and 1024")
	case d.Timeout < 0 || d.Timeout.Std() > 10*time.Minute:
		return badRequest("timeout", "timeout must be at most 10m")
	case len(d.Secret) > 256:
		return badRequest("secret", "secret must be at most 256 bytes")
	}
	if b := d.Backoff; b != nil {
		if b.Initial < 0 || b.Max < 0 || (b.Initial > 0 && b.Max > 0 && b.Max < b.Initial) {
			return badRequest("backoff", "backoff wants 0 < initial <= max")
		}
	}
	if _, err := startOf(d.Start); err != nil {
		return err
	}
	return nil
}

// subOptions returns the subscribe options of d.
func subOptions(d *PushSubscription) []herald.SubscribeOption {
	opts := []herald.SubscribeOption{herald.Durable(d.Name)}
	if d.MaxAttempts > 0 {
		opts = append(opts, herald.MaxAttempts(d.MaxAttempts))
	}
	if d.Concurrency > 0 {
		opts = append(opts, herald.Concurrency(d.Concurrency), herald.BufferSize(max(herald.DefaultBufferSize, 4*d.Concurrency)))
	}
	timeout := defaultDeliveryTimeout
	if d.Timeout > 0 {
		timeout = d.Timeout.Std()
	}
	// The handler may wait out a Retry-After; leave it room.
	opts = append(opts, herald.Timeout(timeout+maxRetryAfter))
	if b := d.Backoff; b != nil {
		init, mx := herald.DefaultBackoffInitial, herald.DefaultBackoffMax
		if b.Initial > 0 {
			init = b.Initial.Std()
		}
		if b.Max > 0 {
			mx = b.Max.Std()
		}
		mx = max(mx, init)
		opts = append(opts, herald.Backoff(init, mx))
	}
	st, _ := startOf(d.Start)
	return append(opts, herald.StartAt(st))
}

// pushManager runs the push subscriptions.
type pushManager struct {
	s       *Server
	mu      sync.Mutex
	m       map[string]*pushSub
	stopped bool // by stopAll: nothing starts again

	// full holds the subscriptions paused at their dead-letter cap;
	// dead is each subscription's count at the last check.
	full map[string]bool
	dead map[string]int

	cutMu sync.Mutex
	cut   map[string]int // deliveries the stop cut short, by subscription
}

// noteCut records a delivery of subscription name that the server's stop
// cut short.
func (pm *pushManager) noteCut(name string) {
	pm.cutMu.Lock()
	defer pm.cutMu.Unlock()
	if pm.cut == nil {
		pm.cut = map[string]int{}
	}
	pm.cut[name]++
}

// cutSummary says which deliveries the stop cut short ("a (2), b (1)"),
// or "" when none.
func (pm *pushManager) cutSummary() string {
	pm.cutMu.Lock()
	defer pm.cutMu.Unlock()
	names := make([]string, 0, len(pm.cut))
	for n := range pm.cut {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = fmt.Sprintf("%s (%d)", n, pm.cut[n])
	}
	return strings.Join(names, ", ")
}

type pushSub struct {
	def PushSubscription
	sub *herald.Subscription // nil while paused (see mayRun)
}

func newPushManager(s *Server) *pushManager {
	return &pushManager{s: s, m: map[string]*pushSub{}, full: map[string]bool{}, dead: map[string]int{}}
}

// load starts every push subscription kept in KV.
func (pm *pushManager) load(ctx context.Context) error {
	vals, err := pm.s.kv.ListValues(ctx, SubscriptionBucket)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	slices.Sort(names)
	pm.mu.Lock()
	defer pm.mu.Unlock()
	for _, k := range names {
		var d PushSubscription
		if err := json.Unmarshal(vals[k], &d); err != nil || validateSub(&d) != nil {
			pm.s.log.Error("push subscription kept in the store is unreadable; skipped", "name", k)
			continue
		}
		if err := pm.startLocked(d); err != nil {
			return fmt.Errorf("starting %q: %w", d.Name, err)
		}
	}
	return nil
}

// sync brings the running push subscriptions in line with those kept in
// KV, which another server sharing the store may have changed: it starts
// new ones, restarts changed ones and stops deleted ones.
func (pm *pushManager) sync(ctx context.Context) error {
	vals, err := pm.s.kv.ListValues(ctx, SubscriptionBucket)
	if err != nil {
		return err
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.stopped {
		return nil
	}
	var errs []error
	for name, raw := range vals {
		var d PushSubscription
		if json.Unmarshal(raw, &d) != nil || validateSub(&d) != nil {
			continue
		}
		cur, running := pm.m[name]
		if running && cur.def.UpdatedAt.Equal(d.UpdatedAt) && (cur.sub != nil) == pm.mayRun(d) {
			continue
		}
		if running {
			if err := pm.unsubscribe(ctx, cur.sub); err != nil && !errors.Is(err, herald.ErrClosed) {
				errs = append(errs, err)
				continue
			}
			delete(pm.m, name)
		}
		if err := pm.startLocked(d); err != nil {
			errs = append(errs, err)
		}
	}
	for name, ps := range pm.m {
		if _, kept := vals[name]; kept {
			continue
		}
		if err := pm.unsubscribe(ctx, ps.sub); err != nil && !errors.Is(err, herald.ErrClosed) {
			errs = append(errs, err)
			continue
		}
		delete(pm.m, name)
		delete(pm.full, name)
		delete(pm.dead, name)
	}
	return errors.Join(errs...)
}

// unsubscribe stops sub; a paused subscription (nil) has nothing to stop.
func (pm *pushManager) unsubscribe(ctx context.Context, sub *herald.Subscription) error {
	if sub == nil {
		return nil
	}
	return pm.s.bus.Unsubscribe(ctx, sub)
}

// mayRun reports whether d may deliver: its owner, when it has one, still
// holds a token. The webhooks of an identity whose tokens are all revoked
// pause (they keep their definition and checkpoint) until it has a token
// again.
func (pm *pushManager) mayRun(d PushSubscription) bool {
	return (d.Owner == "" || !pm.s.auth.enabled() || pm.s.auth.hasIdentity(d.Owner)) && !pm.full[d.Name]
}

// deadLetterCheck is how often the push subscriptions' dead letters are
// counted against their cap (see PushLimits.DeadLetters).
const deadLetterCheck = time.Second

// checkDeadLetters pauses the running push subscriptions that hold at
// least their cap of dead letters and added some since the last check,
// and starts again the paused ones whose dead letters were discarded
// below it. A subscription whose redrive replaces its dead letters does
// not add any, and keeps running.
func (pm *pushManager) checkDeadLetters() {
	pm.mu.Lock()
	none := len(pm.m) == 0
	pm.mu.Unlock()
	if none {
		return // nothing to count for
	}
	ctx, cancel := context.WithTimeout(pm.s.ctx, 10*time.Second)
	defer cancel()
	counts, err := pm.s.bus.DeadLetterCounts(ctx)
	if err != nil {
		if pm.s.ctx.Err() == nil {
			pm.s.log.Warn("counting the push subscriptions' dead letters", "err", err)
		}
		return
	}
	limit := pm.s.cfg.pushLimits.DeadLetters
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.stopped {
		return
	}
	for name, ps := range pm.m {
		n, before := counts[name], pm.dead[name]
		pm.dead[name] = n
		switch {
		case ps.sub != nil && n >= limit && n > before:
			pm.pauseLocked(name, ps)
			pm.full[name] = true
			pm.s.log.Warn("webhook paused: it holds its cap of dead letters; discard them, or redrive as an admin, to resume it",
				"subscription", name, "dead_letters", n, "cap", limit)
		case pm.full[name] && n < limit:
			pm.resumeLocked(name, "its dead letters are below the cap again")
		}
	}
}

// pausedWhy says why the paused subscription name is not running (see
// api.PushSubscriptionInfo.Paused).
func (pm *pushManager) pausedWhy(name string) string {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.full[name] {
		return "dead_letter_cap"
	}
	return "owner_has_no_token"
}

// resumeFull starts again every subscription paused at its dead-letter
// cap: an admin redrove dead letters, which only a running subscription
// delivers. One that goes on adding dead letters pauses again.
func (pm *pushManager) resumeFull() {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.stopped {
		return
	}
	for name := range pm.full {
		pm.resumeLocked(name, "an admin redrove dead letters")
	}
}

// resumeLocked starts name again after a pause at its dead-letter cap;
// pm.mu is held.
func (pm *pushManager) resumeLocked(name, why string) {
	delete(pm.full, name)
	ps, ok := pm.m[name]
	if !ok || ps.sub != nil {
		return
	}
	if err := pm.startLocked(ps.def); err != nil {
		pm.s.log.Warn("resuming a webhook paused at its dead-letter cap", "subscription", name, "err", err)
		return
	}
	pm.s.log.Info("webhook resumed: "+why, "subscription", name)
}

// pauseIdentity pauses the running webhooks owned by identity when it
// holds no token any more. Revocation ends access now: deliveries in
// flight are cancelled (they are delivered again if the identity gets a
// token back), and when pauseIdentity returns, no webhook of identity runs.
func (pm *pushManager) pauseIdentity(identity string) {
	if identity == "" || pm.s.auth.hasIdentity(identity) {
		return
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.stopped {
		return
	}
	for name, ps := range pm.m {
		if ps.def.Owner != identity || ps.sub == nil {
			continue
		}
		pm.pauseLocked(name, ps)
		pm.s.log.Info("webhook paused: its owner holds no token", "subscription", name, "owner", identity)
	}
}

// pauseLocked stops the running subscription name, keeping its definition
// (and its checkpoint): deliveries in flight are cut now and come again
// when it runs again. pm.mu is held.
func (pm *pushManager) pauseLocked(name string, ps *pushSub) {
	ctx, cancel := context.WithCancel(pm.s.ctx)
	cancel() // no grace
	if err := pm.unsubscribe(ctx, ps.sub); err != nil && !errors.Is(err, herald.ErrClosed) && !errors.Is(err, context.Canceled) {
		pm.s.log.Warn("pausing a webhook", "subscription", name, "err", err)
	}
	pm.m[name] = &pushSub{def: ps.def}
}

func (pm *pushManager) startLocked(d PushSubscription) error {
	if !pm.mayRun(d) {
		pm.m[d.Name] = &pushSub{def: d} // paused
		return nil
	}
	wh := &webhook{s: pm.s, def: d, secret: []byte(d.Secret), key: SigningKey(d.Secret)}
	timeout := defaultDeliveryTimeout
	if d.Timeout > 0 {
		timeout = d.Timeout.Std()
	}
	wh.timeout = timeout
	sub, err := pm.s.bus.Subscribe(pm.s.ctx, d.Filter, wh, subOptions(&d)...)
	if err != nil {
		return err
	}
	pm.m[d.Name] = &pushSub{def: d, sub: sub}
	return nil
}

// put creates or replaces a push subscription on behalf of p (nil: the
// server's own configuration, which may replace any), and returns the
// stored definition and whether it was created. Ownership is decided on
// the definition in the store, which other servers sharing it may have
// written, and kept by compare-and-set: a new name is created only if
// absent, a change is written only at the revision whose owner was
// checked. Of two callers racing for one name, one wins; the other gets a
// 403 when the winner is another identity, and ErrConflict (409) when the
// name keeps changing under it.
func (pm *pushManager) put(ctx context.Context, d PushSubscription, p *principal, createOnly bool) (PushSubscription, bool, error) {
	if err := validateSub(&d); err != nil {
		return d, false, err
	}
	if u, err := url.Parse(d.Endpoint); err == nil {
		if err := pm.s.policy.checkEndpoint(u.Hostname(), p == nil || p.admin()); err != nil {
			return d, false, err
		}
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	const attempts = 5
	for attempt := 1; ; attempt++ {
		cur, err := pm.s.kv.GetEntry(ctx, SubscriptionBucket, d.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, herald.ErrNotFound) {
			return d, false, err
		}
		var old PushSubscription
		if exists {
			_ = json.Unmarshal(cur.Value, &old) // unreadable: owned by no one, only admins replace it
			if p != nil && !p.admin() && old.Owner != p.identity() {
				return d, false, errNameTaken(d.Name)
			}
			if createOnly {
				return d, false, newError(http.StatusConflict, CodeConflict, "subscription %q already exists", d.Name)
			}
		}
		if err := pm.checkCapsLocked(d, p, exists); err != nil {
			return d, false, err
		}
		next := d
		now := time.Now().UTC()
		next.UpdatedAt, next.CreatedAt = now, now
		if p != nil && p.identity() != "" {
			next.Owner = p.identity()
		}
		if exists {
			if !old.CreatedAt.IsZero() {
				next.CreatedAt = old.CreatedAt
			}
			if next.Owner == "" {
				next.Owner = old.Owner
			}
			if next.Secret == "" {
				next.Secret = old.Secret
			}
		}
		if next.Secret == "" {
			var b [32]byte
			rand.Read(b[:])
			next.Secret = "whsec_" + base64.StdEncoding.EncodeToString(b[:])
		}
		b, err := json.Marshal(&next)
		if err != nil {
			return d, false, err
		}
		if exists {
			_, err = pm.s.kv.UpdateValue(ctx, SubscriptionBucket, d.Name, b, cur.Revision)
		} else {
			_, err = pm.s.kv.CreateValue(ctx, SubscriptionBucket, d.Name, b)
		}
		if errors.Is(err, herald.ErrConflict) && attempt < attempts {
			continue // written by someone else since we read it: check its owner again
		}
		if err != nil {
			return d, false, err
		}
		if running, ok := pm.m[d.Name]; ok {
			if err := pm.unsubscribe(ctx, running.sub); err != nil && !errors.Is(err, herald.ErrClosed) {
				return next, false, err
			}
			delete(pm.m, d.Name)
		}
		// A new definition (perhaps a mended endpoint) runs again, even
		// one paused at its dead-letter cap: it pauses again if it goes
		// on adding dead letters.
		delete(pm.full, d.Name)
		if !exists {
			// A new subscription: dead letters, outcomes and a checkpoint
			// under its name are an earlier one's (deleted through
			// another server sharing the store, or by an older herald),
			// not its owner's to receive or see.
			if _, err := pm.s.bus.Discard(ctx, herald.DeadLetterQuery{Subscription: d.Name}); err != nil {
				return next, false, err
			}
			if err := pm.s.bus.DeleteSubscription(ctx, d.Name); err != nil {
				return next, false, err
			}
		}
		if err := pm.startLocked(next); err != nil {
			return next, false, err
		}
		return next, !exists, nil
	}
}

// errNameTaken is the answer to a PUT of a subscription name the caller
// cannot have because another identity holds it: a 409 that says the name
// is not available, as for any name taken, and names no owner.
func errNameTaken(name string) error {
	ae := newError(http.StatusConflict, CodeConflict, "subscription name %q is not available: choose another", name)
	ae.Field = "name"
	return ae
}

// checkCapsLocked refuses d, put by p, when it would take its owner or the
// server past a cap of PushLimits. Only the total cap applies to the
// configuration's subscriptions (p nil) and to admins.
func (pm *pushManager) checkCapsLocked(d PushSubscription, p *principal, exists bool) error {
	lim := pm.s.cfg.pushLimits
	if !exists && len(pm.m) >= lim.Total {
		return newError(http.StatusForbidden, CodeForbidden,
			"the server runs %d push subscriptions, its cap: delete one first", lim.Total)
	}
	total := max(d.Concurrency, 1)
	for name, ps := range pm.m {
		if name != d.Name {
			total += max(ps.def.Concurrency, 1)
		}
	}
	if total > lim.ConcurrencyTotal {
		ae := newError(http.StatusForbidden, CodeForbidden,
			"the concurrency of the server's push subscriptions would add up to %d, over its cap of %d: lower this one's, or another's", total, lim.ConcurrencyTotal)
		ae.Field = "concurrency"
		return ae
	}
	if p == nil || p.admin() {
		return nil // the configuration's, an admin's, an open server's
	}
	owner := p.identity()
	n, conc := 0, max(d.Concurrency, 1)
	for name, ps := range pm.m {
		if ps.def.Owner != owner || name == d.Name {
			continue
		}
		n++
		conc += max(ps.def.Concurrency, 1)
	}
	switch {
	case n >= lim.PerIdentity:
		return newError(http.StatusForbidden, CodeForbidden,
			"identity %q owns %d push subscriptions, its cap: delete one first", owner, lim.PerIdentity)
	case conc > lim.ConcurrencyPerIdentity:
		ae := newError(http.StatusForbidden, CodeForbidden,
			"the concurrency of identity %q's push subscriptions would add up to %d, over its cap of %d", owner, conc, lim.ConcurrencyPerIdentity)
		ae.Field = "concurrency"
		return ae
	}
	return nil
}

func (pm *pushManager) get(name string) (*pushSub, bool) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	ps, ok := pm.m[name]
	return ps, ok
}

func (pm *pushManager) list() []*pushSub {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	out := make([]*pushSub, 0, len(pm.m))
	for _, ps := range pm.m {
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b *pushSub) int { return strings.Compare(a.def.Name, b.def.Name) })
	return out
}

// remove stops and deletes a push subscription with its checkpoint,
// outcomes and dead letters: they are its owner's, and whoever takes the
// name next must not see them.
func (pm *pushManager) remove(ctx context.Context, name string) error {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	ps, ok := pm.m[name]
	if !ok {
		return notFound("no subscription %q", name)
	}
	if err := pm.unsubscribe(ctx, ps.sub); err != nil && !errors.Is(err, herald.ErrClosed) {
		return err
	}
	delete(pm.m, name)
	delete(pm.full, name)
	delete(pm.dead, name)
	if err := pm.s.kv.DeleteValue(ctx, SubscriptionBucket, name); err != nil {
		return err
	}
	// Its dead letters are its owner's: they go with it, so that whoever
	// takes the name next never receives them.
	if _, err := pm.s.bus.Discard(ctx, herald.DeadLetterQuery{Subscription: name}); err != nil {
		return err
	}
	return pm.s.bus.DeleteSubscription(ctx, name)
}

// stopAll stops every push subscription, all at once, waiting for the
// deliveries in flight until ctx ends: the whole stop keeps to ctx, not
// each subscription's.
func (pm *pushManager) stopAll(ctx context.Context) error {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	pm.stopped = true
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for name, ps := range pm.m {
		wg.Go(func() {
			if err := pm.unsubscribe(ctx, ps.sub); err != nil && !errors.Is(err, herald.ErrClosed) {
				emu.Lock()
				errs = append(errs, fmt.Errorf("stopping %q: %w", name, err))
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	clear(pm.m)
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	if cut := pm.cutSummary(); cut != "" {
		errs = append(errs, fmt.Errorf("webhook deliveries still in flight were cut short (they are delivered again when the subscription next runs): %s", cut))
	}
	return errors.Join(errs...)
}

// webhook is the bus handler of one push subscription: it POSTs each event
// in CloudEvents binary mode.
type webhook struct {
	s       *Server
	def     PushSubscription
	secret  []byte // the Herald-Signature key: the secret's bytes
	key     []byte // the Standard Webhooks key: SigningKey(secret)
	timeout time.Duration
}

// The headers of a Standard Webhooks signature (standardwebhooks.com),
// which herald sets on every delivery.
const (
	// HeaderWebhookID is the delivery's message id: the event's id, the
	// same on every attempt (receivers use it to drop duplicates).
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the attempt's time, in Unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature is "v1," and the base64 HMAC-SHA256 of
	// id "." timestamp "." body under the secret's key (SigningKey).
	HeaderWebhookSignature = "webhook-signature"
)

// SignatureTolerance is how far a delivery's webhook-timestamp may be
// from the receiver's clock for VerifySignature (and the Standard
// Webhooks libraries) to accept it; an older capture replayed is refused.
const SignatureTolerance = 5 * time.Minute

// SigningKey returns the HMAC key of a subscription secret: the bytes a
// "whsec_" secret carries in base64 (the form herald generates, and the
// one the Standard Webhooks libraries take), or else the secret's own
// bytes (give those to the libraries' raw constructor).
func SigningKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil && len(k) > 0 {
			return k
		}
	}
	return []byte(secret)
}

// SignStandard returns the webhook-signature value of a delivery: "v1,"
// and the base64 HMAC-SHA256 of id "." ts (Unix seconds) "." body under
// SigningKey(secret).
func SignStandard(secret, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(signStandard(SigningKey(secret), id, ts.Unix(), body))
}

func signStandard(key []byte, id string, ts int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Sign returns the Herald-Signature value of body under secret:
// "sha256=" and the hex HMAC-SHA256 of the body alone, keyed by the
// secret's bytes. It does not cover the headers or a time, so a captured
// delivery can be replayed: verify the Standard Webhooks signature
// (VerifySignature) instead. Herald-Signature is sent for one more
// release, then dropped.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Handle delivers e. 2xx is success; 408, 429, 5xx, a timeout or a
// connection error are temporary (retried, after the endpoint's
// Retry-After when it gives one); any other answer is permanent.
func (w *webhook) Handle(ctx context.Context, e *herald.Event) error {
	start := time.Now()
	outcome, err := w.deliver(ctx, e)
	if err != nil && ctx.Err() != nil && w.s.closed.Load() {
		w.s.push.noteCut(w.def.Name)
	}
	w.s.m.deliveries.WithLabelValues(w.def.Name, outcome).Inc()
	w.s.m.delivDur.Observe(time.Since(start).Seconds())
	return err
}

func (w *webhook) deliver(ctx context.Context, e *herald.Event) (string, error) {
	actx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.def.Endpoint, bytes.NewReader(e.Data))
	if err != nil {
		return "permanent", herald.Permanent(fmt.Errorf("endpoint: %v", err))
	}
	setBinaryHeaders(req.Header, e)
	req.Header.Set(SignatureHeader, Sign(w.secret, e.Data))
	ts := time.Now().Unix()
	req.Header.Set(HeaderWebhookID, e.ID)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderWebhookSignature, "v1,"+base64.StdEncoding.EncodeToString(signStandard(w.key, e.ID, ts, e.Data)))
	req.Header.Set("Herald-Subscription", w.def.Name)
	req.Header.Set("User-Agent", "herald-webhook/1")
	if ec, ok := herald.FromContext(ctx); ok && ec.Attempt > 0 {
		req.Header.Set("Herald-Attempt", strconv.Itoa(ec.Attempt))
	}
	resp, err := w.s.hooks.of(w.s.deliversAsAdmin(w.def.Owner)).Do(req)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return "permanent", herald.Permanent(fmt.Errorf("endpoint refused: %s", r.msg))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return "error", herald.Temporary(fmt.Errorf("endpoint did not answer within %s", w.timeout))
		}
		return "error", herald.Temporary(fmt.Errorf("endpoint unreachable: %s", shortNetError(err)))
	}
	drain(resp.Body)
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return "delivered", nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		err := herald.Temporary(fmt.Errorf("endpoint answered %d", code))
		if ra := api.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ra > 0 {
			sleep(ctx, min(ra, maxRetryAfter))
		}
		return "temporary", err
	default:
		return "permanent", herald.Permanent(fmt.Errorf("endpoint answered %d", code))
	}
}

// deliversAsAdmin reports whether a webhook owned by owner delivers with
// an admin's reach under the webhook policy: when owner holds an admin
// token, or it has no owner (the configuration file's, an open server's),
// or the server is open.
func (s *Server) deliversAsAdmin(owner string) bool {
	return owner == "" || !s.auth.enabled() || s.auth.isAdmin(owner)
}

// shortNetError keeps the last part of a transport error ("connection
// refused") without the URL.
func shortNetError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// VerifySignature reports whether a delivery (its headers h and body) is
// signed with secret as Standard Webhooks specifies, and was sent within
// SignatureTolerance of now: one of the space-separated "v1,<base64>"
// values of webhook-signature must be the HMAC of webhook-id,
// webhook-timestamp and the body. A capture replayed later, or with an
// altered body, id or timestamp, is refused. It compares in constant
// time. Any Standard Webhooks library verifies the same deliveries.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time) bool {
	id, tsText, sigs := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	if id == "" || tsText == "" || sigs == "" {
		return false
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return false
	}
	want := signStandard(SigningKey(secret), id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}
