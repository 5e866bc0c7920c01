package server

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhq/herald"
)

// maxReadLimit caps GET /v1/events?limit=.
const maxReadLimit = 1000

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request, p *principal) error {
	// Rights first, then the body: a token that may publish nothing (or,
	// in CloudEvents binary mode, not this type) is refused unread.
	if !p.mayPublishAny() {
		return newError(http.StatusForbidden, CodeForbidden, "this token may not publish")
	}
	if name := r.Header.Get("Ce-Type"); name != "" && !p.mayPublish(name) {
		ae := newError(http.StatusForbidden, CodeForbidden, "this token may not publish %q", name)
		ae.Index, ae.Field = 0, "name"
		return ae
	}
	if v := r.Header.Get("Ce-Subject"); v != "" {
		if subject, err := url.PathUnescape(v); err == nil && !p.maySubject(subject) {
			ae := subjectForbidden("publish to", subject)
			ae.Index = 0
			return ae
		}
	}
	release, err := s.bodies.take(r.Context(), p)
	if err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	body, err := readBody(w, r, s.cfg.limits.MaxBody)
	if err != nil {
		return err
	}
	events, err := decodeEvents(r.Context(), r.Header, body, s.cfg.limits)
	if err != nil {
		return err
	}
	if len(body) <= smallPublishBody {
		// Its memory is small: the connection caps bound how many such
		// publishes wait for the store at once.
		release()
		held = false
	}
	var opts []herald.PublishOption
	var expected *uint64
	if v := r.Header.Get(headerExpected); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest(headerExpected, "%s must be a non-negative integer", headerExpected)
		}
		subject := events[0].Subject
		for i, e := range events {
			if e.Subject == "" || e.Subject != subject {
				ae := badRequest("subject", "with %s every event must have the same non-empty subject", headerExpected)
				ae.Index = i
				return ae
			}
		}
		opts = append(opts, herald.ExpectVersion(n))
		expected = &n
	}
	for i, e := range events {
		if !p.mayPublish(e.Name) {
			ae := newError(http.StatusForbidden, CodeForbidden, "this token may not publish %q", e.Name)
			ae.Index, ae.Field = i, "name"
			return ae
		}
		if !p.maySubject(e.Subject) {
			ae := subjectForbidden("publish to", e.Subject)
			ae.Index = i
			return ae
		}
		if !p.open() {
			e.SourcePlugin = p.identity()
		}
	}
	if err := p.allowMore(len(events)); err != nil {
		return err
	}
	results, err := s.bus.PublishBatch(r.Context(), events, opts...)
	if len(results) == len(events) && !p.open() {
		// Before a conflict about content: whose id it is comes first.
		if terr := s.checkIDOwners(r.Context(), p, events, results); terr != nil {
			return terr
		}
	}
	if err != nil {
		if expected != nil && results == nil {
			return s.withCurrentVersion(r.Context(), p, err, events[0].Subject, *expected)
		}
		return err
	}
	status := http.StatusOK
	for _, res := range results {
		if !res.Duplicate {
			status = http.StatusCreated
		}
	}
	versions := s.subjectVersions(r.Context(), events, results, expected)
	writeRaw(w, status, ctJSON, appendPublishAnswer(make([]byte, 0, 32+80*len(events)), events, results, versions))
	return nil
}

// checkIDOwners returns 409 id_taken for the first event of a publish
// that was a duplicate of an event another identity stored. Event ids are
// one namespace; what makes an id someone's is the stored event's
// source_plugin, which the server sets to the publishing identity (an
// admin's too). A duplicate of the caller's own event keeps the duplicate
// answer. When the stored event cannot be read (retention removed it) its
// owner is unknown, and the id is taken. The answer says nothing of the
// stored event: not its position, name, subject, version or publisher.
func (s *Server) checkIDOwners(ctx context.Context, p *principal, events []*herald.Event, results []herald.AppendResult) error {
	for i, res := range results {
		if !res.Duplicate {
			continue
		}
		stored, err := s.bus.Get(ctx, events[i].ID, herald.Raw())
		if err != nil && !errors.Is(err, herald.ErrNotFound) {
			return err
		}
		if err == nil && stored.SourcePlugin == p.identity() {
			continue
		}
		ae := newError(http.StatusConflict, CodeIDTaken,
			"id %q is taken: the log holds no event of this identity with it; publish the event with another id", events[i].ID)
		ae.Index, ae.Field = i, "id"
		return ae
	}
	return nil
}

