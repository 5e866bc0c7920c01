package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/heraldhq/herald"
)

// Forgetter is a codec that can forget a subject.
//
// Deprecated: use herald.Forgetter.
type Forgetter = herald.Forgetter

// WithCodec does nothing: the server reads every event through its Bus,
// which decodes with the codec it was given (herald.WithCodec), and
// forgets subjects through it (Bus.Forget).
//
// Deprecated: give the codec once, to the Bus.
func WithCodec(herald.Codec) Option { return func(*config) {} }

// decoded returns an event the server read raw (to share one copy between
// streams) as callers read it: decoded by the bus, never cached, so that a
// forgotten subject reads as such at once. An event that does not decode
// (tampered with) is left out, and the failure logged without any value of
// the event.
func (s *Server) decoded(ctx context.Context, e *herald.Event) *herald.Event {
	d, err := s.bus.Decode(ctx, e)
	if err != nil {
		s.log.Warn("decoding an event", "id", e.ID, "position", e.Position, "err", err)
		return nil
	}
	return d
}

// hubFrame returns the stream encoding of a recent event: the hub's shared
// encoding when the bus has no codec, or one of its decoded copy. It
// returns nil for an event that does not decode.
func (s *Server) hubFrame(ctx context.Context, en *hubEntry, ce bool) []byte {
	if s.bus.Codec() == nil {
		if ce {
			return en.cloudEvent()
		}
		return en.json()
	}
	d := s.decoded(ctx, en.e)
	if d == nil {
		return nil
	}
	b, err := encodeStreamEvent(d, ce)
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
	if v, err := s.bus.SubjectVersion(r.Context(), subject); err != nil {
		return err
	} else if v == 0 {
		return notFound("no event has subject %q: nothing to forget", subject)
	}
	if err := s.auditAction(r, p, "subject.forget", slog.String("subject", subject)); err != nil {
		return err
	}
	if err := s.bus.Forget(r.Context(), subject); err != nil {
		if errors.Is(err, herald.ErrNoForgetter) {
			return notFound("this server keeps no keys: no field is encrypted, nothing to forget")
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
