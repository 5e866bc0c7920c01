package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	msqlite "modernc.org/sqlite"
)

// benchData makes an event of about 300 bytes stored, as in the issue's
// measurement of the drivers.
var benchData = []byte(`{"recording_id":"rec-0001","path":"/recordings/2026/01/01/rec-0001.mkv","duration_ms":3600000,"codec":"h264","size":123456789,"note":"` +
	strings.Repeat("x", 60) + `"}`)

func benchEvent(b *testing.B) *herald.Event {
	e := &herald.Event{Name: "recording.completed", Data: benchData, SourcePlugin: "recorder"}
	if err := e.Prepare(time.Now()); err != nil {
		b.Fatal(err)
	}
	return e
}

func benchEvents(b *testing.B, n int) []*herald.Event {
	out := make([]*herald.Event, n)
	for i := range out {
		out[i] = benchEvent(b)
	}
	return out
}

func benchStore(b *testing.B, opts ...Option) *Store {
	b.Helper()
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAppend is durable publishing (Durability Full) by 1, 8 and 64
// concurrent publishers, one event per Append; it reports events/s and the
// p50 latency of one Append.
func BenchmarkAppend(b *testing.B) {
	for _, pubs := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("publishers=%d", pubs), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			lat := make([][]time.Duration, pubs)
			var next atomic.Int64
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range pubs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						e := benchEvent(b)
						t0 := time.Now()
						if _, err := s.Append(ctx, []*herald.Event{e}, herald.AppendOptions{}); err != nil {
							b.Error(err)
							return
						}
						lat[p] = append(lat[p], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			reportCPU(b, cpu0, b.N)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(percentile(slices.Concat(lat...), 50).Microseconds()), "p50-µs")
			st := s.Stats()
			b.ReportMetric(float64(st.Requests)/float64(max(st.Commits, 1)), "appends/commit")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used so far.
// On a shared machine it says more about a benchmark's cost than the
// wall clock does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per event used since start.
func reportCPU(b *testing.B, start time.Duration, events int) {
	b.ReportMetric(float64(cpuTime()-start)/float64(max(events, 1)), "cpu-ns/event")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[(len(d)-1)*p/100]
}

// BenchmarkAppendBatch appends batches of 100 and 1,000 events; compare
// with BenchmarkRawInsert of the same size.
func BenchmarkAppendBatch(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			batches := make([][]*herald.Event, b.N)
			for i := range batches {
				batches[i] = benchEvents(b, size)
			}
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				if _, err := s.Append(ctx, batches[i], herald.AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0, b.N*size)
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRawInsert is the driver alone: the same rows into the same table
// and indexes of a file set up like the store's (WAL, synchronous=FULL,
// incremental auto-vacuum), in transactions of 1, 100 and 1,000 rows,
// through one prepared statement.
func BenchmarkRawInsert(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "raw.db")
			c, err := msqlite.NewConnector(path + "?_auto_vacuum=INCREMENTAL&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
			if err != nil {
				b.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.Exec(migrations[0]); err != nil {
				b.Fatal(err)
			}
			ins, err := db.Prepare(`INSERT INTO events (` + insertColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			defer ins.Close()
			type row struct {
				e    *herald.Event
				ts   int64
				body []byte
			}
			batches := make([][]row, b.N)
			for i := range batches {
				for _, e := range benchEvents(b, size) {
					batches[i] = append(batches[i], row{e, e.Timestamp.UnixNano(), encodeBody(e)})
				}
			}
			pos := int64(0)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				t0 := time.Now()
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				st := tx.Stmt(ins)
				for _, r := range batches[i] {
					pos++
					if _, err := st.Exec(pos, r.e.ID, r.e.Name, r.ts, r.e.CorrelationID, r.e.SourcePlugin, nil, nil, r.body); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportCPU(b, cpu0, b.N*size)
			b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkFsync is the disk's own latency: write 300 bytes to a file and
// fsync it.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 300)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
}

// fill appends n benchmark events in batches of 1,000 at Normal durability.
func fill(b *testing.B, s *Store, n int) {
	b.Helper()
	ctx := context.Background()
	for n > 0 {
		k := min(n, 1000)
		if _, err := s.Append(ctx, benchEvents(b, k), herald.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

// BenchmarkReplay reads the whole log (100,000 events) per op and reports
// events/s.
func BenchmarkReplay(b *testing.B) {
	const n = 100_000
	s := benchStore(b, WithDurability(Normal))
	fill(b, s, n)
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		count := 0
		for _, err := range s.Read(ctx, 0, herald.Filter{}) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		if count != n {
			b.Fatalf("read %d events", count)
		}
	}
	reportCPU(b, cpu0, b.N*n)
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDurableSubscription is a bus with this store and one durable
// subscription handling events while 8 publishers publish; it reports
// handled events/s.
func BenchmarkDurableSubscription(b *testing.B) {
	s := benchStore(b)
	bus, err := herald.New(herald.WithStore(s))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	defer bus.Close(ctx)
	var handled atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	sub, err := bus.Subscribe(ctx, "recording.>", herald.HandlerFunc(func(context.Context, *herald.Event) error {
		if handled.Add(1) == target {
			close(done)
		}
		return nil
	}), herald.Durable("bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close(ctx)
	b.ResetTimer()
	cpu0 := cpuTime()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := next.Add(100) - 100
				k := int(min(100, int64(b.N)-start))
				if k <= 0 {
					return
				}
				if _, err := bus.PublishBatch(ctx, benchEvents(b, k)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), b.N)
	}
	reportCPU(b, cpu0, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	st := s.Stats()
	b.ReportMetric(float64(st.Requests)/float64(max(st.Commits, 1)), "writes/commit")
	b.ReportMetric(float64(st.Commits)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkMemory fills a store with -bench.events events (default 200,000)
// and reports the process's resident memory after reading them all.
func BenchmarkMemory(b *testing.B) {
	n := *benchEventsFlag
	s := benchStore(b, WithDurability(Normal))
	fill(b, s, n)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		for _, err := range s.Read(ctx, 0, herald.Filter{}) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(rssKB())/1024, "RSS-MB")
}

func rssKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb
		}
	}
	return 0
}

// BenchmarkRawRead is the driver alone reading what BenchmarkReplay reads
// (100,000 events, position and body, in position order) without decoding
// the bodies: the ceiling of a replay.
func BenchmarkRawRead(b *testing.B) {
	const n = 100_000
	s := benchStore(b, WithDurability(Normal))
	fill(b, s, n)
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		rows, err := s.rdb.QueryContext(ctx, `SELECT position, body FROM events WHERE position > ? ORDER BY position`, 0)
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		var pos int64
		var body sql.RawBytes
		for rows.Next() {
			if err := rows.Scan(&pos, &body); err != nil {
				b.Fatal(err)
			}
			count++
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("read %d rows", count)
		}
	}
	reportCPU(b, cpu0, b.N*n)
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkOpenQuickCheck opens a store of HERALD_BENCH_OPEN_EVENTS events
// (default 100,000; the figure in docs/backends.md is for 1,000,000) with
// and without the quick check, and reports the file's size and the time
// one Open takes.
func BenchmarkOpenQuickCheck(b *testing.B) {
	n := 100_000
	if v := os.Getenv("HERALD_BENCH_OPEN_EVENTS"); v != "" {
		fmt.Sscan(v, &n)
	}
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := Open(context.Background(), path, WithDurability(Normal))
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, n)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, check := range []time.Duration{0, time.Hour} {
		b.Run(fmt.Sprintf("check=%v", check > 0), func(b *testing.B) {
			for b.Loop() {
				s, err := Open(context.Background(), path, WithQuickCheck(check))
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		})
	}
}
