// Command recording-pipeline runs PanottiServer's plugin chain (recording → noise reduction → transcription → meeting notes → desktop notification) on a herald bus.
//
// A recording that ends goes through four plugins, each a durable typed
// subscription that publishes its result through its handler's context (so
// every event of a recording shares one correlation id and names its cause):
//
//	recording.ended → noise_reduction.completed → transcription_local.completed
//	  → meeting_notes_local.completed → desktop_notification.completed
//
// On the way, the transcription plugin fails once for one recording (a
// temporary error, retried with backoff), and the meeting-notes plugin
// fails permanently for another until its fault is fixed: that event goes
// to the dead-letter queue, and is redriven once the fault is gone. At the
// end the program prints each recording's chain with every handler's
// outcome (Bus.Trace), and each recording as an event-sourced aggregate:
// the events of its subject "recording/<id>" folded by package es.
//
// The transcript is marked "x-sensitive" in its event's JSON Schema: the
// bus stores it encrypted with its recording's key (package sensitive),
// handlers and aggregates read it in clear, and forgetting the first
// recording deletes its key, after which its transcript reads as null.
//
//	go run ./examples/recording-pipeline               # events in memory
//	go run ./examples/recording-pipeline -data ./data  # events in a SQLite file
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.dataDir, "data", "", "keep the events in a SQLite store in this directory (default: in memory)")
	flag.IntVar(&cfg.recordings, "recordings", 3, "how many recordings to publish (at least 3)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "recording-pipeline:", err)
		os.Exit(1)
	}
}
