package sqlite

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/testwait"
)

var crashRounds = flag.Int("crash.rounds", 20, "rounds of the SIGKILL crash tests")

// crashEnv tells a re-executed test binary which store file to write to.
const crashEnv = "HERALD_SQLITE_CRASH_CHILD"

// TestCrashChild is the process TestCrash kills: it appends from 8
// goroutines and prints "ACK <id> <position>" for every acknowledged event.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("runs only as TestCrash's child process")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(20 * time.Second) // in case the parent is gone
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				batch := make([]*herald.Event, 1+n%3)
				for i := range batch {
					e := &herald.Event{Name: "crash.test", Data: []byte(`{"goroutine":` + strconv.Itoa(g) + `}`)}
					if err := e.Prepare(time.Now()); err != nil {
						panic(err)
					}
					batch[i] = e
				}
				res, err := s.Append(ctx, batch, herald.AppendOptions{})
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				for i, e := range batch {
					fmt.Fprintf(out, "ACK %s %d\n", e.ID, res[i].Position)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.Close()
	os.Exit(0)
}

// runCrashChild starts the test binary as a child running childTest with
// env, waits for its first acknowledgement, lets it run for a random
// moment, kills it with SIGKILL and returns the lines it acknowledged
// completely.
func runCrashChild(t *testing.T, childTest string, env []string, prefix string) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+childTest+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan []string, 1)
	first := make(chan struct{})
	go func() {
		var got []string
		r := bufio.NewReader(stdout)
		once := sync.Once{}
		for {
			line, err := r.ReadString('\n')
			if err != nil { // EOF, maybe after a partial line: ignore it
				break
			}
			if strings.HasPrefix(line, prefix) {
				got = append(got, strings.TrimSpace(line))
				once.Do(func() { close(first) })
			}
		}
		io.Copy(io.Discard, stdout)
		lines <- got
	}()
	select {
	case <-first:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child acknowledged nothing; stderr:\n%s", stderr.String())
	}
	// A crash at a random moment of the child's real work: a real process
	// on a real file, so a real delay.
	time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := <-lines
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the child ended before it was killed: %v; stderr:\n%s", err, stderr.String())
	}
	return got
}

func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[string]uint64{}
	for round := range *crashRounds {
		lines := runCrashChild(t, "TestCrashChild", []string{crashEnv + "=" + path}, "ACK ")
		for _, l := range lines {
			f := strings.Fields(l)
			pos, err := strconv.ParseUint(f[2], 10, 64)
			if len(f) != 3 || err != nil {
				t.Fatalf("bad line %q", l)
			}
			if p, ok := acked[f[1]]; ok && p != pos {
				t.Fatalf("id %s acknowledged at %d and %d", f[1], p, pos)
			}
			acked[f[1]] = pos
		}
		verifyCrashFile(t, path, acked)
		t.Logf("round %d: %d acknowledged in total", round, len(acked))
	}
}

// verifyCrashFile reopens the store and checks it against the
// acknowledged events.
func verifyCrashFile(t *testing.T, path string, acked map[string]uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	var check string
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	seen := map[string]uint64{}
	var last uint64
	for e, err := range s.Read(ctx, 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position != last+1 {
			t.Fatalf("position %d after %d: not contiguous", e.Position, last)
		}
		last = e.Position
		if _, dup := seen[e.ID]; dup {
			t.Fatalf("id %s stored twice", e.ID)
		}
		seen[e.ID] = e.Position
	}
	if head, _ := s.Head(ctx); head != last {
		t.Fatalf("head %d, last position %d", head, last)
	}
	for id, pos := range acked {
		if got, ok := seen[id]; !ok || got != pos {
			t.Fatalf("acknowledged id %s at %d: found at %d (present %v)", id, pos, got, ok)
		}
	}
}

var benchEventsFlag = flag.Int("bench.events", 200_000, "events BenchmarkMemory stores")

// crashBusEnv tells a re-executed test binary to run the bus child on a
// store file.
const crashBusEnv = "HERALD_SQLITE_CRASH_BUS_CHILD"

