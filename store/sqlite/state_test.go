package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	msqlite "modernc.org/sqlite"
)

func TestSubscriptionState(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	a, b := ev(t, "job.started"), ev(t, "job.done")
	appendOK(t, s, herald.AppendOptions{}, a, b)
	if _, ok, err := s.Checkpoint(ctx, "worker"); ok || err != nil {
		t.Fatalf("checkpoint before commit: %v %v", ok, err)
	}
	now := time.Now().UTC()
	err := s.Commit(ctx, "worker", herald.Progress{
		Checkpoint: 2,
		Outcomes: []herald.Outcome{
			{EventID: a.ID, EventName: a.Name, CorrelationID: a.CorrelationID, Status: herald.OutcomeSucceeded, Attempts: 1, Duration: herald.Duration(time.Millisecond), UpdatedAt: now},
			{EventID: b.ID, EventName: b.Name, CorrelationID: b.CorrelationID, Status: herald.OutcomeDeadLettered, Attempts: 4, LastError: "boom", UpdatedAt: now},
		},
		DeadLetters: []herald.DeadLetter{{Event: b, Errors: []herald.AttemptError{{Attempt: 4, At: now, Error: "boom"}}, DeadAt: now}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, _ := s.Checkpoint(ctx, "worker"); !ok || p != 2 {
		t.Fatalf("checkpoint %d %v", p, ok)
	}
	outs, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "worker"})
	if err != nil || len(outs) != 2 {
		t.Fatalf("outcomes %v %v", outs, err)
	}
	if outs[0].EventID != a.ID || outs[0].Position != 1 || outs[0].Subscription != "worker" || !outs[0].UpdatedAt.Equal(now) ||
		outs[1].Status != herald.OutcomeDeadLettered || outs[1].LastError != "boom" || outs[1].Position != 2 {
		t.Fatalf("outcomes %+v", outs)
	}
	if _, err := s.Outcomes(ctx, herald.OutcomeQuery{}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("empty outcome query: %v", err)
	}
	dls, err := s.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: "worker"})
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters %v %v", dls, err)
	}
	dl := dls[0]
	if dl.ID != herald.DeadLetterID("worker", b.ID) || dl.Event.ID != b.ID || dl.Event.Position != 2 || len(dl.Errors) != 1 || dl.Redrive {
		t.Fatalf("dead letter %+v", dl)
	}
	n, err := s.RedriveDeadLetters(ctx, herald.DeadLetterQuery{IDs: []string{dl.ID}})
	if err != nil || n != 1 {
		t.Fatalf("redrive %d %v", n, err)
	}
	dls, _ = s.DeadLetters(ctx, herald.DeadLetterQuery{OnlyRedrive: true})
	if len(dls) != 1 || !dls[0].Redrive {
		t.Fatalf("redrive flag: %+v", dls)
	}
	// The redrive succeeds: the entry is resolved with the outcome.
	err = s.Commit(ctx, "worker", herald.Progress{Checkpoint: 2, Resolved: []string{dl.ID},
		Outcomes: []herald.Outcome{{EventID: b.ID, EventName: b.Name, Status: herald.OutcomeSucceeded, Attempts: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if dls, _ := s.DeadLetters(ctx, herald.DeadLetterQuery{}); len(dls) != 0 {
		t.Fatalf("resolved entry still there: %+v", dls)
	}
	outs, _ = s.Outcomes(ctx, herald.OutcomeQuery{EventID: b.ID})
	if len(outs) != 1 || outs[0].Attempts != 5 || outs[0].Status != herald.OutcomeSucceeded {
		t.Fatalf("replaced outcome %+v", outs)
	}
	// Discard, checkpoints, delete.
	s.Commit(ctx, "other", herald.Progress{Checkpoint: 1, DeadLetters: []herald.DeadLetter{{Event: a, DeadAt: now}}})
	if n, err := s.DeleteDeadLetters(ctx, herald.DeadLetterQuery{Subscription: "other"}); n != 1 || err != nil {
		t.Fatalf("discard %d %v", n, err)
	}
	cps, _ := s.Checkpoints(ctx)
	if len(cps) != 2 || cps["worker"] != 2 || cps["other"] != 1 {
		t.Fatalf("checkpoints %v", cps)
	}
	if err := s.DeleteSubscription(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Checkpoint(ctx, "other"); ok {
		t.Fatal("deleted subscription still has a checkpoint")
	}
	if err := s.Commit(ctx, "", herald.Progress{}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("empty subscription: %v", err)
	}
}

func TestDeadLettersOldestFirst(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var dls []herald.DeadLetter
	for i := range 5 {
		// Out of order, and with fractions of different lengths.
		dls = append(dls, herald.DeadLetter{Event: ev(t, "x"), DeadAt: base.Add(time.Duration(4-i) * 100 * time.Millisecond)})
	}
	dls = append(dls, herald.DeadLetter{Event: ev(t, "x"), DeadAt: base.Add(time.Second)})
	if err := s.Commit(ctx, "s", herald.Progress{DeadLetters: dls}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.DeadLetters(ctx, herald.DeadLetterQuery{Limit: 10})
	for i := 1; i < len(got); i++ {
		if got[i].DeadAt.Before(got[i-1].DeadAt) {
			t.Fatalf("not oldest first: %v then %v", got[i-1].DeadAt, got[i].DeadAt)
		}
	}
	if got, _ := s.DeadLetters(ctx, herald.DeadLetterQuery{Limit: 2}); len(got) != 2 {
		t.Fatalf("limit: %d", len(got))
	}
}

func TestKV(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	if err := s.PutValue(ctx, "push", "hooks/a=1", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	s.PutValue(ctx, "push", "b", []byte("2"))
	s.PutValue(ctx, "push", "b", []byte("3"))
	s.PutValue(ctx, "other", "b", nil)
	if v, err := s.GetValue(ctx, "push", "b"); err != nil || string(v) != "3" {
		t.Fatalf("get %q %v", v, err)
	}
	if v, err := s.GetValue(ctx, "other", "b"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value %q %v", v, err)
	}
	m, _ := s.ListValues(ctx, "push")
	if len(m) != 2 || string(m["hooks/a=1"]) != `{"x":1}` {
		t.Fatalf("list %v", m)
	}
	if err := s.DeleteValue(ctx, "push", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteValue(ctx, "push", "missing"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetValue(ctx, "push", "b"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	for _, bad := range [][2]string{{"", "k"}, {"b", ""}, {"b k", "k"}, {"b", "k;drop"}} {
		if err := s.PutValue(ctx, bad[0], bad[1], nil); !errors.Is(err, herald.ErrInvalidEvent) {
			t.Fatalf("bad key %q: %v", bad, err)
		}
	}
}

func TestPrune(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	old := func(days int) func(*herald.Event) {
		return func(e *herald.Event) { e.Timestamp = now.Add(-time.Duration(days) * 24 * time.Hour) }
	}
	// 1..10: debug events 2 days old; 11..20: audit events 40 days old with a subject.
	var batch []*herald.Event
	for range 10 {
		batch = append(batch, ev(t, "debug.trace", old(2)))
	}
	for i := range 10 {
		batch = append(batch, ev(t, "audit.login", old(40), withSubject(fmt.Sprintf("user/%d", i%2))))
	}
	batch = append(batch, ev(t, "keep.me", old(400)))
	appendOK(t, s, herald.AppendOptions{}, batch...)
	// Outcomes and a dead letter for events about to go.
	s.Commit(ctx, "w", herald.Progress{Checkpoint: 20,
		Outcomes:    []herald.Outcome{{EventID: batch[0].ID, EventName: "debug.trace", Status: herald.OutcomeSucceeded}},
		DeadLetters: []herald.DeadLetter{{Event: batch[1], DeadAt: now}}})
	s.Commit(ctx, "slow", herald.Progress{Checkpoint: 4})
	// user/1's snapshot covers up to position 14: its later events stay.
	s.PutValue(ctx, herald.SnapshotBucket, "user/1", []byte(`{"position":14}`))
	rules := []herald.RetentionRule{
		{Pattern: "debug.>", MaxAge: herald.Duration(24 * time.Hour)},
		{Pattern: "audit.*", MaxCount: 4, Force: true},
		{Pattern: "keep.*"},
	}
	res, err := herald.Prune(ctx, s, rules, now, herald.PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// debug: 1..4 deleted, 5..10 held by "slow" (checkpoint 4).
	// audit (force): oldest 6 of 10 by count = 11..16; 16 is user/1 above its
	// snapshot (14): held. So 11..15 deleted.
	if res.Deleted != 9 || res.Held != 7 {
		t.Fatalf("prune result %+v", res)
	}
	var left []uint64
	for _, e := range readAll(t, s, 0, herald.Filter{}) {
		left = append(left, e.Position)
	}
	want := []uint64{5, 6, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	if outs, _ := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "w"}); len(outs) != 0 {
		t.Fatalf("outcomes of deleted events remain: %+v", outs)
	}
	if dls, _ := s.DeadLetters(ctx, herald.DeadLetterQuery{}); len(dls) != 0 {
		t.Fatalf("dead letters of deleted events remain: %+v", dls)
	}
	if v, _ := s.SubjectVersion(ctx, "user/0"); v != 5 {
		t.Fatalf("subject version after prune: %d", v)
	}
	// Deleting everything (forced) never lets a position be reused.
	s.DeleteSubscription(ctx, "slow")
	s.DeleteSubscription(ctx, "w")
	s.DeleteValue(ctx, herald.SnapshotBucket, "user/1")
	res, err = herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: ">", MaxCount: 1, Force: true}}, now, herald.PruneOptions{})
	if err != nil || res.Deleted != 11 {
		t.Fatalf("prune all but one: %+v %v", res, err)
	}
	res, err = herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: ">", MaxAge: herald.Duration(time.Hour)}}, now, herald.PruneOptions{})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("prune last: %+v %v", res, err)
	}
	if r := appendOK(t, s, herald.AppendOptions{}, ev(t, "fresh")); r[0].Position != 22 {
		t.Fatalf("position after pruning everything: %d", r[0].Position)
	}
	if v, _ := s.SubjectVersion(ctx, "user/1"); v != 5 {
		t.Fatalf("subject version after pruning all: %d", v)
	}
	if _, err := herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: "Bad"}}, now, herald.PruneOptions{}); err == nil {
		t.Fatal("bad pattern accepted")
	}
}

