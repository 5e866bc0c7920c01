package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// SchemaBucket is the KV bucket that keeps JSON Schemas, keyed "name/version".
const SchemaBucket = "schemas"

// decodeJSON reads a small JSON request body into v.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	body, err := readBody(w, r, max)
	if err != nil {
		return err
	}
	if err := checkDepth(body, s.cfg.limits.MaxDepth); err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return badJSON("the body is empty")
	}
	if !utf8.Valid(body) {
		return badJSON("the body is not valid UTF-8: JSON text must be")
	}
	if err := strictUnmarshal(body, v); err != nil {
		if f, ok := unknownField(err); ok {
			e := badJSON("unknown field %q", f)
			e.Field = f
			return e
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return badRequest("", "a time must be in RFC 3339 form, such as 2026-12-01T09:00:00Z")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badRequest(te.Field, "field %s has the wrong type", te.Field)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badJSON("the body is not valid JSON (at byte %d)", se.Offset)
		}
		return badRequest("", "%s", cleanMessage(err.Error()))
	}
	return nil
}

const smallBody = 64 << 10

// subscriptionView is a push subscription as GET shows it: its definition
// without the secret, and its progress.
type subscriptionView = api.PushSubscriptionInfo

func (s *Server) view(ctx context.Context, ps *pushSub) subscriptionView {
	v := subscriptionView{PushSubscription: ps.def, SecretSet: ps.def.Secret != "", Running: ps.sub != nil}
	v.PushSubscription.Secret = ""
	if ps.sub == nil {
		v.Paused = s.push.pausedWhy(ps.def.Name)
		return v
	}
	st := ps.sub.Stats()
	if pos, ok, err := s.bus.Checkpoint(ctx, ps.def.Name); err == nil && ok && pos > st.Position {
		st.Position = pos
	}
	if head, err := s.bus.Head(ctx); err == nil {
		st.Head = max(st.Head, head)
		st.Lag = st.Head - min(st.Head, st.Position)
	}
	v.Stats, v.Position, v.Lag = &st, st.Position, st.Lag
	return v
}

// withTotals sets the counts of v's stats to the subscription's totals
// (Bus.SubscriptionCounts: kept by the store, the same on every server
// sharing it and over restarts), when they could be read.
func withTotals(v *subscriptionView, totals map[string]herald.SubscriptionCounts, err error) {
	if v.Stats == nil || err != nil {
		return
	}
	c := totals[v.Name]
	v.Stats.Handled, v.Stats.Failed, v.Stats.Retried, v.Stats.DeadLettered = c.Handled, c.Failed, c.Retried, c.DeadLettered
}

func (s *Server) mayManage(p *principal, ps *pushSub) bool {
	return p.admin() || ps.def.Owner == p.identity()
}