// respond is the durable handler of the bus crash test: for every
// order.placed it publishes two order.ack responses through the bus, whose
// ids are derived from the parent's.
func respond(bus *herald.Bus, onHandled func(id string)) herald.Handler {
	return herald.HandlerFunc(func(ctx context.Context, e *herald.Event) error {
		for i := range 2 {
			ack := &herald.Event{Name: "order.ack", Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)}
			if _, err := bus.Publish(ctx, ack); err != nil {
				return err
			}
		}
		if onHandled != nil {
			onHandled(e.ID)
		}
		return nil
	})
}

// TestCrashBusChild is the process TestCrashBus kills: a bus on the store
// with a durable subscription answering order.placed events, while one
// goroutine publishes more of them and prints "PUB <id>" for each
// acknowledged one.
func TestCrashBusChild(t *testing.T) {
	path := os.Getenv(crashBusEnv)
	if path == "" {
		t.Skip("runs only as TestCrashBus's child process")
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bus:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(line string) {
		mu.Lock()
		out.WriteString(line + "\n")
		out.Flush()
		mu.Unlock()
	}
	if _, err := bus.Subscribe(ctx, "order.placed", respond(bus, func(id string) { say("HANDLED " + id) }),
		herald.Durable("responder"), herald.Concurrency(4)); err != nil {
		fmt.Fprintln(os.Stderr, "subscribe:", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		batch := make([]*herald.Event, 5)
		for i := range batch {
			batch[i] = &herald.Event{Name: "order.placed", Data: []byte(`{}`), Subject: "order/" + strconv.Itoa(i)}
		}
		if _, err := bus.PublishBatch(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(3)
		}
		for _, e := range batch {
			say("PUB " + e.ID)
		}
		// The child paces its batches, so that a kill lands between and
		// within them rather than on a full pipe.
		time.Sleep(2 * time.Millisecond)
	}
	os.Exit(0)
}

func TestCrashBus(t *testing.T) {
	if os.Getenv(crashBusEnv) != "" || os.Getenv(crashEnv) != "" {
		t.Skip("child process")
	}
	path := filepath.Join(t.TempDir(), "bus.db")
	published := map[string]bool{}
	handled := 0
	rounds := max(3, *crashRounds/4)
	for range rounds {
		for _, l := range runCrashChild(t, "TestCrashBusChild", []string{crashBusEnv + "=" + path}, "") {
			kind, id, _ := strings.Cut(l, " ")
			switch kind {
			case "PUB":
				published[id] = true
			case "HANDLED":
				handled++
			}
		}
	}
	if handled == 0 {
		t.Fatal("the children handled nothing before they were killed")
	}
	// Restart once more, in this process, and let the subscription catch up.
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := bus.Subscribe(ctx, "order.placed", respond(bus, nil), herald.Durable("responder"), herald.Concurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	var placed []*herald.Event
	for e, err := range s.Read(ctx, 0, herald.Filter{Name: "order.placed"}) {
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, e)
	}
	stored := map[string]bool{}
	for _, e := range placed {
		stored[e.ID] = true
	}
	for id := range published {
		if !stored[id] {
			t.Fatalf("acknowledged event %s is missing", id)
		}
	}
	for _, e := range placed {
		testwait.Within(t, 60*time.Second, "the response to "+e.ID, func() bool {
			_, err := s.Get(ctx, herald.ChildID(e.ID, "responder", 1))
			return err == nil
		})
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(ctx); err != nil {
		t.Fatal(err)
	}
	acks := map[string]int{}
	for e, err := range s.Read(ctx, 0, herald.Filter{Name: "order.ack"}) {
		if err != nil {
			t.Fatal(err)
		}
		acks[e.CausationID]++
	}
	for _, e := range placed {
		if acks[e.ID] != 2 {
			t.Fatalf("event %s has %d responses, want 2", e.ID, acks[e.ID])
		}
	}
	if len(acks) != len(placed) {
		t.Fatalf("responses to %d events, %d events placed", len(acks), len(placed))
	}
	t.Logf("%d rounds: %d events placed, %d acknowledged, %d handled before the kills", rounds, len(placed), len(published), handled)
}
