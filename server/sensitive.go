package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/heraldhq/herald"
)

// Forgetter is a codec that can forget a subject: sensitive.Codec is one.
// Forget makes the subject's sensitive values unreadable for good
// (crypto-shredding) and is not an error for a subject it never saw.
type Forgetter interface {
	Forget(ctx context.Context, subject string) error
}

// WithCodec makes the server decode the events it returns (GET
// /v1/events, /v1/events/{id}, /v1/stream, /v1/correlations/{id} and
// /v1/dlq) with c, the codec the Bus was given with herald.WithCodec, so
// that callers read sensitive fields in clear, or null once forgotten.
// When c is also a Forgetter, POST /v1/subjects/{subject}/forget forgets a
// subject. The default is none: events are returned as stored.
func WithCodec(c herald.Codec) Option { return func(cfg *config) { cfg.codec = c } }

// decoded returns e as callers read it: a decoded copy when the server has
// a codec, e itself otherwise. An event that does not decode is returned
// as stored, and the failure logged without any value of the event.
func (s *Server) decoded(ctx context.Context, e *herald.Event) *herald.Event {
	if s.cfg.codec == nil || e == nil {
		return e
	}
	c := e.Clone()
	if err := s.cfg.codec.Decode(ctx, c); err != nil {
		s.log.Warn("decoding an event", "id", e.ID, "position", e.Position, "err", err)
		return e
	}
	return c
}

// decodeAll replaces each of events with its decoded copy.
func (s *Server) decodeAll(ctx context.Context, events []*herald.Event) {
	if s.cfg.codec == nil {
		return
	}
	for i, e := range events {
		events[i] = s.decoded(ctx, e)
	}
}

// hubFrame returns the stream encoding of a recent event: the hub's shared
// encoding without a codec, or one of its decoded copy (never cached, so
// that a forgotten subject reads as such at once).
func (s *Server) hubFrame(ctx context.Context, en *hubEntry, ce bool) []byte {
	if s.cfg.codec == nil {
		if ce {
			return en.cloudEvent()
		}
		return en.json()
	}
	b, err := encodeStreamEvent(s.decoded(ctx, en.e), ce)
	if err != nil {
		return nil
	}
	return b
}

// handleForget forgets a subject: POST /v1/subjects/{subject}/forget, the
// subject URL-escaped as one path segment. Admin only; audit-logged.
func (s *Server) handleForget(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	subject := r.PathValue("subject")
	if subject == "" {
		return badRequest("subject", "the subject is empty")
	}
	if len(subject) > herald.MaxSubjectLen {
		return badRequest("subject", "the subject is longer than %d bytes", herald.MaxSubjectLen)
	}
	f, ok := s.cfg.codec.(Forgetter)
	if !ok {
		return notFound("this server keeps no keys: no field is encrypted, nothing to forget")
	}
	if err := f.Forget(r.Context(), subject); err != nil {
		return err
	}
	s.auditAction(r, p, "subject.forget", slog.String("subject", subject))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