func TestPruneGivesSpaceBack(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	pad := make([]byte, 2000)
	for i := range pad {
		pad[i] = 'x'
	}
	for range 4 {
		var batch []*herald.Event
		for range 250 {
			batch = append(batch, ev(t, "bulk.data", func(e *herald.Event) {
				e.Data = []byte(`{"pad":"` + string(pad) + `"}`)
				e.Timestamp = time.Now().Add(-48 * time.Hour)
			}))
		}
		appendOK(t, s, herald.AppendOptions{}, batch...)
	}
	pages := func() (n int) {
		s.rdb.QueryRow("PRAGMA page_count").Scan(&n)
		return n
	}
	before := pages()
	res, err := herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: ">", MaxAge: herald.Duration(time.Hour)}}, time.Now(), herald.PruneOptions{})
	if err != nil || res.Deleted != 1000 {
		t.Fatalf("prune %+v %v", res, err)
	}
	if after := pages(); after > before/4 {
		t.Fatalf("pages %d -> %d: space not given back", before, after)
	}
}

// TestPrunedIDsStayDuplicates appends the ids of events retention deleted
// again, alone, in a mixed batch, conditionally and after a reopen: each is
// a duplicate at its first position and nothing is stored again.
func TestPrunedIDsStayDuplicates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openTest(t, path)
	ctx := context.Background()
	now := time.Now()
	old := func(e *herald.Event) { e.Timestamp = now.Add(-48 * time.Hour) }
	a := ev(t, "tmp.a", old)
	b := ev(t, "tmp.b", old, withSubject("agg/1"))
	keep := ev(t, "keep.me")
	appendOK(t, s, herald.AppendOptions{}, a, b, keep)
	res, err := herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: "tmp.>", MaxAge: herald.Duration(time.Hour)}}, now, herald.PruneOptions{})
	if err != nil || res.Deleted != 2 {
		t.Fatalf("prune %+v %v", res, err)
	}
	check := func(s *Store) {
		t.Helper()
		fresh := ev(t, "new.one")
		got := appendOK(t, s, herald.AppendOptions{}, a.Clone(), fresh, a.Clone(), b.Clone())
		head, _ := s.Head(ctx)
		want := []herald.AppendResult{{Position: 1, Duplicate: true}, {Position: head}, {Position: 1, Duplicate: true}, {Position: 2, Duplicate: true}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("append of pruned ids: %+v, want %+v", got, want)
		}
		// A retried conditional append of a pruned event is a duplicate
		// too, whatever the subject's version now is.
		got = appendOK(t, s, herald.AppendOptions{CheckVersion: true, ExpectedVersion: 0}, b.Clone())
		if got[0] != (herald.AppendResult{Position: 2, Duplicate: true}) {
			t.Fatalf("conditional append of a pruned id: %+v", got)
		}
		for _, e := range readAll(t, s, 0, herald.Filter{}) {
			if e.ID == a.ID || e.ID == b.ID {
				t.Fatalf("pruned event %s stored again at %d", e.ID, e.Position)
			}
		}
		if _, err := s.Get(ctx, a.ID); !errors.Is(err, herald.ErrNotFound) {
			t.Fatalf("Get of a pruned id: %v", err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, path))
}

