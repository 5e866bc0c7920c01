package herald

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadLettersAfterRedriveAnswered: a redrive whose endpoint has
// answered but whose handler has not returned yet (the answer is on its
// way back) is not listed as still dead. A caller that saw the delivery
// arrive and then listed the dead letters used to find it there.
func TestDeadLettersAfterRedriveAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBus(t)
		ctx := context.Background()
		var fixed atomic.Bool
		delivered := make(chan struct{}, 1)
		mustSubscribe(t, b, "w.>", func(ctx context.Context, e *Event) error {
			if !fixed.Load() {
				return Permanent(errors.New("endpoint answered 400"))
			}
			delivered <- struct{}{}          // the endpoint has it...
			time.Sleep(5 * time.Millisecond) // ...and its answer is on its way back
			return nil
		}, Durable("w"))
		mustPublish(t, b, ev("w.e", "", ""))
		synctest.Wait()
		if n := len(deadLetters(t, b, "w")); n != 1 {
			t.Fatalf("%d dead letters before the redrive, want 1", n)
		}
		fixed.Store(true)
		if _, err := b.Redrive(ctx, DeadLetterQuery{Subscription: "w"}); err != nil {
			t.Fatal(err)
		}
		<-delivered
		if dls := deadLetters(t, b, "w"); len(dls) != 0 {
			t.Fatalf("the dead letter is still listed right after its redrive was delivered: %+v", dls)
		}
	})
}
