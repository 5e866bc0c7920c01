package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/sqlitedamage"
	"github.com/heraldhq/herald/internal/testlog"
	"github.com/heraldhq/herald/internal/testwait"
)

// filledStore writes n events (sqlitedamage.Fill) into a new store file,
// closes it and returns its path.
func filledStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openTest(t, path)
	sqlitedamage.Fill(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A page whose type byte is not a b-tree page type: before, the store
// opened, said it was ready, and failed every read that reached the page.
// Now Open refuses the file, saying what to do, and changes nothing in it;
// an operator who skips the check gets a store that reports itself not
// ready at the first read of the page.
func TestOpenRefusesBadPageType(t *testing.T) {
	path := filledStore(t, 400)
	sqlitedamage.BadPage(t, path, damageID(200))
	before, _ := os.ReadFile(path)

	_, err := Open(context.Background(), path)
	if !errors.Is(err, ErrDamaged) || !errors.Is(err, herald.ErrIncompatibleStore) {
		t.Fatalf("Open of a file with a bad page type: %v; want ErrDamaged", err)
	}
	if !strings.Contains(err.Error(), "quick check") || !strings.Contains(err.Error(), "backup") {
		t.Errorf("the refusal does not say what failed and what to do: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a refused file was modified")
	}

	s := openTest(t, path, WithQuickCheck(0))
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("Ready before any damage was met: %v", err)
	}
	var rerr error
	for _, err := range s.Read(context.Background(), 0, herald.Filter{}) {
		if err != nil {
			rerr = err
		}
	}
	if !errors.Is(rerr, ErrDamaged) {
		t.Fatalf("reading through the bad page: %v; want ErrDamaged", rerr)
	}
	if err := s.Ready(context.Background()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Ready after a read met the bad page: %v; want ErrDamaged", err)
	}
}

// A read that keeps failing (a bad page, the check skipped): before, the
// subscription logged the failure ten times a second; now it waits longer
// between tries (up to 5 s) and logs at most one line a minute.
func TestFailingReadsAreLoggedRarely(t *testing.T) {
	path := filledStore(t, 400)
	sqlitedamage.BadPage(t, path, damageID(1))
	synctest.Test(t, func(t *testing.T) {
		st := openTest(t, path, WithQuickCheck(0))
		var logs testlog.Buffer
		bus, err := herald.New(herald.WithStore(st), herald.WithLogger(testlog.Logger(&logs)))
		if err != nil {
			t.Fatal(err)
		}
		defer bus.Close(context.Background())
		sub, err := bus.Subscribe(context.Background(), "rec.>", herald.HandlerFunc(func(context.Context, *herald.Event) error { return nil }),
			herald.Durable("recorder"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		n := strings.Count(logs.String(), "reading the log failed")
		if n < 2 || n > 11 {
			t.Errorf("a read failing for 10 minutes was logged %d times; want one line a minute", n)
		}
		sub.Close(context.Background())
	})
}

// damageBody damages event n's stored body in a way SQLite's checks
// cannot see.
func damageBody(t *testing.T, path string, n int) {
	t.Helper()
	sqlitedamage.FlipBody(t, path, damageID(n))
}

var damageID = sqlitedamage.ID

// An event whose body does not decode: a read yields the events before
// it and then a DamagedEventError naming it, a read after it goes on, and
// the store reports itself not ready.
func TestDamagedEventBody(t *testing.T) {
	path := filledStore(t, 20)
	damageBody(t, path, 10)
	s := openTest(t, path)
	ctx := context.Background()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready before the event was read: %v", err)
	}
	var got []uint64
	var rerr error
	for e, err := range s.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			rerr = err
			break
		}
		got = append(got, e.Position)
	}
	if len(got) != 9 || got[8] != 9 {
		t.Errorf("read before the damaged event: %v; want 1…9", got)
	}
	var de *herald.DamagedEventError
	if !errors.As(rerr, &de) || de.Position != 10 || !errors.Is(rerr, ErrDamaged) {
		t.Fatalf("read error: %v; want a DamagedEventError at 10", rerr)
	}
	if de.Event == nil || de.Event.ID != damageID(10) || de.Event.Name != sqlitedamage.Name || len(de.Event.Data) != 0 {
		t.Errorf("stand-in: %+v; want its id and name, no data", de.Event)
	}
	if after := readAll(t, s, 10, herald.Filter{}); len(after) != 10 {
		t.Errorf("read after the damaged event: %d events, want 10", len(after))
	}
	if err := s.Ready(ctx); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("Ready after meeting a damaged event: %v; want ErrDamaged saying what to do", err)
	}
}

