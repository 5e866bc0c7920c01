package sensitive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
	"github.com/heraldhq/herald/internal/leakcheck"
	"github.com/heraldhq/herald/sensitive"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const customerSchema = `{
  "type": "object",
  "properties": {
    "name":  {"type": "string"},
    "email": {"type": "string", "x-sensitive": true},
    "card":  {"type": "object", "x-sensitive": true},
    "score": {"type": "number"},
    "contacts": {"type": "array", "items": {
      "type": "object",
      "properties": {"phone": {"type": "string", "x-sensitive": true}, "kind": {"type": "string"}}
    }}
  }
}`

const (
	email = "ada@example.com"
	phone = "+44 20 7946 0000"
	cardN = "4111111111111111"
)

func setup(t *testing.T, opts ...sensitive.Option) (*herald.MemoryStore, *herald.Schemas, *sensitive.Codec) {
	t.Helper()
	st := herald.NewMemoryStore()
	t.Cleanup(func() { st.Close() })
	sc := herald.NewSchemas()
	if err := sc.Register("customer.registered", 1, []byte(customerSchema)); err != nil {
		t.Fatal(err)
	}
	c, err := sensitive.New(st, sc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st, sc, c
}

// busOf returns a bus on st with the schemas sc and the codec c, closed at
// the end of the test.
func busOf(t *testing.T, st herald.Store, sc *herald.Schemas, c herald.Codec) *herald.Bus {
	t.Helper()
	b, err := herald.New(herald.WithStore(st), herald.WithSchemas(sc), herald.WithCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func customer(t *testing.T, subject string) *herald.Event {
	t.Helper()
	e, err := herald.NewEvent("customer.registered", map[string]any{
		"name":     "Ada",
		"email":    email,
		"card":     map[string]any{"number": cardN, "exp": "12/30"},
		"score":    json.Number("12345678901234567890"),
		"contacts": []any{map[string]any{"phone": phone, "kind": "work"}, map[string]any{"kind": "none"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Subject = subject
	return e
}

var secrets = []string{email, phone, cardN, "12/30"}

func assertNoSecrets(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Fatalf("%s holds the plaintext %q: %s", what, s, b)
		}
	}
}

func TestEncryptedAtRestPlainForReaders(t *testing.T) {
	ctx := context.Background()
	st, _, c := setup(t)
	e := customer(t, "customer/1")
	orig := bytes.Clone(e.Data)
	if err := c.Encode(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []*herald.Event{e}, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}

	// What the store holds, read straight from it.
	stored, err := st.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(stored)
	assertNoSecrets(t, "the stored event", raw)
	if !bytes.Contains(stored.Data, []byte(`"name":"Ada"`)) || !bytes.Contains(stored.Data, []byte(`"kind":"work"`)) {
		t.Fatalf("non-sensitive fields must stay readable: %s", stored.Data)
	}
	keys, err := st.ListValues(ctx, sensitive.DefaultKeyBucket)
	if err != nil || len(keys) != 1 {
		t.Fatalf("want one key, got %d (%v)", len(keys), err)
	}
	for name, v := range keys {
		if strings.Contains(name, "customer") {
			t.Fatalf("key name reveals the subject: %s", name)
		}
		assertNoSecrets(t, "the key record", v)
	}

	// What a reader gets back.
	got := *stored
	if err := c.Decode(ctx, &got); err != nil {
		t.Fatal(err)
	}
	assertSameJSON(t, orig, got.Data)
	if _, ok := got.Metadata[sensitive.ShreddedMetadata]; ok {
		t.Fatal("nothing was shredded")
	}
	// The shared stored event is untouched by Decode.
	again, _ := st.Get(ctx, e.ID)
	raw2, _ := json.Marshal(again)
	assertNoSecrets(t, "the stored event after Decode", raw2)
}

func assertSameJSON(t *testing.T, want, got []byte) {
	t.Helper()
	var a, b any
	da := json.NewDecoder(bytes.NewReader(want))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(got))
	db.UseNumber()
	if err := da.Decode(&a); err != nil {
		t.Fatal(err)
	}
	if err := db.Decode(&b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("data differs:\nwant %s\ngot  %s", ja, jb)
	}
}

func TestForgetShreds(t *testing.T) {
	ctx := context.Background()
	st, _, c := setup(t)
	e1, e2 := customer(t, "customer/1"), customer(t, "customer/2")
	for _, e := range []*herald.Event{e1, e2} {
		if err := c.Encode(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(ctx, []*herald.Event{e1, e2}, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutValue(ctx, herald.SnapshotBucket, "customer/1", []byte(`{"position":1,"state":{"email":"`+email+`"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, "customer/1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, "customer/1"); err != nil {
		t.Fatalf("forgetting twice: %v", err)
	}
	if _, err := st.GetValue(ctx, herald.SnapshotBucket, "customer/1"); !errors.Is(err, herald.ErrNotFound) {
		t.Fatalf("the snapshot survived Forget: %v", err)
	}

	// A second codec on the same KV (another process) agrees.
	_, sc, _ := setup(t)
	other, err := sensitive.New(st, sc)
	if err != nil {
		t.Fatal(err)
	}
	for _, codec := range []*sensitive.Codec{c, other} {
		stored, _ := st.Get(ctx, e1.ID)
		got := *stored
		if err := codec.Decode(ctx, &got); err != nil {
			t.Fatalf("a forgotten subject decodes without error, got %v", err)
		}
		assertNoSecrets(t, "a forgotten event", got.Data)
		var d map[string]any
		if err := json.Unmarshal(got.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d["email"] != nil || d["card"] != nil || d["name"] != "Ada" {
			t.Fatalf("forgotten data %s", got.Data)
		}
		if v, ok := d["email"]; !ok || v != nil {
			t.Fatal("a shredded field reads as null")
		}
		if m := got.Metadata[sensitive.ShreddedMetadata]; m != "data.card,data.contacts.0.phone,data.email" {
			t.Fatalf("shredded metadata %q", m)
		}
		if stored.Metadata != nil {
			t.Fatal("Decode wrote into the stored event's metadata")
		}

		// The other subject is unaffected.
		s2, _ := st.Get(ctx, e2.ID)
		g2 := *s2
		if err := codec.Decode(ctx, &g2); err != nil || !bytes.Contains(g2.Data, []byte(email)) {
			t.Fatalf("customer/2: %s %v", g2.Data, err)
		}
	}

	// New events of a forgotten subject get a new key; the old stay shredded.
	e3 := customer(t, "customer/1")
	if err := c.Encode(ctx, e3); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(ctx, e3); err != nil || !bytes.Contains(e3.Data, []byte(email)) {
		t.Fatalf("new event after Forget: %s %v", e3.Data, err)
	}
	stored, _ := st.Get(ctx, e1.ID)
	old := *stored
	if err := c.Decode(ctx, &old); err != nil || old.Metadata[sensitive.ShreddedMetadata] == "" {
		t.Fatalf("old event after a new key: %s %v", old.Data, err)
	}
}

func TestTamperingIsAnErrorNotAPanic(t *testing.T) {
	ctx := context.Background()
	_, _, c := setup(t)
	a, b := customer(t, "customer/a"), customer(t, "customer/b")
	for _, e := range []*herald.Event{a, b} {
		if err := c.Encode(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// An envelope moved to another field does not open: the field's path
	// is bound to the ciphertext.
	var da map[string]json.RawMessage
	_ = json.Unmarshal(a.Data, &da)
	moved := a.Clone()
	var dm map[string]json.RawMessage
	_ = json.Unmarshal(moved.Data, &dm)
	dm["email"] = da["card"]
	moved.Data, _ = json.Marshal(dm)
	if err := c.Decode(ctx, moved); !errors.Is(err, sensitive.ErrUndecryptable) {
		t.Fatalf("an envelope moved to another field: want ErrUndecryptable, got %v", err)
	}
	if strings.Contains(errString(c.Decode(ctx, moved)), cardN) {
		t.Fatal("the error holds a secret")
	}

	for _, data := range []string{
		`{"email":{"$enc":"v2.abc.def"}}`,
		`{"email":{"$enc":"v1.."}}`,
		`{"email":{"$enc":"v1.` + keyID(t, a) + `.!!!notbase64"}}`,
		`{"email":{"$enc":"v1.` + keyID(t, a) + `.AAAA"}}`,
	} {
		e := a.Clone()
		e.Data = json.RawMessage(data)
		if err := c.Decode(ctx, e); !errors.Is(err, sensitive.ErrUndecryptable) {
			t.Fatalf("%s: want ErrUndecryptable, got %v", data, err)
		}
	}
	// Data that is not JSON, or carries no envelope, is left alone.
	for _, data := range []string{`{"$enc"`, `{"x":"$enc"}`, `{}`} {
		e := a.Clone()
		e.Data = json.RawMessage(data)
		if err := c.Decode(ctx, e); err != nil || string(e.Data) != data {
			t.Fatalf("%s: %s %v", data, e.Data, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func keyID(t *testing.T, e *herald.Event) string {
	t.Helper()
	var d struct {
		Email struct {
			Enc string `json:"$enc"`
		} `json:"email"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(d.Email.Enc, ".")
	if len(parts) != 3 {
		t.Fatalf("envelope %q", d.Email.Enc)
	}
	return parts[1]
}

func TestEncodeNeedsSubject(t *testing.T) {
	_, _, c := setup(t)
	e := customer(t, "")
	if err := c.Encode(context.Background(), e); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent, got %v", err)
	}
	// Events without sensitive fields need no subject and stay as they are.
	plain, _ := herald.NewEvent("recording.ended", map[string]any{"email": email})
	before := string(plain.Data)
	if err := c.Encode(context.Background(), plain); err != nil || string(plain.Data) != before {
		t.Fatalf("%s %v", plain.Data, err)
	}
	// A null sensitive value has nothing to hide and needs no key.
	e = customer(t, "")
	e.Data = json.RawMessage(`{"email":null}`)
	if err := c.Encode(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentFirstEventsShareOneKey(t *testing.T) {
	ctx := context.Background()
	st, _, c := setup(t, sensitive.WithKeyCacheTTL(0))
	var wg sync.WaitGroup
	events := make([]*herald.Event, 32)
	for i := range events {
		events[i] = customer(t, "customer/new")
		wg.Go(func() {
			if err := c.Encode(ctx, events[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if keys, _ := st.ListValues(ctx, sensitive.DefaultKeyBucket); len(keys) != 1 {
		t.Fatalf("%d keys for one subject", len(keys))
	}
	for _, e := range events {
		if err := c.Decode(ctx, e); err != nil || !bytes.Contains(e.Data, []byte(email)) {
			t.Fatalf("%s %v", e.Data, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	st := herald.NewMemoryStore()
	defer st.Close()
	// Without a KV and Fields, the codec takes the bus's; until then it
	// refuses to encode.
	detached, err := sensitive.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := detached.Encode(context.Background(), customer(t, "customer/1")); err == nil {
		t.Fatal("a codec with no KV encoded")
	}
	if _, err := sensitive.New(st, herald.NewSchemas(), sensitive.WithKeyBucket("")); err == nil {
		t.Fatal("empty bucket accepted")
	}
	c, _ := sensitive.New(st, herald.NewSchemas())
	if err := c.Forget(context.Background(), ""); err == nil {
		t.Fatal("empty subject forgotten")
	}
}

// An aggregate rebuilt through the codec sees the plaintext, and nothing
// after Forget.
func TestRepositoryDecodes(t *testing.T) {
	ctx := context.Background()
	st, sc, c := setup(t)
	bus := busOf(t, st, sc, c)
	type profile struct{ Email string }
	r, err := es.NewRepository(bus, func(p profile, e *herald.Event) (profile, error) {
		var d struct{ Email string }
		err := e.Decode(&d)
		p.Email = d.Email
		return p, err
	}, es.WithCacheSize(0), es.WithSnapshotEvery(1))
	if err != nil {
		t.Fatal(err)
	}
	e := customer(t, "customer/r")
	if err := c.Encode(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []*herald.Event{e}, herald.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, _, err := r.Load(ctx, "customer/r"); err != nil || p.Email != email {
		t.Fatalf("%+v %v", p, err)
	}
	// The snapshot that Load wrote is sealed, and it is used.
	snap, err := st.GetValue(ctx, herald.SnapshotBucket, "customer/r")
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "the snapshot", snap)
	if !bytes.Contains(snap, []byte(`"position":1`)) || !bytes.Contains(snap, []byte(`"sealed"`)) {
		t.Fatalf("snapshot %s", snap)
	}
	if p, _, err := r.Load(ctx, "customer/r"); err != nil || p.Email != email || r.Stats().SnapshotsRead != 1 {
		t.Fatalf("%+v %v %+v", p, err, r.Stats())
	}
	// A snapshot whose key is gone (restored from a backup after Forget,
	// say) gives the zero state at its version.
	keys, _ := st.ListValues(ctx, sensitive.DefaultKeyBucket)
	sc2 := herald.NewSchemas()
	c2, _ := sensitive.New(st, sc2)
	for k := range keys {
		_ = st.DeleteValue(ctx, sensitive.DefaultKeyBucket, k)
	}
	r2, _ := es.NewRepository(busOf(t, st, sc2, c2), func(p profile, e *herald.Event) (profile, error) {
		var d struct{ Email string }
		err := e.Decode(&d)
		p.Email = d.Email
		return p, err
	}, es.WithCacheSize(0))
	if p, v, err := r2.Load(ctx, "customer/r"); err != nil || p.Email != "" || v != 1 || r2.Stats().SnapshotsRead != 1 {
		t.Fatalf("key gone: %+v@%d %v %+v", p, v, err, r2.Stats())
	}
	if err := c.Forget(ctx, "customer/r"); err != nil {
		t.Fatal(err)
	}
	if p, v, err := r.Load(ctx, "customer/r"); err != nil || p.Email != "" || v != 1 {
		t.Fatalf("after Forget: %+v@%d %v", p, v, err)
	}
}

// Retention deletes a subject's events up to its sealed snapshot; after
// Forget the aggregate keeps its version, so saves still line up, and
// reads nothing sensitive.
func TestForgetAfterRetention(t *testing.T) {
	ctx := context.Background()
	st, sc, c := setup(t)
	bus := busOf(t, st, sc, c)
	type profile struct {
		Email string
		N     int
	}
	apply := func(p profile, e *herald.Event) (profile, error) {
		var d struct{ Email string }
		err := e.Decode(&d)
		if d.Email != "" {
			p.Email = d.Email
		}
		p.N++
		return p, err
	}
	r, err := es.NewRepository(bus, apply, es.WithCacheSize(0), es.WithSnapshotEvery(10))
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	for range 25 {
		e := customer(t, "")
		if v, err = r.Save(ctx, "customer/p", v, e); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Load(ctx, "customer/p"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := herald.Prune(ctx, st, []herald.RetentionRule{{Pattern: ">", MaxCount: 1, Force: true}}, time.Now(), herald.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Forget(ctx, "customer/p"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetValue(ctx, herald.SnapshotBucket, "customer/p"); err != nil {
		t.Fatalf("Forget deleted a sealed snapshot: %v", err)
	}
	p, v, err := r.Load(ctx, "customer/p")
	if err != nil || v != 25 || p.Email != "" || p.N != 5 {
		t.Fatalf("after retention and Forget: %+v@%d %v", p, v, err)
	}
	e := customer(t, "customer/p")
	if _, err := r.Save(ctx, "customer/p", v, e); err != nil {
		t.Fatalf("a save at the loaded version: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	ctx := context.Background()
	_, _, c := setup(t)
	sealed, err := c.Seal(ctx, "customer/s", []byte(email))
	if err != nil || bytes.Contains(sealed, []byte(email)) {
		t.Fatalf("%q %v", sealed, err)
	}
	if b, err := c.Open(ctx, "customer/s", sealed); err != nil || string(b) != email {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := c.Open(ctx, "customer/other", sealed); !errors.Is(err, sensitive.ErrForgotten) {
		t.Fatalf("another subject: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := c.Open(ctx, "customer/s", bad); !errors.Is(err, sensitive.ErrUndecryptable) {
		t.Fatalf("altered: %v", err)
	}
	if _, err := c.Open(ctx, "customer/s", []byte("junk")); !errors.Is(err, sensitive.ErrUndecryptable) {
		t.Fatalf("junk: %v", err)
	}
	if err := c.Forget(ctx, "customer/s"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, "customer/s", sealed); !errors.Is(err, sensitive.ErrForgotten) {
		t.Fatalf("forgotten: %v", err)
	}
	if _, err := c.Seal(ctx, "", nil); err == nil {
		t.Fatal("empty subject sealed")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"email":{"$enc":"v1.abcd.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}`), "customer/1")
	f.Add([]byte(`{"a":[{"$enc":"v1.x.y"},{"$enc":1}],"b":{"$enc":"v1"}}`), "")
	f.Add([]byte(`{"$enc":"v1.a.b"}`), "s")
	f.Add([]byte(`not json "$enc"`), "s")
	f.Add([]byte(`{}`), "s")
	st := herald.NewMemoryStore()
	defer st.Close()
	sc := herald.NewSchemas()
	_ = sc.Register("customer.registered", 1, []byte(customerSchema))
	c, _ := sensitive.New(st, sc)
	seed, _ := herald.NewEvent("customer.registered", map[string]any{"email": email})
	seed.Subject = "customer/1"
	_ = c.Encode(context.Background(), seed)
	f.Add([]byte(seed.Data), "customer/1")
	f.Fuzz(func(t *testing.T, data []byte, subject string) {
		e := &herald.Event{ID: "x", Name: "customer.registered", Data: bytes.Clone(data), Subject: subject}
		orig := bytes.Clone(data)
		_ = c.Decode(context.Background(), e)
		if !bytes.Equal(data, orig) {
			t.Fatal("Decode wrote into the event's data")
		}
	})
}
