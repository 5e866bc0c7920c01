package sensitive_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/es"
	"github.com/heraldhq/herald/sensitive"
)

// attachedBus returns a bus on st whose codec is given once, to the bus,
// and takes its KV and schemas from it.
func attachedBus(t *testing.T, st herald.Store) (*herald.Bus, *sensitive.Codec) {
	t.Helper()
	c, err := sensitive.New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := herald.New(herald.WithStore(st), herald.WithCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b, c
}

// storeHolds reports whether any event stored in st holds s.
func storeHolds(t *testing.T, st herald.Store, s string) bool {
	t.Helper()
	for e, err := range st.Read(context.Background(), 0, herald.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(e.Data, []byte(s)) {
			return true
		}
	}
	return false
}

const ssnSchema = `{"type":"object","properties":{"ssn":{"type":"string","x-sensitive":true},"customer":{"type":"string","x-sensitive":true}}}`

// An es.Repository on a bus with the codec stores sensitive fields sealed
// and reads them in clear, with nothing else to wire.
func TestRepositoryOnBusEncrypts(t *testing.T) {
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	b, _ := attachedBus(t, st)
	if err := b.Schemas().Register("order.placed", 1, []byte(ssnSchema)); err != nil {
		t.Fatal(err)
	}
	type order struct{ Customer string }
	r, err := es.NewRepository(b, func(o order, e *herald.Event) (order, error) {
		var d struct{ Customer string }
		err := e.Decode(&d)
		o.Customer = d.Customer
		return o, err
	}, es.WithSnapshotEvery(1))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e, _ := herald.NewEvent("order.placed", map[string]string{"customer": "ZZREPOPLAIN"})
	if _, err := r.Save(ctx, "order/1", 0, e); err != nil {
		t.Fatal(err)
	}
	if storeHolds(t, st, "ZZREPOPLAIN") {
		t.Fatal("the repository stored the sensitive field in clear")
	}
	if snap, err := st.GetValue(ctx, herald.SnapshotBucket, "order/1"); err != nil || bytes.Contains(snap, []byte("ZZREPOPLAIN")) {
		t.Fatalf("snapshot %s %v", snap, err)
	}
	fresh, _ := es.NewRepository(b, func(o order, e *herald.Event) (order, error) {
		var d struct{ Customer string }
		err := e.Decode(&d)
		o.Customer = d.Customer
		return o, err
	}, es.WithCacheSize(0), es.WithSnapshotEvery(0))
	if o, v, err := fresh.Load(ctx, "order/1"); err != nil || o.Customer != "ZZREPOPLAIN" || v != 1 {
		t.Fatalf("%+v@%d %v", o, v, err)
	}
}

// A typed event whose schema marks a field sensitive, published on a bus
// with the codec that never saw the schema, is sealed; without a subject
// it is refused.
func TestTypedSchemaSealedWithoutRegistering(t *testing.T) {
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	b, _ := attachedBus(t, st)
	type person struct {
		SSN string `json:"ssn"`
	}
	pt := herald.Define[person]("person.created", herald.WithJSONSchema([]byte(ssnSchema)))
	if _, err := pt.Publish(ctx, b, person{SSN: "ZZTYPEDPLAIN"}, herald.WithSubject("person/1")); err != nil {
		t.Fatal(err)
	}
	if storeHolds(t, st, "ZZTYPEDPLAIN") {
		t.Fatal("a typed sensitive field was stored in clear")
	}
	if _, err := pt.Publish(ctx, b, person{SSN: "ZZNOSUBJECT"}); !errors.Is(err, herald.ErrInvalidEvent) {
		t.Fatalf("no subject: want ErrInvalidEvent, got %v", err)
	}
	if _, err := pt.PublishBatch(ctx, b, []person{{SSN: "ZZBATCHPLAIN"}}, herald.WithSubject("person/2")); err != nil {
		t.Fatal(err)
	}
	if storeHolds(t, st, "ZZNOSUBJECT") || storeHolds(t, st, "ZZBATCHPLAIN") {
		t.Fatal("stored in clear")
	}
	// Handlers and readers see the value in clear.
	e, err := b.Get(ctx, firstID(t, b, "person/1"))
	if err != nil || !bytes.Contains(e.Data, []byte("ZZTYPEDPLAIN")) {
		t.Fatalf("%s %v", e.Data, err)
	}
}

func firstID(t *testing.T, b *herald.Bus, subject string) string {
	t.Helper()
	for e, err := range b.Read(context.Background(), 0, herald.Filter{Subject: subject, Limit: 1}, herald.Raw()) {
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	t.Fatalf("no event of %s", subject)
	return ""
}

// Sensitive is a property of the name: a field one version's schema marks
// is sealed in every version, those without a schema included; an event
// that cannot be sealed (no subject) is refused, whatever its version.
func TestSensitiveIsAPropertyOfTheName(t *testing.T) {
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	b, _ := attachedBus(t, st)
	if err := b.Schemas().Register("patient.admitted", 1, []byte(ssnSchema)); err != nil {
		t.Fatal(err)
	}
	// v3 has a schema that does not mark ssn.
	if err := b.Schemas().Register("patient.admitted", 3, []byte(`{"type":"object"}`)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2, 3, 7} {
		e, _ := herald.NewEvent("patient.admitted", map[string]string{"ssn": "ZZSSNPLAIN"})
		e.Version, e.Subject = v, "patient/1"
		if _, err := b.Publish(ctx, e); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		e2, _ := herald.NewEvent("patient.admitted", map[string]string{"ssn": "ZZSSNNOSUBJECT"})
		e2.Version = v
		if _, err := b.Publish(ctx, e2); !errors.Is(err, herald.ErrInvalidEvent) {
			t.Fatalf("v%d without subject: want ErrInvalidEvent, got %v", v, err)
		}
	}
	if storeHolds(t, st, "ZZSSNPLAIN") || storeHolds(t, st, "ZZSSNNOSUBJECT") {
		t.Fatal("a version without a marking schema stored ssn in clear")
	}
	n := 0
	for e, err := range b.Read(ctx, 0, herald.Filter{Subject: "patient/1"}) {
		if err != nil || !bytes.Contains(e.Data, []byte("ZZSSNPLAIN")) {
			t.Fatalf("v%d reads %s %v", e.Version, e.Data, err)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d events", n)
	}
}

// Forgetting a subject through the bus drops it from a repository's cache:
// the next Load reads nothing sensitive.
func TestForgetDropsRepositoryCache(t *testing.T) {
	ctx := context.Background()
	st := herald.NewMemoryStore()
	defer st.Close()
	b, _ := attachedBus(t, st)
	if err := b.Schemas().Register("order.placed", 1, []byte(ssnSchema)); err != nil {
		t.Fatal(err)
	}
	type order struct{ Customer string }
	r, err := es.NewRepository(b, func(o order, e *herald.Event) (order, error) {
		var d struct{ Customer *string }
		err := e.Decode(&d)
		o.Customer = ""
		if d.Customer != nil {
			o.Customer = *d.Customer
		}
		return o, err
	}, es.WithSnapshotEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e, _ := herald.NewEvent("order.placed", map[string]string{"customer": "ZZCACHED"})
	if _, err := r.Save(ctx, "order/9", 0, e); err != nil {
		t.Fatal(err)
	}
	if o, _, err := r.Load(ctx, "order/9"); err != nil || o.Customer != "ZZCACHED" || r.Stats().Cached != 1 {
		t.Fatalf("%+v %v %+v", o, err, r.Stats())
	}
	if err := b.Forget(ctx, "order/9"); err != nil {
		t.Fatal(err)
	}
	if o, v, err := r.Load(ctx, "order/9"); err != nil || o.Customer != "" || v != 1 {
		t.Fatalf("after Forget the repository returned %+v@%d %v", o, v, err)
	}
}

// A codec that reads its marks from another registry than the bus's is
// refused when the bus is made: schemas registered with the bus would not
// reach it.
func TestCodecWithAnotherRegistryRefused(t *testing.T) {
	st := herald.NewMemoryStore()
	defer st.Close()
	c, err := sensitive.New(st, herald.NewSchemas())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := herald.New(herald.WithStore(st), herald.WithCodec(c)); err == nil {
		b.Close(context.Background())
		t.Fatal("a codec with its own registry was accepted")
	}
}
