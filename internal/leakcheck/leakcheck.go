// Package leakcheck checks, once a test binary's tests have passed, that
// they left no goroutine running.
//
// It is goleak.VerifyTestMain with patience: goleak looks for about half a
// second, and goroutines of servers and client libraries (nats-server,
// nats.go, net/http's connections, a browser driver) often end only after
// their Close has returned, later still on a loaded machine. Main waits for
// them up to [Timeout]; a goroutine that is really left running stays, and
// is reported.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Timeout is how long [Main] waits for the goroutines left after the tests
// to end before it reports them.
const Timeout = 30 * time.Second

// Main runs m's tests and, when they pass, fails the binary if a goroutine
// that opts do not ignore is still running [Timeout] after they ended. It
// exits the process with the tests' code, or 1 on a leak, and is meant to
// be all of a package's TestMain.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := settle(Timeout, opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines still running %v after the tests passed: %v\n", Timeout, err)
			code = 1
		}
	}
	os.Exit(code)
}

// settle calls goleak.Find until it finds nothing or d has passed, and
// returns its last error.
func settle(d time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