// TestMigrateFromVersion1 opens a file of the first schema version: it is
// migrated, and its pruned events' ids are known from then on.
func TestMigrateFromVersion1(t *testing.T) {
	s := openTest(t, oldFile(t, 1))
	var v int
	s.rdb.QueryRow("PRAGMA user_version").Scan(&v)
	if v != schemaVersion() {
		t.Fatalf("user_version %d after open, want %d", v, schemaVersion())
	}
	e := ev(t, "tmp.a", func(e *herald.Event) { e.Timestamp = time.Now().Add(-time.Hour) })
	appendOK(t, s, herald.AppendOptions{}, e)
	ctx := context.Background()
	if res, err := herald.Prune(ctx, s, []herald.RetentionRule{{Pattern: ">", MaxAge: herald.Duration(time.Minute)}}, time.Now(), herald.PruneOptions{}); err != nil || res.Deleted != 1 {
		t.Fatalf("prune %+v %v", res, err)
	}
	if r := appendOK(t, s, herald.AppendOptions{}, e.Clone()); r[0] != (herald.AppendResult{Position: 1, Duplicate: true}) {
		t.Fatalf("append of a pruned id: %+v", r)
	}
}

// TestCommitManyOutcomes records more outcomes than one statement takes,
// one event twice (the later wins) and one with a wrong position (the
// stored event's wins).
func TestCommitManyOutcomes(t *testing.T) {
	s := openTest(t, "", WithDurability(Normal))
	ctx := context.Background()
	var evs []*herald.Event
	for range 70 {
		evs = append(evs, ev(t, "many.outcomes"))
	}
	appendOK(t, s, herald.AppendOptions{}, evs...)
	var outs []herald.Outcome
	for _, e := range evs {
		outs = append(outs, herald.Outcome{EventID: e.ID, EventName: e.Name, Position: e.Position,
			Status: herald.OutcomeSucceeded, Attempts: 1})
	}
	outs[3].Position = 999
	again := outs[40]
	again.Attempts, again.Status = 2, herald.OutcomeRetrying
	outs = append(outs, again)
	if err := s.Commit(ctx, "w", herald.Progress{Checkpoint: 70, Outcomes: outs}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "w"})
	if err != nil || len(got) != 70 {
		t.Fatalf("%d outcomes, %v", len(got), err)
	}
	for i, o := range got {
		if o.Position != uint64(i+1) || o.EventID != evs[i].ID {
			t.Fatalf("outcome %d: %+v", i, o)
		}
	}
	if got[40].Attempts != 2 || got[40].Status != herald.OutcomeRetrying {
		t.Fatalf("the later outcome of an event did not win: %+v", got[40])
	}
}

