package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
	"github.com/heraldhq/herald/sensitive"
	"github.com/heraldhq/herald/store/sqlite"
)

// The events of the chain, one Go type per event name.
type (
	RecordingEnded struct {
		RecordingID string  `json:"recording_id"`
		FilePath    string  `json:"file_path"`
		Duration    float64 `json:"duration"`
	}
	NoiseReductionCompleted struct {
		RecordingID string `json:"recording_id"`
		CleanPath   string `json:"clean_path"`
	}
	TranscriptionCompleted struct {
		RecordingID string `json:"recording_id"`
		Transcript  string `json:"transcript"`
		Words       int    `json:"words"`
	}
	MeetingNotesCompleted struct {
		RecordingID string   `json:"recording_id"`
		Summary     string   `json:"summary"`
		ActionItems []string `json:"action_items"`
	}
	DesktopNotificationCompleted struct {
		RecordingID string `json:"recording_id"`
		Message     string `json:"message"`
	}
)

var (
	recordingEnded          = herald.Define[RecordingEnded]("recording.ended")
	noiseReductionCompleted = herald.Define[NoiseReductionCompleted]("noise_reduction.completed")
	transcriptionCompleted  = herald.Define[TranscriptionCompleted]("transcription_local.completed", herald.WithJSONSchema([]byte(transcriptionSchema)))
	meetingNotesCompleted   = herald.Define[MeetingNotesCompleted]("meeting_notes_local.completed")
	notificationCompleted   = herald.Define[DesktopNotificationCompleted]("desktop_notification.completed")
)

// transcriptionSchema marks the transcript sensitive: it is encrypted at
// rest with its recording's key, and unreadable once the recording is
// forgotten.
const transcriptionSchema = `{
  "type": "object",
  "required": ["recording_id", "transcript"],
  "properties": {
    "recording_id": {"type": "string"},
    "transcript": {"type": "string", "x-sensitive": true},
    "words": {"type": "integer", "minimum": 0}
  }
}`

// transcript is what the transcription plugin hears in every recording.
const transcript = "Let's ship the release on Friday. Ada takes the changelog."

// The plugins' subscription names.
const (
	subNoise         = "noise_reduction"
	subTranscription = "transcription_local"
	subNotes         = "meeting_notes_local"
	subNotification  = "desktop_notification"
)

// chainLength is how many events a recording's chain holds when done.
const chainLength = 5

type config struct {
	// dataDir, when set, keeps the events in a SQLite store there.
	dataDir string
	// recordings is how many recordings to publish (at least 3).
	recordings int
}

// result is what a run did, for the test to check.
type result struct {
	// Recordings are the recording ids, in publishing order, and Chains
	// their traces at the end, in the same order.
	Recordings []string
	Chains     []*herald.Trace
	// DeadLettered are the dead letters seen before the fault was fixed.
	DeadLettered []herald.DeadLetter
	// Redriven is how many dead letters were redriven.
	Redriven int
	// States are the recordings' aggregates, rebuilt from their subjects'
	// events, in the order of Recordings, and Versions their versions.
	States   []recordingState
	Versions []uint64
	// PlaintextAtRest is set when a stored event holds a transcript in
	// clear; Forgotten is the first recording's aggregate after Forget.
	PlaintextAtRest bool
	Forgotten       recordingState
}

// recordingState is a recording as an event-sourced aggregate: the
// subject "recording/<id>" folded over the events of the chain.
type recordingState struct {
	Stages     []string `json:"stages"`
	Transcript string   `json:"transcript,omitempty"`
	Summary    string   `json:"summary,omitempty"`
	Notified   bool     `json:"notified,omitempty"`
}

func foldRecording(s recordingState, e *herald.Event) (recordingState, error) {
	s.Stages = append(slices.Clip(s.Stages), e.Name)
	switch {
	case transcriptionCompleted.Is(e):
		t, err := transcriptionCompleted.Decode(e)
		if err != nil {
			return s, err
		}
		s.Transcript = t.Transcript
	case meetingNotesCompleted.Is(e):
		m, err := meetingNotesCompleted.Decode(e)
		if err != nil {
			return s, err
		}
		s.Summary = m.Summary
	case notificationCompleted.Is(e):
		s.Notified = true
	}
	return s, nil
}

