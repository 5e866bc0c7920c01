package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/api"
)

// handleSubject answers GET /v1/subjects/{subject}, the subject URL-escaped
// as one path segment: its version (what Herald-Expected-Version is
// compared with) and the positions of its first and last events the log
// holds, among those the caller may read. Any token may ask: a publisher
// needs the version for a conditional publish.
func (s *Server) handleSubject(w http.ResponseWriter, r *http.Request, p *principal) error {
	subject := r.PathValue("subject")
	if subject == "" {
		return badRequest("subject", "the subject is empty")
	}
	if len(subject) > herald.MaxSubjectLen {
		return badRequest("subject", "the subject is longer than %d bytes", herald.MaxSubjectLen)
	}
	var info api.SubjectInfo
	if p.mayReadPattern(">") {
		var err error
		if info, err = s.bus.Subject(r.Context(), subject); err != nil {
			return err
		}
	} else {
		v, err := s.bus.SubjectVersion(r.Context(), subject)
		if err != nil {
			return err
		}
		info = api.SubjectInfo{Subject: subject, Version: v}
		for e, err := range s.bus.Read(r.Context(), 0, herald.Filter{Subject: subject}, herald.Raw()) {
			if err != nil {
				return err
			}
			if !p.mayRead(e.Name) {
				continue
			}
			if info.FirstPosition == 0 {
				info.FirstPosition = e.Position
			}
			info.LastPosition = e.Position
		}
	}
	writeJSON(w, http.StatusOK, info)
	return nil
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
// conditional publish whose expected version did not match.
func (s *Server) withCurrentVersion(ctx context.Context, err error, subject string) error {
	if !errors.Is(err, herald.ErrConflict) {
		return err
	}
	v, verr := s.bus.SubjectVersion(ctx, subject)
	if verr != nil {
		return err
	}
	ae := *toAPIError(err)
	ae.CurrentVersion = &v
	return &ae
}