// TestMigrateKVRevisions opens a file whose KV entries predate revisions:
// they keep their values, read at revision 1, and update at it; later
// writes get greater revisions.
func TestMigrateKVRevisions(t *testing.T) {
	s := openTest(t, oldFile(t, 2, `INSERT INTO kv (bucket, key, value) VALUES ('keys', 'a', 'old-a'), ('keys', 'b', 'old-b')`))
	ctx := context.Background()
	e, err := s.GetEntry(ctx, "keys", "a")
	if err != nil || string(e.Value) != "old-a" || e.Revision != 1 {
		t.Fatalf("migrated entry = {%q %d}, %v; want {old-a 1}", e.Value, e.Revision, err)
	}
	rev, err := s.UpdateValue(ctx, "keys", "a", []byte("new-a"), 1)
	if err != nil || rev <= 1 {
		t.Fatalf("UpdateValue at the migrated revision = %d, %v", rev, err)
	}
	if _, err := s.UpdateValue(ctx, "keys", "b", []byte("x"), 2); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("UpdateValue of a migrated entry at a revision it never had: %v", err)
	}
	if _, err := s.CreateValue(ctx, "keys", "b", []byte("x")); !errors.Is(err, herald.ErrConflict) {
		t.Fatalf("CreateValue of a migrated key: %v", err)
	}
	rc, err := s.CreateValue(ctx, "keys", "c", []byte("c"))
	if err != nil || rc <= rev {
		t.Fatalf("CreateValue after the update = %d, %v; want > %d", rc, err, rev)
	}
}