// faults are the failures the plugins simulate.
type faults struct {
	mu sync.Mutex
	// transcriptionBusy counts the temporary failures left per recording.
	transcriptionBusy map[string]int
	// notesBroken lists the recordings the notes plugin cannot handle
	// until the fault is fixed.
	notesBroken map[string]bool
}

func (f *faults) busy(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.transcriptionBusy[id] > 0 {
		f.transcriptionBusy[id]--
		return true
	}
	return false
}

func (f *faults) broken(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notesBroken[id]
}

func (f *faults) fix() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.notesBroken)
}

// run wires the plugins, publishes cfg.recordings recordings, waits for
// the chains (redriving the dead letter once its fault is fixed), prints
// them to w and returns what happened.
func run(ctx context.Context, cfg config, w io.Writer) (*result, error) {
	if cfg.recordings < 3 {
		cfg.recordings = 3
	}
	var st herald.Store
	if cfg.dataDir != "" {
		s, err := sqlite.Open(ctx, filepath.Join(cfg.dataDir, "herald.db"))
		if err != nil {
			return nil, err
		}
		st = s
	} else {
		st = herald.NewMemoryStore()
	}
	defer st.Close()

	// Sensitive fields are encrypted at rest with a key per subject. The
	// codec is given once, to the bus: it keeps its keys in the bus's KV
	// and learns which fields are sensitive from the bus's schemas, where
	// each typed event registers its own schema when it is published.
	codec, err := sensitive.New(nil, nil)
	if err != nil {
		return nil, err
	}
	bus, err := herald.New(herald.WithStore(st), herald.WithSource("recorder"), herald.WithCodec(codec))
	if err != nil {
		return nil, err
	}
	defer bus.Close(context.WithoutCancel(ctx))
	// Registered up front so that a subscriber's events are encrypted even
	// before the first transcription is published here.
	if err := transcriptionCompleted.Register(bus.Schemas()); err != nil {
		return nil, err
	}

	// Number this run's recordings after those a -data folder already
	// holds, so that a second run tells new stories instead of adding a
	// second set of stages to the first run's aggregates.
	before := 0
	for _, err := range bus.Read(ctx, 0, herald.Filter{Name: recordingEnded.Name()}) {
		if err != nil {
			return nil, err
		}
		before++
	}
	ids := make([]string, cfg.recordings)
	for i := range ids {
		ids[i] = fmt.Sprintf("rec-%d", before+i+1)
	}
	flaky, broken := ids[1], ids[2]
	f := &faults{
		transcriptionBusy: map[string]int{flaky: 1},
		notesBroken:       map[string]bool{broken: true},
	}
	if err := subscribePlugins(ctx, bus, f); err != nil {
		return nil, err
	}

	start, err := bus.Head(ctx)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		_, err := recordingEnded.Publish(ctx, bus, RecordingEnded{
			RecordingID: id,
			FilePath:    fmt.Sprintf("/recordings/%s.wav", id),
			Duration:    float64(600 + 60*i),
		}, herald.WithSubject("recording/"+id))
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", id, err)
		}
	}
	fmt.Fprintf(w, "published %d recordings; %s will fail once in %s, %s fails in %s until fixed\n\n",
		len(ids), flaky, subTranscription, broken, subNotes)

	corr, err := correlations(ctx, bus, start, ids)
	if err != nil {
		return nil, err
	}
	res := &result{Recordings: ids}

	// Every chain but the broken one completes; the broken one waits in
	// the dead-letter queue.
	err = poll(ctx, func() (bool, error) {
		dl, err := bus.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: subNotes})
		if err != nil || len(dl) == 0 {
			return false, err
		}
		for _, id := range ids {
			if id == broken {
				continue
			}
			if ok, err := complete(ctx, bus, corr[id]); !ok || err != nil {
				return false, err
			}
		}
		res.DeadLettered = dl
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the dead letter: %w", err)
	}
	for _, d := range res.DeadLettered {
		last := ""
		if n := len(d.Errors); n > 0 {
			last = d.Errors[n-1].Error
		}
		fmt.Fprintf(w, "dead letter in %s: %s of %s (permanent=%t): %s\n", d.Subscription, d.Event.Name, recordingOf(d.Event), d.Permanent, last)
	}

	f.fix()
	if res.Redriven, err = bus.Redrive(ctx, herald.DeadLetterQuery{Subscription: subNotes}); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "fault fixed; redrove %d dead letter(s)\n\n", res.Redriven)

	err = poll(ctx, func() (bool, error) {
		for _, id := range ids {
			if ok, err := complete(ctx, bus, corr[id]); !ok || err != nil {
				return false, err
			}
		}
		dl, err := bus.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: subNotes})
		return err == nil && len(dl) == 0, err
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for every chain: %w", err)
	}
	for _, id := range ids {
		tr, err := bus.Trace(ctx, corr[id])
		if err != nil {
			return nil, err
		}
		res.Chains = append(res.Chains, tr)
		printChain(w, id, tr)
	}

	// Each recording is also an aggregate: its subject's events, folded.
	repo, err := es.NewRepository(bus, foldRecording)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	for _, id := range ids {
		s, v, err := repo.Load(ctx, "recording/"+id)
		if err != nil {
			return nil, err
		}
		res.States, res.Versions = append(res.States, s), append(res.Versions, v)
		fmt.Fprintf(w, "aggregate recording/%s at version %d: %d stages, notified=%t, transcript %q\n", id, v, len(s.Stages), s.Notified, s.Transcript)
	}

	// The transcripts are stored encrypted; forgetting a recording deletes
	// its key, and its transcript with it, wherever the events went.
	for _, id := range ids {
		// Raw: the events as stored, not decoded.
		for e, err := range bus.Read(ctx, start, herald.Filter{CorrelationID: corr[id], Name: transcriptionCompleted.Name()}, herald.Raw()) {
			if err != nil {
				return nil, err
			}
			res.PlaintextAtRest = res.PlaintextAtRest || strings.Contains(string(e.Data), transcript)
		}
	}
	forget := "recording/" + ids[0]
	// Through the bus, which also drops the subject from the repository's
	// cache.
	if err := bus.Forget(ctx, forget); err != nil {
		return nil, err
	}
	if res.Forgotten, _, err = repo.Load(ctx, forget); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\ntranscripts in clear in the store: %t\nforgot %s: its transcript now reads %q\n", res.PlaintextAtRest, forget, res.Forgotten.Transcript)
	return res, nil
}

