package api_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/api"
)

func TestValidateSubscriptionName(t *testing.T) {
	good := []string{"a", "Billing", "billing.v2", "push-1", "x_y", "0", strings.Repeat("a", api.MaxSubscriptionNameLen)}
	for _, n := range good {
		if err := api.ValidateSubscriptionName(n); err != nil {
			t.Errorf("ValidateSubscriptionName(%q) = %v", n, err)
		}
	}
	bad := []string{"", "a b", "a/b", "a:b", "é", "a\x00", "a%2f", strings.Repeat("a", api.MaxSubscriptionNameLen+1)}
	for _, n := range bad {
		err := api.ValidateSubscriptionName(n)
		var ve *api.ValidationError
		if !errors.As(err, &ve) || ve.Field != "name" || !errors.Is(err, api.ErrInvalidEvent) {
			t.Errorf("ValidateSubscriptionName(%q) = %v, want a *ValidationError for name", n, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"a", "recording.completed", "a.b_c.0", strings.Repeat("a", api.MaxNameLen)} {
		if err := api.ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", "A", "0a", "a..b", "a.", ".a", "a-b", "a.*", "a.>", strings.Repeat("a", api.MaxNameLen+1)} {
		err := api.ValidateName(n)
		var ve *api.ValidationError
		if !errors.As(err, &ve) || ve.Field != "name" || !errors.Is(err, api.ErrInvalidEvent) {
			t.Errorf("ValidateName(%q) = %v, want a *ValidationError for name", n, err)
		}
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{">", "a", "a.*", "a.>", "*.b", "a.*.c.>"} {
		if err := api.ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "A", "a.>.b", "a..b", "a.b*", strings.Repeat("a", api.MaxNameLen+1)} {
		if err := api.ValidatePattern(p); !errors.Is(err, api.ErrInvalidEvent) {
			t.Errorf("ValidatePattern(%q) = %v, want ErrInvalidEvent", p, err)
		}
	}
	if !api.MatchName("a.>", "a.b.c") || api.MatchName("a.*", "a.b.c") {
		t.Error("MatchName disagrees with its documentation")
	}
}

func TestMatchSubject(t *testing.T) {
	cases := []struct {
		pattern, subject string
		want             bool
	}{
		{"acct/1", "acct/1", true},
		{"acct/1", "acct/12", false},
		{"acct/1", "acct", false},
		{"acct/*", "acct/1", true},
		{"acct/*", "acct/1/x", false},
		{"acct/*", "acct/", true},
		{"acct/*", "acct", false},
		{"acct/>", "acct/1", true},
		{"acct/>", "acct/1/x", true},
		{"acct/>", "acct", false},
		{"acct/>", "acct/", false},
		{"*/1", "rec/1", true},
		{"*/1", "rec/2", false},
		{">", "anything/at/all", true},
		{">", "", false},
		{"acct/1", "", false},
		{"shared", "shared", true},
		{"café/*", "café/1", true},
	}
	for _, c := range cases {
		if got := api.MatchSubject(c.pattern, c.subject); got != c.want {
			t.Errorf("MatchSubject(%q, %q) = %v, want %v", c.pattern, c.subject, got, c.want)
		}
	}
}

func TestValidateSubjectPattern(t *testing.T) {
	for _, p := range []string{">", "acct/1", "acct/*", "acct/>", "*/x/>", "recording/42", "café/*", "a b/c,d", strings.Repeat("a", api.MaxSubjectLen)} {
		if err := api.ValidateSubjectPattern(p); err != nil {
			t.Errorf("ValidateSubjectPattern(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "acct/>/x", "acct/1*", "acct*", "a>", "acct//1", "acct/", "/acct", "a\x00", "a\tb", "a\x7f", "a\u0085",
		"a\xff", strings.Repeat("a", api.MaxSubjectLen+1)} {
		if err := api.ValidateSubjectPattern(p); !errors.Is(err, api.ErrInvalidEvent) {
			t.Errorf("ValidateSubjectPattern(%q) = %v, want ErrInvalidEvent", p, err)
		}
	}
}

// FuzzMatchSubject compares MatchSubject with a model written from its
// documentation, on every valid pattern and any subject.
func FuzzMatchSubject(f *testing.F) {
	for _, s := range [][2]string{{"acct/*", "acct/1"}, {"acct/>", "acct/1/2"}, {">", "x"}, {"*/1", "/1"}, {"a/*/c", "a//c"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		if api.ValidateSubjectPattern(pattern) != nil {
			return
		}
		if got, want := api.MatchSubject(pattern, subject), subjectModel(pattern, subject); got != want {
			t.Fatalf("MatchSubject(%q, %q) = %v, the model says %v", pattern, subject, got, want)
		}
	})
}

func subjectModel(pattern, subject string) bool {
	ps, ss := strings.Split(pattern, "/"), strings.Split(subject, "/")
	for i, p := range ps {
		if p == ">" {
			return len(ss) > i && strings.Join(ss[i:], "/") != ""
		}
		if i >= len(ss) || p != "*" && p != ss[i] {
			return false
		}
	}
	return len(ps) == len(ss)
}
