package main

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/client"
)

// TestTokensWithSubjects: tokens create --subjects gives a token subject
// patterns, tokens ls shows them ("any" for a token without), and the
// token publishes only to the subjects they match.
func TestTokensWithSubjects(t *testing.T) {
	ts := startServer(t, withAdmin())
	admin := []string{"--token", adminSecret}
	biller := strings.TrimSpace(ts.run(t, append(admin, "tokens", "create", "--identity", "biller", "--publish", "billing.>",
		"--subjects", "acct/1,ledger/*")...).ok(t).stdout)
	ts.run(t, append(admin, "tokens", "create", "--identity", "recorder", "--publish", ">")...).ok(t)

	ts.run(t, "--token", biller, "publish", "billing.paid", "--subject", "acct/1").ok(t)
	ts.run(t, "--token", biller, "publish", "billing.paid", "--subject", "ledger/7").ok(t)
	r := ts.run(t, "--token", biller, "publish", "billing.paid", "--subject", "acct/2")
	if !errors.Is(r.err, herald.ErrForbidden) || !strings.Contains(r.err.Error(), `subject "acct/2"`) || strings.Contains(r.err.Error(), "\n") {
		t.Errorf("publish outside the subjects: %v", r.err)
	}

	r = ts.run(t, append(admin, "tokens", "ls", "--json")...).ok(t)
	var list []client.Token
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err)
	}
	for _, tk := range list {
		if tk.Identity == "biller" && !slices.Equal(tk.Subjects, []string{"acct/1", "ledger/*"}) {
			t.Errorf("listed %+v", tk)
		}
	}
	out := ts.run(t, append(admin, "tokens", "ls")...).ok(t).stdout
	if !strings.Contains(out, "SUBJECTS") || !strings.Contains(out, "acct/1,ledger/*") || !strings.Contains(out, "any") {
		t.Errorf("ls:\n%s", out)
	}

	// The pattern syntax is explained, and a bad pattern is a usage error.
	help := ts.run(t, "tokens", "create", "--help").ok(t).stdout
	for _, want := range []string{"--subjects", "acct/*", "acct/>"} {
		if !strings.Contains(help, want) {
			t.Errorf("tokens create --help lacks %q", want)
		}
	}
	for _, bad := range []string{"acct/>/x", "acct*", "acct//1"} {
		if r := ts.run(t, append(admin, "tokens", "create", "--identity", "x", "--subjects", bad)...); exitCode(r.err) != 2 {
			t.Errorf("--subjects %q: %v", bad, r.err)
		}
	}
}

// TestPublishIDTaken: publishing an id another identity's event holds is
// refused (409 id_taken), and herald publish says so plainly, with what to
// do, rather than the advice for a stale subject version.
func TestPublishIDTaken(t *testing.T) {
	ts := startServer(t, withAdmin())
	admin := []string{"--token", adminSecret}
	recorder := strings.TrimSpace(ts.run(t, append(admin, "tokens", "create", "--identity", "recorder", "--publish", ">")...).ok(t).stdout)
	biller := strings.TrimSpace(ts.run(t, append(admin, "tokens", "create", "--identity", "biller", "--publish", ">")...).ok(t).stdout)

	ts.run(t, "--token", recorder, "publish", "billing.invoiced", "--id", "inv-42").ok(t)
	r := ts.run(t, "--token", biller, "publish", "billing.invoiced", "--id", "inv-42")
	if !errors.Is(r.err, herald.ErrConflict) || exitCode(r.err) != 1 {
		t.Fatalf("taken id: %v", r.err)
	}
	msg := r.err.Error()
	if !strings.HasPrefix(msg, "id taken: ") || !strings.Contains(msg, "--id") || strings.Contains(msg, "current version") ||
		strings.Contains(msg, "position") || strings.Contains(msg, "\n") {
		t.Errorf("taken id said as %q", msg)
	}
	// The publisher's own repeat is still a duplicate.
	if out := ts.run(t, "--token", recorder, "publish", "billing.invoiced", "--id", "inv-42").ok(t).stdout; !strings.HasPrefix(out, "already stored:") {
		t.Errorf("the publisher's repeat: %q", out)
	}
}
