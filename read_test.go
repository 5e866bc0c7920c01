package herald

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald/internal/testwait"
)

// Every read of the bus decodes with the codec the bus was given; only a
// read asked for Raw returns the stored form.
func TestBusReadsDecode(t *testing.T) {
	ctx := context.Background()
	st := sharedStore(t)
	b := newBus(t, WithStore(st), WithCodec(wrapCodec{}))
	e := ev("door.read", "s/1", `{"secret":"s3cr3t"}`)
	pos := mustPublish(t, b, e)
	if stored, _ := st.Get(ctx, e.ID); strings.Contains(string(stored.Data), "s3cr3t") {
		t.Fatalf("stored in clear: %s", stored.Data)
	}

	var read []*Event
	for x, err := range b.Read(ctx, 0, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, x)
	}
	if len(read) != 1 || string(read[0].Data) != `{"secret":"s3cr3t"}` || read[0].Position != pos {
		t.Fatalf("Read returned %+v", read)
	}
	for x, err := range b.Read(ctx, 0, Filter{}, Raw()) {
		if err != nil || strings.Contains(string(x.Data), "s3cr3t") {
			t.Fatalf("Raw read %s %v", x.Data, err)
		}
	}
	if got, err := b.Get(ctx, e.ID); err != nil || string(got.Data) != `{"secret":"s3cr3t"}` {
		t.Fatalf("Get %v %v", got, err)
	}
	if got, err := b.Get(ctx, e.ID, Raw()); err != nil || strings.Contains(string(got.Data), "s3cr3t") {
		t.Fatalf("Get raw %s %v", got.Data, err)
	}
	tr, err := b.Trace(ctx, e.CorrelationID)
	if err != nil || len(tr.Events) != 1 || string(tr.Events[0].Event.Data) != `{"secret":"s3cr3t"}` {
		t.Fatalf("Trace %+v %v", tr, err)
	}
	if h, err := b.Head(ctx); err != nil || h != pos {
		t.Fatalf("Head %d %v", h, err)
	}
	if v, err := b.SubjectVersion(ctx, "s/1"); err != nil || v != 1 {
		t.Fatalf("SubjectVersion %d %v", v, err)
	}

	// Dead letters too.
	mustSubscribe(t, b, "door.read", func(ctx context.Context, e *Event) error {
		return Permanent(errors.New("no"))
	}, Durable("dl"))
	testwait.For(t, "the dead letter", func() bool {
		dls, _ := b.DeadLetters(ctx, DeadLetterQuery{Subscription: "dl"})
		return len(dls) == 1
	})
	dls, err := b.DeadLetters(ctx, DeadLetterQuery{Subscription: "dl"})
	if err != nil || string(dls[0].Event.Data) != `{"secret":"s3cr3t"}` {
		t.Fatalf("DeadLetters %+v %v", dls, err)
	}
}

// A name whose schema marks a field sensitive cannot be published on a bus
// with no codec to encrypt it, whatever the event's version.
func TestSensitiveNameNeedsCodec(t *testing.T) {
	ctx := context.Background()
	st := sharedStore(t)
	b := newBus(t, WithStore(st))
	if err := b.Schemas().Register("door.person", 1, []byte(`{"properties":{"ssn":{"type":"string","x-sensitive":true}}}`)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2, 7} {
		e := ev("door.person", "p/1", `{"ssn":"123-45-6789"}`)
		e.Version = v
		if _, err := b.Publish(ctx, e); !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "no codec") {
			t.Fatalf("v%d: want a refusal naming the missing codec, got %v", v, err)
		}
	}
	if h, _ := st.Head(ctx); h != 0 {
		t.Fatal("a refused event was stored")
	}
	// Other names are not affected.
	mustPublish(t, b, ev("door.other", "", `{"ssn":"x"}`))
}