func (s *Server) handleSubList(w http.ResponseWriter, r *http.Request, p *principal) error {
	out := []subscriptionView{}
	dead, err := s.bus.DeadLetterCounts(r.Context())
	totals, terr := s.bus.SubscriptionCounts(r.Context())
	for _, ps := range s.push.list() {
		if s.mayManage(p, ps) {
			v := s.view(r.Context(), ps)
			withTotals(&v, totals, terr)
			if err == nil {
				n := dead[ps.def.Name]
				v.DeadLetters = &n
			}
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": out})
	return nil
}

func (s *Server) handleSubPut(w http.ResponseWriter, r *http.Request, p *principal) error {
	var d PushSubscription
	if err := s.decodeJSON(w, r, &d, smallBody); err != nil {
		return err
	}
	name := r.PathValue("name")
	if d.Name != "" && d.Name != name {
		return badRequest("name", "the body names another subscription than the path")
	}
	d.Name = name
	if d.Filter == "" {
		d.Filter = ">"
	}
	if err := s.checkReadPattern(p, d.Filter); err != nil {
		return err
	}
	if old, ok := s.push.get(name); ok && !s.mayManage(p, old) {
		return errNameTaken(name)
	}
	d.Owner, d.CreatedAt, d.UpdatedAt = "", time.Time{}, time.Time{}
	// If-None-Match: * makes the PUT create-only: an existing name is a
	// 409, never a silent redefinition.
	createOnly := r.Header.Get("If-None-Match") == "*"
	if err := s.auditAction(r, p, "subscription.put", slog.String("subscription", name), slog.String("endpoint", d.Endpoint),
		slog.String("filter", d.Filter)); err != nil {
		return err
	}
	def, created, err := s.push.put(r.Context(), d, p, createOnly)
	if err != nil {
		return err
	}
	ps, _ := s.push.get(name)
	v := s.view(r.Context(), ps)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if d.Secret == "" && created {
		v.Secret = def.Secret // generated: shown this once
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) subFor(r *http.Request, p *principal) (*pushSub, error) {
	name := r.PathValue("name")
	ps, ok := s.push.get(name)
	if !ok || !s.mayManage(p, ps) {
		return nil, notFound("no subscription %q", name)
	}
	return ps, nil
}

func (s *Server) handleSubGet(w http.ResponseWriter, r *http.Request, p *principal) error {
	ps, err := s.subFor(r, p)
	if err != nil {
		return err
	}
	v := s.view(r.Context(), ps)
	totals, err := s.bus.SubscriptionCounts(r.Context())
	withTotals(&v, totals, err)
	if dead, err := s.bus.DeadLetterCounts(r.Context()); err == nil {
		n := dead[ps.def.Name]
		v.DeadLetters = &n
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) handleSubDelete(w http.ResponseWriter, r *http.Request, p *principal) error {
	ps, err := s.subFor(r, p)
	if err != nil {
		return err
	}
	if err := s.auditAction(r, p, "subscription.delete", slog.String("subscription", ps.def.Name)); err != nil {
		return err
	}
	if err := s.push.remove(r.Context(), ps.def.Name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleSubReplay(w http.ResponseWriter, r *http.Request, p *principal) error {
	ps, err := s.subFor(r, p)
	if err != nil {
		return err
	}
	if s.bus.Shared() {
		return newError(http.StatusConflict, CodeConflict, "replay is not available on a shared store (NATS JetStream)")
	}
	var body struct {
		Position *uint64   `json:"position"`
		Time     time.Time `json:"time"`
	}
	if err := s.decodeJSON(w, r, &body, smallBody); err != nil {
		return err
	}
	var to herald.Start
	switch {
	case body.Position != nil && !body.Time.IsZero():
		return badRequest("position", "give a position or a time, not both")
	case body.Position != nil && *body.Position > math.MaxInt64:
		return badRequest("position", "position must be an integer from 0 to %d", int64(math.MaxInt64))
	case body.Position != nil:
		to = herald.StartPosition(*body.Position)
	case !body.Time.IsZero():
		to = herald.StartTime(body.Time)
	default:
		return badRequest("position", "give {\"position\":N} or {\"time\":\"RFC 3339\"}")
	}
	if err := s.auditAction(r, p, "subscription.replay", slog.String("subscription", ps.def.Name), slog.String("to", to.String())); err != nil {
		return err
	}
	cp, err := s.bus.Reset(r.Context(), ps.def.Name, to)
	if err != nil {
		return err
	}
	// The answer's position is where the reset moved the checkpoint, not
	// wherever redelivery has taken it since.
	v := s.view(r.Context(), ps)
	if v.Stats != nil {
		v.Stats.Position = cp
		v.Lag = v.Stats.Head - min(v.Stats.Head, cp)
		v.Stats.Lag = v.Lag
	}
	v.Position = cp
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) handleDLQList(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := uintParam(q.Get("limit"), "limit", 100)
	if err != nil {
		return err
	}
	if limit == 0 || limit > maxReadLimit {
		limit = maxReadLimit
	}
	dls, err := s.bus.DeadLetters(r.Context(), herald.DeadLetterQuery{
		Subscription: q.Get("subscription"), EventID: q.Get("event_id"), Limit: int(limit)})
	if err != nil {
		return err
	}
	if dls == nil {
		dls = []herald.DeadLetter{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
	return nil
}

func (s *Server) handleDLQRedrive(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.auditAction(r, p, "dlq.redrive", slog.String("id", id)); err != nil {
		return err
	}
	q := herald.DeadLetterQuery{IDs: []string{id}}
	n, err := s.bus.Redrive(r.Context(), q)
	if err != nil {
		return err
	}
	s.push.resumeFull()
	if n == 0 {
		return notFound("no dead letter %q", id)
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"redriven": n})
	return nil
}

func (s *Server) handleDLQRedriveAll(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	sub := r.URL.Query().Get("subscription")
	if err := s.auditAction(r, p, "dlq.redrive", slog.String("subscription", sub)); err != nil {
		return err
	}
	q := herald.DeadLetterQuery{Subscription: sub}
	n, err := s.bus.Redrive(r.Context(), q)
	if err != nil {
		return err
	}
	s.push.resumeFull()
	writeJSON(w, http.StatusAccepted, map[string]int{"redriven": n})
	return nil
}

func (s *Server) handleDLQDelete(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.auditAction(r, p, "dlq.discard", slog.String("id", id)); err != nil {
		return err
	}
	n, err := s.bus.Discard(r.Context(), herald.DeadLetterQuery{IDs: []string{id}})
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("no dead letter %q", id)
	}
	writeJSON(w, http.StatusOK, map[string]int{"discarded": n})
	return nil
}

func schemaKey(name string, version int) string { return name + "/" + strconv.Itoa(version) }

// loadSchemas registers the schemas kept in KV with the bus.
func (s *Server) loadSchemas(ctx context.Context) error {
	vals, err := s.kv.ListValues(ctx, SchemaBucket)
	if err != nil {
		return err
	}
	for k, v := range vals {
		name, ver, ok := strings.Cut(k, "/")
		n, err := strconv.Atoi(ver)
		if !ok || err != nil {
			continue
		}
		if cur, err := s.bus.Schemas().Get(name, n); err == nil && bytes.Equal(cur, v) {
			continue
		}
		if err := s.bus.Schemas().Register(name, n, v); err != nil {
			s.log.Error("schema kept in the store does not compile; skipped", "name", name, "version", n, "err", err)
		}
	}
	return nil
}

func schemaPath(r *http.Request) (string, int, error) {
	name := r.PathValue("name")
	if err := herald.ValidateName(name); err != nil {
		return "", 0, badRequest("name", "%s", cleanMessage(err.Error()))
	}
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return "", 0, badRequest("version", "version must be a positive integer")
	}
	return name, v, nil
}

func (s *Server) handleSchemaPut(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	name, v, err := schemaPath(r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, herald.MaxSchemaSize)
	if err != nil {
		return err
	}
	if err := checkDepth(body, max(s.cfg.limits.MaxDepth, 128)); err != nil {
		return err
	}
	_, getErr := s.bus.Schemas().Get(name, v)
	if err := s.bus.Schemas().Register(name, v, body); err != nil {
		e := toAPIError(err)
		e.Field = "schema"
		if errors.Is(err, herald.ErrInvalidSchema) {
			// herald's own wording, which names JSON pointers such as
			// /properties/s/pattern that the path filter would hide.
			e.Message = cleanMessage(err.Error())
		}
		return e
	}
	if err := s.auditAction(r, p, "schema.put", slog.String("name", name), slog.Int("version", v)); err != nil {
		return err
	}
	if err := s.kv.PutValue(r.Context(), SchemaBucket, schemaKey(name, v), body); err != nil {
		return err
	}
	status := http.StatusCreated
	if getErr == nil {
		status = http.StatusOK
	}
	writeJSON(w, status, herald.SchemaRef{Name: name, Version: v})
	return nil
}

// maySeeSchema reports whether p may read the schemas of event name: a
// token that may publish or read name may (it needs the schema to write
// or read such events), an admin may read all.
func maySeeSchema(p *principal, name string) bool {
	return p.mayPublish(name) || p.mayRead(name)
}

// handleSchemaGet answers a schema to a caller that may see it
// (maySeeSchema), and 404, as for a schema that does not exist, to others.
func (s *Server) handleSchemaGet(w http.ResponseWriter, r *http.Request, p *principal) error {
	name, v, err := schemaPath(r)
	if err != nil {
		return err
	}
	b, err := s.bus.Schemas().Get(name, v)
	if err != nil || !maySeeSchema(p, name) {
		return notFound("no schema for %s version %d", name, v)
	}
	w.Header().Set("Content-Type", "application/schema+json")
	w.Write(b)
	return nil
}

// handleSchemaList lists the schemas the caller may see (maySeeSchema).
func (s *Server) handleSchemaList(w http.ResponseWriter, r *http.Request, p *principal) error {
	refs := []herald.SchemaRef{}
	for _, ref := range s.bus.Schemas().List() {
		if maySeeSchema(p, ref.Name) {
			refs = append(refs, ref)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemas": refs})
	return nil
}

// tokenRequest is the body of POST /v1/tokens.
type tokenRequest = api.TokenRequest

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var req tokenRequest
	if err := s.decodeJSON(w, r, &req, smallBody); err != nil {
		return err
	}
	if err := s.auditAction(r, p, "token.create", slog.String("for", req.Identity), slog.Bool("admin", req.Admin)); err != nil {
		return err
	}
	secret, t, err := s.auth.create(r.Context(), Token{Identity: req.Identity, Publish: req.Publish,
		Subscribe: req.Subscribe, Subjects: req.Subjects, Admin: req.Admin, Rate: req.Rate, Burst: req.Burst})
	if err != nil {
		return err
	}
	view := *t
	view.Hash = ""
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "info": view})
	return nil
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": s.auth.list()})
	return nil
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.auditAction(r, p, "token.revoke", slog.String("token_id", id)); err != nil {
		return err
	}
	if err := s.auth.revoke(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