// subscribePlugins starts the four plugins, each a durable subscription
// with a short backoff so that retries take milliseconds.
func subscribePlugins(ctx context.Context, bus *herald.Bus, f *faults) error {
	opts := func(name string) []herald.SubscribeOption {
		return []herald.SubscribeOption{herald.Durable(name), herald.MaxAttempts(4), herald.Backoff(10*time.Millisecond, 50*time.Millisecond)}
	}
	if _, err := recordingEnded.Subscribe(ctx, bus, func(ctx context.Context, r RecordingEnded) error {
		_, err := noiseReductionCompleted.Publish(ctx, bus, NoiseReductionCompleted{
			RecordingID: r.RecordingID,
			CleanPath:   strings.TrimSuffix(r.FilePath, ".wav") + ".clean.wav",
		}, herald.WithSubject("recording/"+r.RecordingID), source(subNoise))
		return err
	}, opts(subNoise)...); err != nil {
		return err
	}
	if _, err := noiseReductionCompleted.Subscribe(ctx, bus, func(ctx context.Context, n NoiseReductionCompleted) error {
		if f.busy(n.RecordingID) {
			return herald.Temporary(errors.New("speech model busy, try again"))
		}
		_, err := transcriptionCompleted.Publish(ctx, bus, TranscriptionCompleted{
			RecordingID: n.RecordingID,
			Transcript:  transcript,
			Words:       10,
		}, herald.WithSubject("recording/"+n.RecordingID), source(subTranscription))
		return err
	}, opts(subTranscription)...); err != nil {
		return err
	}
	if _, err := transcriptionCompleted.Subscribe(ctx, bus, func(ctx context.Context, t TranscriptionCompleted) error {
		if f.broken(t.RecordingID) {
			return herald.Permanent(errors.New("notes model not installed"))
		}
		_, err := meetingNotesCompleted.Publish(ctx, bus, MeetingNotesCompleted{
			RecordingID: t.RecordingID,
			Summary:     "Release on Friday.",
			ActionItems: []string{"Ada: write the changelog"},
		}, herald.WithSubject("recording/"+t.RecordingID), source(subNotes))
		return err
	}, opts(subNotes)...); err != nil {
		return err
	}
	if _, err := meetingNotesCompleted.Subscribe(ctx, bus, func(ctx context.Context, m MeetingNotesCompleted) error {
		_, err := notificationCompleted.Publish(ctx, bus, DesktopNotificationCompleted{
			RecordingID: m.RecordingID,
			Message:     fmt.Sprintf("Notes ready for %s: %s", m.RecordingID, m.Summary),
		}, herald.WithSubject("recording/"+m.RecordingID), source(subNotification))
		return err
	}, opts(subNotification)...); err != nil {
		return err
	}
	return nil
}