// appendPublishAnswer appends
// {"events":[{"id","position"[,"duplicate"][,"subject_version"]}]}; versions
// is nil or holds each event's subject version (0: none). Stored ids are
// printable ASCII, which strconv quotes as JSON does.
func appendPublishAnswer(b []byte, events []*herald.Event, results []herald.AppendResult, versions []uint64) []byte {
	b = append(b, `{"events":[`...)
	for i, res := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendQuoteToASCII(b, events[i].ID)
		b = append(b, `,"position":`...)
		b = strconv.AppendUint(b, res.Position, 10)
		if res.Duplicate {
			b = append(b, `,"duplicate":true`...)
		}
		if versions != nil && versions[i] != 0 {
			b = append(b, `,"subject_version":`...)
			b = strconv.AppendUint(b, versions[i], 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

func writeRaw(w http.ResponseWriter, status int, ct string, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{ct}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after", 0)
	if err != nil {
		return err
	}
	limit, err := uintParam(q.Get("limit"), "limit", uint64(s.cfg.defaultReadLim))
	if err != nil {
		return err
	}
	if limit == 0 || limit > maxReadLimit {
		limit = maxReadLimit
	}
	f := herald.Filter{Name: q.Get("name"), CorrelationID: q.Get("correlation_id"), Subject: q.Get("subject"),
		SourcePlugin: q.Get("source_plugin"), Limit: int(limit)}
	if f.Name != "" {
		if err := herald.ValidatePattern(f.Name); err != nil {
			return badRequest("name", "%s", cleanMessage(err.Error()))
		}
	}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(tp.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return badRequest(tp.name, "%s must be an RFC 3339 time", tp.name)
			}
			*tp.dst = t
		}
	}
	// No pattern asked: what the token may read (one pattern: that one;
	// several: every event, filtered, the scan bounded per page).
	filtered := false
	if f.Name == "" {
		f.Name, filtered = p.defaultReadPattern()
	}
	if filtered {
		f.Limit = 0
	} else if err := s.checkReadPattern(p, f.Name); err != nil {
		return err
	}
	var ro []herald.ReadOption
	switch q.Get("raw") {
	case "", "false":
	case "true":
		ro = append(ro, herald.Raw())
	default:
		return badRequest("raw", "raw must be true or false")
	}
	release, err := s.pages.take(r.Context(), p)
	if err != nil {
		return err
	}
	defer release()
	events := make([]*herald.Event, 0, min(int(limit), 256))
	next := after
	size := 0
	scanned := 0
	for e, err := range s.bus.Read(r.Context(), after, f, ro...) {
		if err != nil {
			return err
		}
		if filtered {
			if scanned++; scanned > maxFilteredScan || len(events) >= int(limit) {
				break
			}
			next = e.Position
			if !p.mayRead(e.Name) {
				continue
			}
		}
		// A page holds at most maxPageBytes (and at least one event):
		// the caller continues from next_after.
		n := encodedSize(e)
		if len(events) > 0 && size+n > s.cfg.maxPageBytes {
			break
		}
		size += n
		events = append(events, e)
		next = e.Position
	}
	if wantsCloudEvents(r) {
		ces := make([]map[string]any, len(events))
		for i, e := range events {
			ces[i] = toCloudEvent(e)
		}
		w.Header().Set("Herald-Next-After", strconv.FormatUint(next, 10))
		writeCE(w, http.StatusOK, ctCloudBatch, ces)
		return nil
	}
	writeEventPage(w, events, next, size)
	return nil
}

// maxFilteredScan bounds how many events one page of a token with several
// subscribe patterns looks at; the page ends there and next_after says
// where to go on.
const maxFilteredScan = 10000

// checkReadPattern refuses a read of names the caller may not read.
func (s *Server) checkReadPattern(p *principal, pattern string) error {
	if pattern == "" {
		pattern = ">"
	}
	if !p.mayReadPattern(pattern) {
		ae := newError(http.StatusForbidden, CodeForbidden,
			"this token may not read %q: ask for a name pattern within its subscribe patterns", pattern)
		ae.Field = "name"
		return ae
	}
	return nil
}

func writeCE(w http.ResponseWriter, status int, ct string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: errorFields{Code: CodeInternal, Message: "internal error"}})
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func uintParam(v, name string, def uint64) (uint64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxInt64 {
		return 0, badRequest(name, "%s must be an integer from 0 to %d", name, int64(math.MaxInt64))
	}
	return n, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	e, err := s.bus.Get(r.Context(), id, herald.Raw())
	if err != nil {
		if toAPIError(err).Code == CodeNotFound {
			return notFound("no event with this id")
		}
		return err
	}
	if !p.mayRead(e.Name) {
		// Not found rather than forbidden: a caller learns nothing of
		// events it may not read.
		return notFound("no event with this id")
	}
	if e, err = s.bus.Decode(r.Context(), e); err != nil {
		return err
	}
	if wantsCloudEvents(r) {
		writeCE(w, http.StatusOK, ctCloudEvent, toCloudEvent(e))
		return nil
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) handleCorrelation(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	tr, err := s.bus.Trace(r.Context(), id)
	if err != nil {
		return err
	}
	visible := tr.Events[:0:0]
	for _, te := range tr.Events {
		if p.mayRead(te.Event.Name) {
			visible = append(visible, te)
		}
	}
	if len(visible) == 0 {
		return notFound("no events with correlation id %q", id)
	}
	if !p.admin() {
		for i := range visible {
			visible[i].Outcomes = s.ownOutcomes(p, visible[i].Outcomes)
		}
	}
	tr.Events = visible
	if wantsCloudEvents(r) {
		// CloudEvents have no place for outcomes: the chain's events only.
		ces := make([]map[string]any, len(visible))
		for i, te := range visible {
			ces[i] = toCloudEvent(te.Event)
		}
		writeCE(w, http.StatusOK, ctCloudBatch, ces)
		return nil
	}
	writeJSON(w, http.StatusOK, tr)
	return nil
}

// ownOutcomes keeps the outcomes of the push subscriptions p owns, and of
// those only what they recorded since they were created: a trace shows a
// non-admin neither another identity's webhooks, their delivery errors
// ("endpoint answered 401", "connection refused"), nor what an earlier
// subscription of the same name recorded. Admins see every outcome.
func (s *Server) ownOutcomes(p *principal, outs []herald.Outcome) []herald.Outcome {
	kept := []herald.Outcome{}
	for _, o := range outs {
		ps, ok := s.push.get(o.Subscription)
		if ok && p.identity() != "" && ps.def.Owner == p.identity() && !o.UpdatedAt.Before(ps.def.CreatedAt) {
			kept = append(kept, o)
		}
	}
	return kept
}

// encodedSize is about how many bytes e takes in a JSON answer (a little
// more, never much less: escaping aside, which data, being JSON, needs
// none of).
func encodedSize(e *herald.Event) int {
	n := 256 + len(e.ID) + len(e.Name) + len(e.Data) + len(e.CorrelationID) + len(e.CausationID) +
		len(e.SourcePlugin) + len(e.Subject)
	for k, v := range e.Metadata {
		n += len(k) + len(v) + 8
	}
	return n
}
