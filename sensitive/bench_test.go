package sensitive_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/sensitive"
)

func BenchmarkEncode(b *testing.B) {
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	sc := herald.NewSchemas()
	if err := sc.Register("customer.registered", 1, []byte(customerSchema)); err != nil {
		b.Fatal(err)
	}
	c, _ := sensitive.New(st, sc)
	e, _ := herald.NewEvent("customer.registered", map[string]any{"name": "Ada", "email": email, "score": 1})
	e.Subject = "customer/1"
	data := e.Data
	for b.Loop() {
		e.Data = data
		if err := c.Encode(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	sc := herald.NewSchemas()
	if err := sc.Register("customer.registered", 1, []byte(customerSchema)); err != nil {
		b.Fatal(err)
	}
	c, _ := sensitive.New(st, sc)
	e, _ := herald.NewEvent("customer.registered", map[string]any{"name": "Ada", "email": email, "score": 1})
	e.Subject = "customer/1"
	if err := c.Encode(ctx, e); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d := *e
		if err := c.Decode(ctx, &d); err != nil || !bytes.Contains(d.Data, []byte(email)) {
			b.Fatal(err)
		}
	}
}
