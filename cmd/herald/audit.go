package main

import (
	"fmt"
	"os"
	"sync"
)

// Defaults of the audit log's rotation (--audit-max-size, --audit-keep).
const (
	defaultAuditMaxSize = 64 << 20
	defaultAuditKeep    = 5
)

// auditFile is the audit log: a file that, when a write would take it past
// maxSize bytes, is renamed path.1 (path.1 becomes path.2, and so on; the
// oldest beyond keep is removed) and started anew. It is safe for
// concurrent use. A failed write returns its error, which makes the server
// refuse the admin action it was to record.
type auditFile struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File
	size int64
}

func openAuditFile(path string, maxSize int64, keep int) (*auditFile, error) {
	if maxSize < 1 || keep < 1 {
		return nil, usageError{fmt.Errorf("--audit-max-size and --audit-keep must be at least 1")}
	}
	a := &auditFile{path: path, maxSize: maxSize, keep: keep}
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *auditFile) open() error {
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	a.f, a.size = f, fi.Size()
	return nil
}

func (a *auditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		if err := a.open(); err != nil {
			return 0, err
		}
	}
	if a.size > 0 && a.size+int64(len(p)) > a.maxSize {
		if err := a.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := a.f.Write(p)
	a.size += int64(n)
	return n, err
}

// rotate shifts the kept files by one and starts a new file.
func (a *auditFile) rotate() error {
	a.f.Close()
	a.f = nil
	os.Remove(fmt.Sprintf("%s.%d", a.path, a.keep))
	for i := a.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", a.path, i), fmt.Sprintf("%s.%d", a.path, i+1))
	}
	if err := os.Rename(a.path, a.path+".1"); err != nil && !os.IsNotExist(err) {
		return err
	}
	return a.open()
}

// Close closes the current file.
func (a *auditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
