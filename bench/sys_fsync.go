package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
)

func registerFsync(r map[string]system) {
	r["durable-publish-64/fsync-groupcommit"] = system{run: fsyncGroupCommitRun}
}

// fsyncGroupCommitRun is the disk's limit: 64 publishers hand records to
// one writer that appends everything waiting to a file with one write and
// one fdatasync, then answers each publisher.
func fsyncGroupCommitRun(ctx context.Context, e *env) error {
	f, err := os.OpenFile(filepath.Join(e.dir, "log"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// Allocate the file's blocks up front, as a log writer does, so that
	// each fdatasync flushes data only, not the file's size.
	prealloc := int64(e.size.events+1024) * (payloadSize + 4)
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, prealloc); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	var off int64
	type req struct {
		rec  []byte
		done chan error
	}
	reqs := make(chan req, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var buf []byte
		batch := make([]req, 0, 1024)
		for first := range reqs {
			batch = append(batch[:0], first)
		more:
			for {
				select {
				case r, ok := <-reqs:
					if !ok {
						break more
					}
					batch = append(batch, r)
				default:
					break more
				}
			}
			buf = buf[:0]
			for _, r := range batch {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r.rec)))
				buf = append(buf, r.rec...)
			}
			_, err := f.WriteAt(buf, off)
			off += int64(len(buf))
			if err == nil {
				err = syscall.Fdatasync(int(f.Fd()))
			}
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
	payload := makePayload(0, 0)
	e.meter.begin()
	n, err := publishLoop(ctx, e, func(seq int) error {
		done := make(chan error, 1)
		reqs <- req{rec: payload, done: done}
		return <-done
	})
	e.meter.end(n)
	close(reqs)
	<-writerDone
	return err
}