// Schemas.NameSensitiveFields is the union over a name's versions, kept up
// to date by Register and Delete.
func TestNameSensitiveFields(t *testing.T) {
	s := NewSchemas()
	if err := s.Register("p.x", 1, []byte(`{"properties":{"ssn":{"x-sensitive":true}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Register("p.x", 3, []byte(`{"properties":{"email":{"x-sensitive":true},"ssn":{"x-sensitive":true}}}`)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.NameSensitiveFields("p.x"), ","); got != "data.email,data.ssn" {
		t.Fatalf("union %q", got)
	}
	s.Delete("p.x", 3)
	if got := strings.Join(s.NameSensitiveFields("p.x"), ","); got != "data.ssn" {
		t.Fatalf("after Delete %q", got)
	}
	s.Delete("p.x", 1)
	if got := s.NameSensitiveFields("p.x"); got != nil {
		t.Fatalf("after deleting all %q", got)
	}
}

// A typed event with a schema registers it with the bus it is published
// on: the bus validates against it and applies its sensitive marks.
func TestTypedPublishRegistersSchema(t *testing.T) {
	ctx := context.Background()
	type person struct {
		SSN string `json:"ssn"`
	}
	pt := Define[person]("door.typed", WithJSONSchema([]byte(`{"type":"object","properties":{"ssn":{"type":"string","x-sensitive":true}}}`)))
	b := newBus(t)
	// No codec: the mark makes the publish fail loudly instead of storing
	// the field in clear.
	if _, err := pt.Publish(ctx, b, person{SSN: "1"}, WithSubject("p/1")); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("want a refusal, got %v", err)
	}
	if _, err := b.Schemas().Get("door.typed", 1); err != nil {
		t.Fatalf("the type's schema was not registered: %v", err)
	}
	// A bus holding another schema that drops the mark refuses the type.
	b2 := newBus(t)
	if err := b2.Schemas().Register("door.typed", 1, []byte(`{"type":"object"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.Publish(ctx, b2, person{SSN: "1"}, WithSubject("p/1")); !errors.Is(err, ErrInvalidSchema) {
		t.Fatalf("want ErrInvalidSchema, got %v", err)
	}
	if _, err := pt.PublishBatch(ctx, b2, []person{{SSN: "1"}}, WithSubject("p/1")); !errors.Is(err, ErrInvalidSchema) {
		t.Fatalf("batch: want ErrInvalidSchema, got %v", err)
	}
}

// The bus keeps no subscription state behind a running subscription's
// back.
func TestDeleteSubscriptionRefusesRunning(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	s := mustSubscribe(t, b, ">", func(context.Context, *Event) error { return nil }, Durable("del"))
	if err := b.DeleteSubscription(ctx, "del"); !errors.Is(err, ErrConflict) {
		t.Fatalf("want ErrConflict for a running subscription, got %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Checkpoint(ctx, "del"); !ok {
		t.Fatal("no checkpoint after Close")
	}
	if err := b.DeleteSubscription(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Checkpoint(ctx, "del"); ok {
		t.Fatal("checkpoint kept")
	}
}

// A dead letter whose redrive has succeeded is not listed again, even
// before the subscription's next scheduled commit.
func TestDeadLettersSeeSucceededRedrive(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	var fixed atomic.Bool
	s := mustSubscribe(t, b, "door.dl", func(context.Context, *Event) error {
		if !fixed.Load() {
			return Permanent(errors.New("broken"))
		}
		return nil
	}, Durable("redr"))
	mustPublish(t, b, ev("door.dl", "", ""))
	testwait.For(t, "the dead letter", func() bool {
		dls, _ := b.DeadLetters(ctx, DeadLetterQuery{Subscription: "redr"})
		return len(dls) == 1
	})
	fixed.Store(true)
	if n, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "redr"}); err != nil || n != 1 {
		t.Fatalf("Redrive %d %v", n, err)
	}
	testwait.For(t, "the redrive to succeed", func() bool { return s.Stats().Handled == 1 })
	// The handler succeeded: the entry is gone for every reader of the bus,
	// whether or not the subscription has committed yet.
	if dls, err := b.DeadLetters(ctx, DeadLetterQuery{Subscription: "redr"}); err != nil || len(dls) != 0 {
		t.Fatalf("listed after a successful redrive: %+v %v", dls, err)
	}
}

// Forget goes through the bus's codec and tells the hooks.
func TestForgetThroughBus(t *testing.T) {
	ctx := context.Background()
	if err := newBus(t).Forget(ctx, "s"); !errors.Is(err, ErrNoForgetter) {
		t.Fatalf("want ErrNoForgetter, got %v", err)
	}
	fc := &forgetCodec{}
	b := newBus(t, WithCodec(fc))
	var told []string
	remove := b.OnForget(func(s string) { told = append(told, s) })
	if err := b.Forget(ctx, "s/1"); err != nil {
		t.Fatal(err)
	}
	remove()
	if err := b.Forget(ctx, "s/2"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fc.forgot, ",") != "s/1,s/2" || len(told) == 0 || told[len(told)-1] != "s/1" {
		t.Fatalf("codec forgot %v, hooks told %v", fc.forgot, told)
	}
}

type forgetCodec struct {
	wrapCodec
	forgot []string
}

func (f *forgetCodec) Forget(ctx context.Context, subject string) error {
	f.forgot = append(f.forgot, subject)
	return nil
}

// Subject tells a subject's version and where its events are;
// SubjectVersionAt the version just after one of its events. Neither goes
// down when retention deletes events.
func TestBusSubject(t *testing.T) {
	ctx := context.Background()
	st := sharedStore(t)
	b := newBus(t, WithStore(st))
	if info, err := b.Subject(ctx, "order/1"); err != nil || info != (SubjectInfo{Subject: "order/1"}) {
		t.Fatalf("empty subject: %+v %v", info, err)
	}
	var pos []uint64
	for i := range 4 {
		pos = append(pos, mustPublish(t, b, ev("order.step", "order/1", "")))
		mustPublish(t, b, ev("other.step", "order/2", ""))
		if v, err := b.SubjectVersionAt(ctx, "order/1", pos[i]); err != nil || v != uint64(i+1) {
			t.Fatalf("SubjectVersionAt after %d events: %d %v", i+1, v, err)
		}
	}
	for i, p := range pos {
		if v, err := b.SubjectVersionAt(ctx, "order/1", p); err != nil || v != uint64(i+1) {
			t.Fatalf("SubjectVersionAt(%d) = %d %v, want %d", p, v, err, i+1)
		}
	}
	info, err := b.Subject(ctx, "order/1")
	if want := (SubjectInfo{Subject: "order/1", Version: 4, FirstPosition: pos[0], LastPosition: pos[3]}); err != nil || info != want {
		t.Fatalf("Subject = %+v %v, want %+v", info, err, want)
	}
	if _, err := st.DeleteEvents(ctx, pos[:2]); err != nil {
		t.Fatal(err)
	}
	info, err = b.Subject(ctx, "order/1")
	if want := (SubjectInfo{Subject: "order/1", Version: 4, FirstPosition: pos[2], LastPosition: pos[3]}); err != nil || info != want {
		t.Fatalf("after retention: Subject = %+v %v, want %+v", info, err, want)
	}
	if v, err := b.SubjectVersionAt(ctx, "order/1", pos[2]); err != nil || v != 3 {
		t.Fatalf("after retention: SubjectVersionAt = %d %v, want 3", v, err)
	}
	if _, err := b.SubjectVersionAt(ctx, "", 1); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("no subject: %v", err)
	}
	b.Close(ctx)
	if _, err := b.Subject(ctx, "order/1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
