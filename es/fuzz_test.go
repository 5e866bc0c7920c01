package es_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
)

// FuzzSnapshot feeds arbitrary bytes as a subject's snapshot: Load never
// panics, and a snapshot that is not a valid one is ignored.
func FuzzSnapshot(f *testing.F) {
	f.Add([]byte(`{"position":2,"version":2,"state":{"balance":2}}`))
	f.Add([]byte(`{"position":1,"version":1,"state":null}`))
	f.Add([]byte(`{"position":1,"version":1,"sealed":"AAAA"}`))
	f.Add([]byte(`{"position":99999999999,"version":18446744073709551615,"state":{"balance":"x"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{`))
	f.Add([]byte{})
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	w, err := es.NewRepository(busOn(f, st), applyAccount, es.WithCacheSize(0), es.WithSnapshotEvery(0))
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		e, _ := herald.NewEvent("account.deposited", amount{Cents: 1})
		if _, err := w.Save(ctx, "account/f", uint64(i), e); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, snap []byte) {
		if err := st.PutValue(ctx, herald.SnapshotBucket, "account/f", snap); err != nil {
			t.Fatal(err)
		}
		r, err := es.NewRepository(busOn(t, st), applyAccount, es.WithCacheSize(0), es.WithSnapshotEvery(0))
		if err != nil {
			t.Fatal(err)
		}
		s, v, err := r.Load(ctx, "account/f")
		var probe map[string]json.RawMessage
		if json.Unmarshal(snap, &probe) != nil {
			// Not a JSON object: ignored, the state comes from the events.
			if err != nil || s.Balance != 3 || v != 3 {
				t.Fatalf("%+v@%d %v", s, v, err)
			}
		}
	})
}

// FuzzUpcast runs an upcaster chain over arbitrary data: no panic, and
// either an error or a JSON object at the last version.
func FuzzUpcast(f *testing.F) {
	f.Add([]byte(`{"a":1}`), 1)
	f.Add([]byte(`[]`), 0)
	f.Add([]byte(`null`), 2)
	f.Add([]byte(`{"a":`), -5)
	up := es.NewUpcasters()
	_ = up.Register("thing.done", 1, func(d json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(d, &m); err != nil {
			return nil, err
		}
		if m == nil {
			return nil, errors.New("not an object")
		}
		m["v2"] = true
		return json.Marshal(m)
	})
	_ = up.Register("thing.done", 2, func(d json.RawMessage) (json.RawMessage, error) { return d, nil })
	f.Fuzz(func(t *testing.T, data []byte, version int) {
		e := &herald.Event{ID: "x", Name: "thing.done", Data: data, Version: version}
		out, err := up.Upcast(e)
		if err != nil {
			return
		}
		if out != e {
			var m map[string]json.RawMessage
			if out.Version != 3 || json.Unmarshal(out.Data, &m) != nil || m == nil {
				t.Fatalf("upcast to %d: %s", out.Version, out.Data)
			}
		}
		if e.Version != version || string(e.Data) != string(data) {
			t.Fatal("Upcast modified its input")
		}
	})
}
