package herald

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testwait"
)

// wrapCodec stores data base64-wrapped as {"b64": "..."}; it refuses to
// encode events named "codec.refused" and to decode an event whose data
// was tampered with.
type wrapCodec struct{}

func (wrapCodec) Encode(ctx context.Context, e *Event) error {
	if e.Name == "codec.refused" {
		return &ValidationError{Field: "data", Reason: "refused", Err: ErrInvalidEvent}
	}
	b, _ := json.Marshal(map[string]string{"b64": base64.StdEncoding.EncodeToString(e.Data)})
	e.Data = b
	return nil
}

func (wrapCodec) Decode(ctx context.Context, e *Event) error {
	var w struct{ B64 string }
	if err := json.Unmarshal(e.Data, &w); err != nil || w.B64 == "" {
		return errors.New("not wrapped")
	}
	b, err := base64.StdEncoding.DecodeString(w.B64)
	if err != nil {
		return err
	}
	e.Data = b
	return nil
}

func TestCodec(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStore()
	defer st.Close()
	b, err := New(WithStore(st), WithCodec(wrapCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	seen := make(chan string, 4)
	if _, err := b.Subscribe(ctx, "codec.>", HandlerFunc(func(ctx context.Context, e *Event) error {
		seen <- "one:" + string(e.Data)
		return nil
	}), Durable("one")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SubscribeBatch(ctx, "codec.>", BatchHandlerFunc(func(ctx context.Context, evs []*Event) []error {
		for _, e := range evs {
			seen <- "batch:" + string(e.Data)
		}
		return nil
	}), Durable("batch")); err != nil {
		t.Fatal(err)
	}
	e, _ := NewEvent("codec.plain", map[string]string{"secret": "s3cr3t"})
	if _, err := b.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case s := <-seen:
			got[s] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("delivered only %v", got)
		}
	}
	if !got[`one:{"secret":"s3cr3t"}`] || !got[`batch:{"secret":"s3cr3t"}`] {
		t.Fatalf("handlers saw %v", got)
	}
	stored, err := st.Get(ctx, e.ID)
	if err != nil || strings.Contains(string(stored.Data), "s3cr3t") {
		t.Fatalf("stored %s %v", stored.Data, err)
	}

	// An event the codec refuses is not stored.
	head, _ := st.Head(ctx)
	r, _ := NewEvent("codec.refused", nil)
	if _, err := b.Publish(ctx, r); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("want ErrInvalidEvent, got %v", err)
	}
	if h, _ := st.Head(ctx); h != head {
		t.Fatal("a refused event was stored")
	}

	// An event that does not decode is dead-lettered at once.
	bad := &Event{Name: "codec.tampered", Data: json.RawMessage(`{"x":1}`)}
	if err := bad.Prepare(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, []*Event{bad}, AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	var dl []DeadLetter
	testwait.For(t, "the undecodable event dead-lettered", func() bool {
		var err error
		dl, err = b.DeadLetters(ctx, DeadLetterQuery{Subscription: "one", EventID: bad.ID})
		if err != nil {
			t.Fatal(err)
		}
		return len(dl) == 1
	})
	if !dl[0].Permanent {
		t.Fatalf("dead letter %+v is not permanent", dl[0])
	}
}
