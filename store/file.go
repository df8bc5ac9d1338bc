package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// File keeps records in one JSON file, written so that a crash at any
// moment leaves either the old file or the new one, never half of one: a
// temporary file in the same directory is written, synced, renamed over
// the old one, and the directory synced. The file is mode 0600. Processes
// sharing the file (the proxy, `authproxy token`, `authproxy login`) take
// a lock on PATH.lock around each read-modify-write, and a refresh holds
// it from reading the refresh token to saving the rotated one.
type File struct {
	// Path is the file's location; its directory is created if missing.
	Path string

	mu sync.Mutex // serializes this process's writers
}

var _ auth.Store = (*File)(nil)

// ErrCorrupt marks a store file that cannot be parsed. It is never
// overwritten: a person must look at it.
var ErrCorrupt = errors.New("token store is not valid JSON")

// fileFormat is the file's content.
type fileFormat struct {
	Version int                    `json:"version"`
	Tokens  map[string]auth.Record `json:"tokens"`
}

// Check reads the whole file, so that a corrupt store stops the proxy at
// start rather than at its first refresh.
func (f *File) Check() error {
	_, err := f.read()
	return err
}

// Load returns the record for name, or nil.
func (f *File) Load(_ context.Context, name string) (*auth.Record, error) {
	ff, err := f.read()
	if err != nil {
		return nil, err
	}
	r, ok := ff.Tokens[name]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

// Save replaces the record for name and returns once it is durable.
func (f *File) Save(ctx context.Context, name string, r auth.Record) error {
	return f.Update(ctx, name, func(*auth.Record) (*auth.Record, error) { return &r, nil })
}

var _ auth.Updater = (*File)(nil)

// Update runs fn on the record for name while holding the lock on
// PATH.lock, which every process using the file takes, and writes what fn
// returns before letting it go. The lock covers the whole file: refreshes
// of different upstreams in one file wait for each other (they are rare,
// and each is bounded by its token timeout).
func (f *File) Update(ctx context.Context, name string, fn func(cur *auth.Record) (*auth.Record, error)) error {
	// This process's writers first: flock is per open file, so a second
	// lock taken here on another descriptor would wait for the first.
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	unlock, err := lockFile(ctx, f.Path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	ff, err := f.read()
	if err != nil {
		return err // a corrupt file is left exactly as it is
	}
	var cur *auth.Record
	if r, ok := ff.Tokens[name]; ok {
		cur = &r
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return err
	}
	ff.Tokens[name] = *next
	data, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	return writeAtomic(f.Path, append(data, '\n'))
}

func (f *File) read() (*fileFormat, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &fileFormat{Version: 1, Tokens: map[string]auth.Record{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	var ff fileFormat
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ff); err != nil {
		return nil, fmt.Errorf("%w: %s: %v; it was left untouched: fix or move it, then run authproxy login for each upstream it held", ErrCorrupt, f.Path, err)
	}
	if ff.Version != 1 {
		return nil, fmt.Errorf("%w: %s has version %d, this build reads version 1; it was left untouched", ErrCorrupt, f.Path, ff.Version)
	}
	if ff.Tokens == nil {
		ff.Tokens = map[string]auth.Record{}
	}
	return &ff, nil
}

// writeAtomic replaces path with data: temp file, fsync, rename, fsync
// of the directory (without which the rename itself may not survive a
// power cut).
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("token store: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("token store: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token store: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("token store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("token store: sync directory: %w", err)
	}
	return nil
}

// lockPoll is how often a process waiting for another's lock on the
// store tries again; flock itself cannot be given a deadline.
const lockPoll = 5 * time.Millisecond

// lockFile takes an exclusive advisory lock, so that processes sharing
// the store (the proxy, `authproxy token`, `authproxy login`) neither drop
// each other's records nor redeem one refresh token twice. It waits until
// ctx is done: another process may hold it through a token request.
func lockFile(ctx context.Context, path string) (func(), error) {
	lf, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("token store lock: %w", err)
	}
	var poll *time.Timer
	for {
		err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			lf.Close()
			return nil, fmt.Errorf("token store lock: %w", err)
		}
		if poll == nil {
			poll = time.NewTimer(lockPoll)
			defer poll.Stop()
		} else {
			poll.Reset(lockPoll)
		}
		select {
		case <-poll.C:
		case <-ctx.Done():
			lf.Close()
			return nil, fmt.Errorf("token store lock %s (held by another process): %w", path, ctx.Err())
		}
	}
	return func() {
		syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		lf.Close()
	}, nil
}