// TestMigrateOutcomeRedriven opens a file whose outcomes predate
// Outcome.Redriven: they read as not redriven, and outcomes committed
// after keep it.
func TestMigrateOutcomeRedriven(t *testing.T) {
	s := openTest(t, oldFile(t, 3, `INSERT INTO outcomes (subscription, event_id, event_name, position, correlation_id,
		status, attempts, last_error, duration, updated_at)
		VALUES ('w', 'old', 'o.e', 1, 'old', 'succeeded', 5, '', 0, '2026-01-01T00:00:00Z')`))
	ctx := context.Background()
	got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "w"})
	if err != nil || len(got) != 1 || got[0].EventID != "old" || got[0].Attempts != 5 || got[0].Redriven {
		t.Fatalf("migrated outcomes = %+v, %v; want the old one, not redriven", got, err)
	}
	redriven := got[0]
	redriven.Attempts, redriven.Redriven = 6, true
	if err := s.Commit(ctx, "w", herald.Progress{Outcomes: []herald.Outcome{redriven}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "w"}); err != nil || len(got) != 1 || !got[0].Redriven || got[0].Attempts != 6 {
		t.Fatalf("outcomes after a redriven one replaced the old = %+v, %v", got, err)
	}
}

// oldFile creates a store file at schema version version (the first
// version migrations applied), runs the statements data on it, and
// returns its path.
func oldFile(t *testing.T, version int, data ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", version))
	c, err := msqlite.NewConnector(path + "?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	qs := append([]string{"PRAGMA auto_vacuum = INCREMENTAL"}, migrations[:version]...)
	qs = append(qs, data...)
	qs = append(qs, fmt.Sprintf("PRAGMA application_id = %d", applicationID), fmt.Sprintf("PRAGMA user_version = %d", version))
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestMigrateOutcomeHistory opens a file whose outcomes predate
// Outcome.History: they read without history, and outcomes committed
// after keep theirs.
func TestMigrateOutcomeHistory(t *testing.T) {
	s := openTest(t, oldFile(t, 4, `INSERT INTO outcomes (subscription, event_id, event_name, position, correlation_id,
		status, attempts, last_error, duration, updated_at, redriven)
		VALUES ('w', 'old', 'o.e', 1, 'old', 'succeeded', 3, '', 0, '2026-01-01T00:00:00Z', 0)`))
	ctx := context.Background()
	got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "w"})
	if err != nil || len(got) != 1 || got[0].EventID != "old" || got[0].Attempts != 3 || got[0].History != nil {
		t.Fatalf("migrated outcomes = %+v, %v; want the old one, without history", got, err)
	}
	o := got[0]
	o.History = []herald.AttemptError{{Attempt: 1, At: o.UpdatedAt, Duration: herald.Duration(time.Second), Error: "boom"}}
	if err := s.Commit(ctx, "w", herald.Progress{Outcomes: []herald.Outcome{o}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Outcomes(ctx, herald.OutcomeQuery{Subscription: "w"}); err != nil || len(got) != 1 || len(got[0].History) != 1 || got[0].History[0].Duration != herald.Duration(time.Second) {
		t.Fatalf("outcomes after one with history replaced the old = %+v, %v", got, err)
	}
}
