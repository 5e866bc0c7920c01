package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

func TestHelpTeaches(t *testing.T) {
	var ts *testServer
	root := newRootCmd(&globals{})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" || c.Name() == "serve" {
			continue
		}
		for _, sub := range append(c.Commands(), c) {
			if sub.Example == "" && sub.Runnable() {
				t.Errorf("%s has no example", sub.CommandPath())
			}
			if sub.Short == "" {
				t.Errorf("%s has no short help", sub.CommandPath())
			}
		}
		r := ts.run(t, c.Name(), "--help").ok(t)
		if !strings.Contains(r.stdout, "Usage:") || (c.Runnable() && !strings.Contains(r.stdout, "Examples:")) {
			t.Errorf("%s --help:\n%s", c.Name(), r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	var ts *testServer
	for _, args := range [][]string{{"no-such-command"}, {"--no-such-flag"}, {"trace"}, {"--server", "ftp://x", "events"}, {"--color", "blue", "version"}} {
		r := ts.run(t, args...)
		if exitCode(r.err) != 2 {
			t.Errorf("%q: exit %d (%v)", args, exitCode(r.err), r.err)
		}
	}
}

func TestExplainServerErrors(t *testing.T) {
	ts := startServer(t, withAdmin())
	cases := []struct {
		args []string
		is   error
		says string
	}{
		{[]string{"events"}, herald.ErrUnauthorized, "unauthorized: "},
		{[]string{"--token", "wrong", "events"}, herald.ErrUnauthorized, "pass a valid token with --token or HERALD_TOKEN"},
		{[]string{"--token", adminSecret, "publish", "a.b", "--data", `{"x":"` + strings.Repeat("z", 2<<20) + `"}`}, herald.ErrTooLarge, "too large: "},
	}
	for _, c := range cases {
		r := ts.run(t, c.args...)
		if !errors.Is(r.err, c.is) || !strings.Contains(r.err.Error(), c.says) || exitCode(r.err) != 1 {
			t.Errorf("%.40q: %v (want %v saying %q)", c.args, r.err, c.is, c.says)
		}
		if strings.Contains(r.err.Error(), "\n") {
			t.Errorf("%.40q: not one line: %q", c.args, r.err)
		}
	}
}

func TestExplainRateLimit(t *testing.T) {
	ts := startServer(t, withAdmin())
	secret := strings.TrimSpace(ts.run(t, "--token", adminSecret, "tokens", "create", "--identity", "slow",
		"--publish", ">", "--rate", "0.001", "--burst", "1").ok(t).stdout)
	ts.run(t, "--token", secret, "publish", "a.b").ok(t)
	r := ts.run(t, "--token", secret, "publish", "a.b")
	if !errors.Is(r.err, herald.ErrRateLimited) || !strings.Contains(r.err.Error(), "retry after") {
		t.Errorf("rate limited: %v", r.err)
	}
}

func TestHelpHidesTheToken(t *testing.T) {
	t.Setenv("HERALD_TOKEN", "hrld_very-secret")
	var ts *testServer
	r := ts.run(t, "publish", "--help").ok(t)
	if strings.Contains(r.stdout, "very-secret") {
		t.Errorf("--help shows the token:\n%s", r.stdout)
	}
}

func TestExplainTransportErrors(t *testing.T) {
	refused := &client.TransportError{URL: "http://127.0.0.1:1", Err: &url.Error{Op: "Get", URL: "http://127.0.0.1:1/v1/events", Err: syscall.ECONNREFUSED}}
	if got := explain(refused, "x").Error(); got != "cannot reach http://127.0.0.1:1: is `herald serve` running? (or pass --server / set HERALD_URL)" {
		t.Errorf("refused: %q", got)
	}
	slow := &client.TransportError{URL: "http://h:1", Err: &url.Error{Op: "Get", URL: "http://h:1/v1/events", Err: timeoutError{}}}
	if got := explain(slow, "x").Error(); !strings.HasPrefix(got, "http://h:1 did not answer in time") {
		t.Errorf("timeout: %q", got)
	}
	other := &client.TransportError{URL: "http://h:1", Err: &url.Error{Op: "Get", URL: "http://h:1/v1/events", Err: errors.New("tls: bad certificate")}}
	if got := explain(other, "x").Error(); got != "cannot reach http://h:1: tls: bad certificate" {
		t.Errorf("other: %q", got)
	}
	if err := explain(context.Canceled, "x"); err != context.Canceled {
		t.Errorf("cancelled: %v", err)
	}
	plain := errors.New("plain")
	if explain(plain, "x") != plain {
		t.Error("a non-server error was rewritten")
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestServerFromEnvironment(t *testing.T) {
	ts := startServer(t)
	t.Setenv("HERALD_URL", ts.URL)
	var out, errb strings.Builder
	if err := Run(context.Background(), []string{"publish", "env.works"}, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "published env.works at position 1") {
		t.Errorf("stdout %q", out.String())
	}
}

// TestMistypedSubcommand: a typo in a subcommand is a usage error (exit 2)
// that names the command and suggests the right one, not help and exit 0.
func TestMistypedSubcommand(t *testing.T) {
	var ts *testServer
	for _, c := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"dlq", "drp"}, "drop"},
		{[]string{"tokens", "revok"}, "revoke"},
		{[]string{"subs", "lss"}, "ls"},
		{[]string{"schemas", "zzz"}, ""},
	} {
		r := ts.run(t, c.args...)
		if exitCode(r.err) != 2 {
			t.Errorf("%q: exit %d (%v)", c.args, exitCode(r.err), r.err)
			continue
		}
		msg := r.err.Error()
		if !strings.Contains(msg, `unknown command "`+c.args[1]+`"`) {
			t.Errorf("%q: %q does not name the unknown command", c.args, msg)
		}
		if c.suggest != "" && !strings.Contains(msg, "did you mean "+c.suggest+"?") {
			t.Errorf("%q: %q does not suggest %s", c.args, msg, c.suggest)
		}
	}
	// The group alone still shows its help and succeeds.
	r := ts.run(t, "dlq").ok(t)
	if !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("herald dlq:\n%s", r.stdout)
	}
}

// TestVersionFlag: herald --version prints what herald version prints.
func TestVersionFlag(t *testing.T) {
	var ts *testServer
	flag := ts.run(t, "--version").ok(t)
	cmd := ts.run(t, "version").ok(t)
	if flag.stdout == "" || flag.stdout != cmd.stdout {
		t.Errorf("--version %q, version %q", flag.stdout, cmd.stdout)
	}
}

// TestOneHint: a usage error ends with one hint, the closest command's.
func TestOneHint(t *testing.T) {
	var ts *testServer
	for _, args := range [][]string{{"dlq", "ls", "--bogus"}, {"--no-such-flag"}, {"no-such-command"}, {"trace"}} {
		r := ts.run(t, args...)
		if r.err == nil {
			t.Fatalf("%q: no error", args)
		}
		if n := strings.Count(r.err.Error(), "--help"); n > 1 {
			t.Errorf("%q: %d hints: %q", args, n, r.err)
		}
	}
	r := ts.run(t, "dlq", "ls", "--bogus")
	if !strings.Contains(r.err.Error(), "see 'herald dlq ls --help'") {
		t.Errorf("hint is not the command's own: %q", r.err)
	}
}
