package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/heraldhq/herald"
)

// handleSubject answers GET /v1/subjects/{subject}, the subject URL-escaped
// as one path segment: its version (what Herald-Expected-Version is
// compared with) and the positions of its first and last events the log
// holds. It answers a caller whose subject patterns match the subject
// (every subject when it has none) and that may read the subject
// (mayReadSubject); others get 403, since the version counts events they
// may not see.
func (s *Server) handleSubject(w http.ResponseWriter, r *http.Request, p *principal) error {
	subject := r.PathValue("subject")
	if subject == "" {
		return badRequest("subject", "the subject is empty")
	}
	if len(subject) > herald.MaxSubjectLen {
		return badRequest("subject", "the subject is longer than %d bytes", herald.MaxSubjectLen)
	}
	if !p.maySubject(subject) {
		return subjectForbidden("read", subject)
	}
	ok, err := s.mayReadSubject(r.Context(), p, subject)
	if err != nil {
		return err
	}
	if !ok {
		return newError(http.StatusForbidden, CodeForbidden,
			"this token may not read every event of subject %q, so it is not shown the subject's version", subject)
	}
	info, err := s.bus.Subject(r.Context(), subject)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// mayReadSubject reports whether p may read subject: whether every event
// of it the log holds has a name p may read (a token that reads every name
// may read every subject, and a subject without events is anyone's). Only
// then is p shown the subject's version, which counts its events.
func (s *Server) mayReadSubject(ctx context.Context, p *principal, subject string) (bool, error) {
	if p.mayReadPattern(">") {
		return true, nil
	}
	for e, err := range s.bus.Read(ctx, 0, herald.Filter{Subject: subject}, herald.Raw()) {
		if err != nil {
			return false, err
		}
		if !p.mayRead(e.Name) {
			return false, nil
		}
	}
	return true, nil
}

// subjectVersions returns the subject version of each new event of a
// publish, just after its append (0 for an event without a subject or a
// duplicate). With an expected version they follow from it; otherwise the
// bus counts them (Bus.SubjectVersionAt) once per subject, since a batch's
// events of one subject follow each other in the subject. A version the
// bus cannot tell is left out of the answer, never guessed.
func (s *Server) subjectVersions(ctx context.Context, events []*herald.Event, results []herald.AppendResult, expected *uint64) []uint64 {
	var out []uint64
	next := map[string]uint64{}
	for i, e := range events {
		if e.Subject == "" || results[i].Duplicate {
			continue
		}
		if out == nil {
			out = make([]uint64, len(events))
		}
		v, ok := next[e.Subject]
		switch {
		case ok:
		case expected != nil:
			v = *expected + 1
		default:
			at, err := s.bus.SubjectVersionAt(ctx, e.Subject, results[i].Position)
			if err != nil {
				s.log.Warn("subject version after a publish", "subject", e.Subject, "err", err)
			}
			v = at
		}
		out[i] = v
		if v != 0 {
			next[e.Subject] = v + 1
		} else {
			next[e.Subject] = 0
		}
	}
	return out
}

// withCurrentVersion adds the subject's current version to the 409 of a
// conditional publish whose expected version did not match, when p may
// read the subject (mayReadSubject). To a caller that may not, the 409
// says only that the subject is not at the expected version.
func (s *Server) withCurrentVersion(ctx context.Context, p *principal, err error, subject string, expected uint64) error {
	if !errors.Is(err, herald.ErrConflict) {
		return err
	}
	if ok, rerr := s.mayReadSubject(ctx, p, subject); rerr != nil || !ok {
		return newError(http.StatusConflict, CodeConflict, "subject %q is not at version %d", subject, expected)
	}
	v, verr := s.bus.SubjectVersion(ctx, subject)
	if verr != nil {
		return err
	}
	ae := *toAPIError(err)
	ae.CurrentVersion = &v
	return &ae
}
