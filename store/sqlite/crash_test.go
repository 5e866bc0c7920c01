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