// One damaged event body: before, a durable subscription stalled forever
// at the event before it, logging ten times a second. Now the event
// becomes a permanent dead letter saying it is damaged (the handler never
// sees it), the subscription goes on, and a redrive of the dead letter
// does not deliver it.
func TestDamagedEventIsDeadLettered(t *testing.T) {
	path := filledStore(t, 20)
	damageBody(t, path, 10)
	st := openTest(t, path)
	var logs testlog.Buffer
	bus, err := herald.New(herald.WithStore(st), herald.WithLogger(testlog.Logger(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(context.Background())
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[string]int{}
	if _, err := bus.Subscribe(ctx, "rec.>", herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		mu.Lock()
		seen[e.ID]++
		mu.Unlock()
		return nil
	}), herald.Durable("recorder")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the checkpoint past every event", func() bool {
		cp, _, _ := bus.Checkpoint(ctx, "recorder")
		return cp == 20
	})
	mu.Lock()
	if len(seen) != 19 || seen[damageID(10)] != 0 {
		t.Errorf("handled %d events (the damaged one %d times); want the 19 others", len(seen), seen[damageID(10)])
	}
	mu.Unlock()
	dls, err := bus.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: "recorder"})
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters: %v, %v; want one", dls, err)
	}
	dl := dls[0]
	if dl.Event.ID != damageID(10) || dl.Event.Position != 10 || !dl.Permanent ||
		len(dl.Errors) != 1 || !strings.Contains(dl.Errors[0].Error, "damaged") {
		t.Fatalf("dead letter: %+v, %+v", dl, dl.Errors)
	}
	if n := strings.Count(logs.String(), "damaged"); n > 3 {
		t.Errorf("the damaged event was logged %d times", n)
	}
	if err := bus.Ready(ctx); !errors.Is(err, ErrDamaged) {
		t.Errorf("Bus.Ready: %v; want ErrDamaged", err)
	}

	if n, err := bus.Redrive(ctx, herald.DeadLetterQuery{Subscription: "recorder"}); err != nil || n != 1 {
		t.Fatalf("Redrive: %d, %v", n, err)
	}
	testwait.For(t, "the redrive to be settled", func() bool {
		dls, _ := bus.DeadLetters(ctx, herald.DeadLetterQuery{Subscription: "recorder"})
		return len(dls) == 1 && !dls[0].Redrive && len(dls[0].Errors) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if seen[damageID(10)] != 0 {
		t.Error("the redrive delivered the damaged event's stand-in")
	}
}

// A store file emptied (truncated to 0 bytes), replaced by another store,
// or rolled back to an older copy: before, an emptied file opened as an
// empty store and gave position 1 out again. Now the marker beside the
// file refuses each, and deleting the marker is how an operator starts
// over (or keeps a restored copy) on purpose.
func TestMarkerRefusesEmptiedReplacedOrRolledBack(t *testing.T) {
	ctx := context.Background()
	refused := func(t *testing.T, path, want string) {
		t.Helper()
		before, _ := os.ReadFile(path)
		_, err := Open(ctx, path)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "delete the marker") {
			t.Fatalf("Open: %v; want ErrDamaged saying %q", err, want)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatal("a refused file was modified")
		}
	}
	t.Run("emptied", func(t *testing.T) {
		path := filledStore(t, 5)
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		refused(t, path, "emptied")
		if err := os.Remove(path + ".id"); err != nil {
			t.Fatal(err)
		}
		s := openTest(t, path) // starting over on purpose
		if h, _ := s.Head(ctx); h != 0 {
			t.Errorf("head of the new store: %d", h)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		path := filledStore(t, 5)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		refused(t, path, "emptied")
	})
	t.Run("replaced", func(t *testing.T) {
		path, other := filledStore(t, 5), filledStore(t, 8)
		b, _ := os.ReadFile(other)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, path, "replaced")
	})
	t.Run("rolled back", func(t *testing.T) {
		path := filledStore(t, 5)
		old, _ := os.ReadFile(path)
		s := openTest(t, path)
		appendOK(t, s, herald.AppendOptions{}, ev(t, "rec.made"))
		s.Close()
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, path, "rolled back")
		if err := os.Remove(path + ".id"); err != nil {
			t.Fatal(err)
		}
		s = openTest(t, path) // the restored copy, kept on purpose
		if h, _ := s.Head(ctx); h != 5 {
			t.Errorf("head of the restored store: %d", h)
		}
	})
	t.Run("unreadable marker", func(t *testing.T) {
		path := filledStore(t, 2)
		if err := os.WriteFile(path+".id", []byte("{\"sto"), 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, path, "not readable")
	})
}

