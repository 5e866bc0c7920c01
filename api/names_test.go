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