// source names the plugin that publishes an event, as PanottiServer's
// create_child_event does.
func source(plugin string) herald.EventOption {
	return func(e *herald.Event) { e.SourcePlugin = plugin }
}

// correlations returns the correlation id of each recording published
// after position start.
func correlations(ctx context.Context, bus *herald.Bus, start uint64, ids []string) (map[string]string, error) {
	corr := map[string]string{}
	for e, err := range bus.Read(ctx, start, herald.Filter{Name: recordingEnded.Name()}) {
		if err != nil {
			return nil, err
		}
		corr[recordingOf(e)] = e.CorrelationID
	}
	for _, id := range ids {
		if corr[id] == "" {
			return nil, fmt.Errorf("recording %s was not stored", id)
		}
	}
	return corr, nil
}

func recordingOf(e *herald.Event) string {
	var v struct {
		RecordingID string `json:"recording_id"`
	}
	_ = e.Decode(&v)
	return v.RecordingID
}

// complete reports whether a chain holds its five events and every
// handler of them has succeeded.
func complete(ctx context.Context, bus *herald.Bus, correlationID string) (bool, error) {
	tr, err := bus.Trace(ctx, correlationID)
	if err != nil || len(tr.Events) < chainLength {
		return false, err
	}
	for _, te := range tr.Events[:chainLength-1] {
		if len(te.Outcomes) == 0 {
			return false, nil
		}
		for _, o := range te.Outcomes {
			if o.Status != herald.OutcomeSucceeded {
				return false, nil
			}
		}
	}
	return true, nil
}

// poll calls done every few milliseconds until it reports true, fails, or
// ctx ends.
func poll(ctx context.Context, done func() (bool, error)) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// printChain prints a recording's chain: each event with every
// subscription's outcome, saying which were redriven from the dead-letter
// queue.
func printChain(w io.Writer, id string, tr *herald.Trace) {
	fmt.Fprintf(w, "recording %s  (correlation %s)\n", id, tr.CorrelationID)
	for _, te := range tr.Events {
		e := te.Event
		fmt.Fprintf(w, "  #%-4d %-32s from %s\n", e.Position, e.Name, e.SourcePlugin)
		outs := slices.Clone(te.Outcomes)
		slices.SortFunc(outs, func(a, b herald.Outcome) int { return strings.Compare(a.Subscription, b.Subscription) })
		for _, o := range outs {
			status := string(o.Status)
			switch {
			case o.Redriven:
				status = "dead-lettered, redriven, " + status
			case o.Status == herald.OutcomeSucceeded && o.Attempts > 1:
				status = "retried, " + status
			}
			line := fmt.Sprintf("         → %-22s %-36s %d attempt(s) in %s", o.Subscription, status, o.Attempts, time.Duration(o.Duration).Round(time.Microsecond))
			if o.LastError != "" {
				line += "  (last error: " + o.LastError + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w)
}
