package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/sqlite"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "herald-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Keep debug events a day and everything else 30 days, checked hourly.
	rules := []herald.RetentionRule{
		{Pattern: "debug.>", MaxAge: herald.Duration(24 * time.Hour)},
		{Pattern: ">", MaxAge: herald.Duration(30 * 24 * time.Hour)},
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "herald.db"), sqlite.WithDurability(sqlite.Full))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	bus, err := herald.New(herald.WithStore(st), herald.WithRetention(rules, time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close(ctx)

	e, err := herald.NewEvent("recording.completed", map[string]any{"id": "rec-1"})
	if err != nil {
		log.Fatal(err)
	}
	pos, err := bus.Publish(ctx, e)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored at position", pos)
	// Output: stored at position 1
}