// The marker is written at the first start and at every open and clean
// close; a store without one (written by an earlier herald, or whose
// marker was deleted) opens and gets one; a temporary marker left by a
// crash is ignored.
func TestMarkerLifecycle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openTest(t, path)
	first, err := readMarker(path)
	if err != nil || first == nil || first.Head != 0 {
		t.Fatalf("marker at the first start: %+v, %v", first, err)
	}
	appendOK(t, s, herald.AppendOptions{}, ev(t, "a"), ev(t, "b"))
	s.Close()
	if m, _ := readMarker(path); m == nil || m.Store != first.Store || m.Head != 2 {
		t.Fatalf("marker after a clean close: %+v; want store %s, head 2", m, first.Store)
	}
	if err := os.Remove(path + ".id"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".id.tmp", []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	if m, _ := readMarker(path); m == nil || m.Store != first.Store || m.Head != 2 {
		t.Fatalf("marker written again at open: %+v", m)
	}
	if h, _ := s.Head(ctx); h != 2 {
		t.Errorf("head: %d", h)
	}
	s.Close()
	if fi, err := os.Stat(path + ".id"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("marker mode: %v, %v", fi, err)
	}
}

// While the store runs, the marker follows the head at most once a
// minute, so that a copy of the file older than that is refused.
func TestMarkerFollowsTheHead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "herald.db")
		s := openTest(t, path)
		appendOK(t, s, herald.AppendOptions{}, ev(t, "a"))
		synctest.Wait()
		if m, _ := readMarker(path); m == nil || m.Head != 0 {
			t.Fatalf("marker right after a commit: %+v; want head 0 (a minute has not passed)", m)
		}
		time.Sleep(markEvery)
		appendOK(t, s, herald.AppendOptions{}, ev(t, "b"))
		synctest.Wait() // the writer records it after answering
		if m, _ := readMarker(path); m == nil || m.Head != 2 {
			t.Fatalf("marker a minute later: %+v; want head 2", m)
		}
		s.Close()
	})
}

// The quick check's time limit: a check that runs out of time is
// skipped with a warning, and the store opens.
func TestQuickCheckTimeLimit(t *testing.T) {
	path := filledStore(t, 50)
	var logs testlog.Buffer
	s := openTest(t, path, WithQuickCheck(time.Nanosecond), WithLogger(testlog.Logger(&logs)))
	if h, _ := s.Head(context.Background()); h != 50 {
		t.Errorf("head: %d", h)
	}
	if !strings.Contains(logs.String(), "did not finish in time") {
		t.Errorf("no warning that the check was skipped: %s", logs.String())
	}
}
