package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var wantChain = []string{
	"recording.ended",
	"noise_reduction.completed",
	"transcription_local.completed",
	"meeting_notes_local.completed",
	"desktop_notification.completed",
}

// wantSub is the plugin that handles each event of the chain.
var wantSub = map[string]string{
	"recording.ended":               subNoise,
	"noise_reduction.completed":     subTranscription,
	"transcription_local.completed": subNotes,
	"meeting_notes_local.completed": subNotification,
}

func TestPipelineMemory(t *testing.T) { testPipeline(t, "") }

func TestPipelineSQLite(t *testing.T) { testPipeline(t, t.TempDir()) }

func testPipeline(t *testing.T, dataDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, config{dataDir: dataDir, recordings: 3}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())

	if len(res.DeadLettered) != 1 || res.Redriven != 1 {
		t.Fatalf("want one dead letter, redriven once; got %d dead letters, %d redriven", len(res.DeadLettered), res.Redriven)
	}
	d := res.DeadLettered[0]
	if d.Subscription != subNotes || !d.Permanent || recordingOf(d.Event) != "rec-3" || d.Event.Name != "transcription_local.completed" {
		t.Fatalf("dead letter %+v", d)
	}

	if len(res.Chains) != 3 {
		t.Fatalf("%d chains", len(res.Chains))
	}
	for i, tr := range res.Chains {
		id := res.Recordings[i]
		if len(tr.Events) != chainLength {
			t.Fatalf("%s: %d events, want %d", id, len(tr.Events), chainLength)
		}
		for j, te := range tr.Events {
			e := te.Event
			if e.Name != wantChain[j] {
				t.Fatalf("%s: event %d is %s, want %s", id, j, e.Name, wantChain[j])
			}
			if e.CorrelationID != tr.CorrelationID || recordingOf(e) != id {
				t.Fatalf("%s: event %d belongs to %s / %s", id, j, e.CorrelationID, recordingOf(e))
			}
			if j == 0 {
				if e.CausationID != "" || e.CorrelationID != e.ID {
					t.Fatalf("%s: the root event has causation %q, correlation %q", id, e.CausationID, e.CorrelationID)
				}
			} else if e.CausationID != tr.Events[j-1].Event.ID {
				t.Fatalf("%s: event %d caused by %s, want %s", id, j, e.CausationID, tr.Events[j-1].Event.ID)
			}
			sub, handled := wantSub[e.Name]
			if !handled {
				if len(te.Outcomes) != 0 {
					t.Fatalf("%s: %s has outcomes %+v", id, e.Name, te.Outcomes)
				}
				continue
			}
			if len(te.Outcomes) != 1 {
				t.Fatalf("%s: %s has %d outcomes", id, e.Name, len(te.Outcomes))
			}
			o := te.Outcomes[0]
			if o.Subscription != sub || o.Status != herald.OutcomeSucceeded {
				t.Fatalf("%s: %s outcome %+v", id, e.Name, o)
			}
			wantAttempts, wantRedriven := 1, false
			switch {
			case id == "rec-2" && sub == subTranscription: // failed once, then retried
				wantAttempts = 2
			case id == "rec-3" && sub == subNotes: // dead-lettered, then redriven
				wantAttempts, wantRedriven = 2, true
			}
			if o.Attempts != wantAttempts || o.Redriven != wantRedriven {
				t.Fatalf("%s: %s took %d attempts, redriven %v; want %d, %v", id, sub, o.Attempts, o.Redriven, wantAttempts, wantRedriven)
			}
		}
	}
	for i, st := range res.States {
		if res.Versions[i] != chainLength || !slices.Equal(st.Stages, wantChain) || !st.Notified || st.Summary == "" {
			t.Fatalf("%s: aggregate at version %d: %+v", res.Recordings[i], res.Versions[i], st)
		}
	}
	for i, st := range res.States {
		if st.Transcript != transcript {
			t.Fatalf("%s: the aggregate reads transcript %q", res.Recordings[i], st.Transcript)
		}
	}
	if res.PlaintextAtRest {
		t.Fatal("a transcript is stored in clear")
	}
	if f := res.Forgotten; f.Transcript != "" || len(f.Stages) != chainLength {
		t.Fatalf("the forgotten recording reads %+v", f)
	}
	for _, s := range []string{"rec-1", "rec-2", "rec-3", "dead letter in meeting_notes_local", "redrove 1",
		"dead-lettered, redriven, succeeded", "retried, succeeded"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("output lacks %q", s)
		}
	}
}

// TestPipelineTwiceOnOneFolder: a second run on the same -data folder
// tells new recordings' stories; it does not add stages to the first
// run's aggregates.
func TestPipelineTwiceOnOneFolder(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	for round, want := range [][]string{{"rec-1", "rec-2", "rec-3"}, {"rec-4", "rec-5", "rec-6"}} {
		var out bytes.Buffer
		res, err := run(ctx, config{dataDir: dir, recordings: 3}, &out)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", round+1, err, out.String())
		}
		if !slices.Equal(res.Recordings, want) {
			t.Fatalf("run %d told %v, want %v", round+1, res.Recordings, want)
		}
		for i, st := range res.States {
			if len(st.Stages) != chainLength {
				t.Errorf("run %d: %s has %d stages, want %d", round+1, res.Recordings[i], len(st.Stages), chainLength)
			}
		}
	}
}
