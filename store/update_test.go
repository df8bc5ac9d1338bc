package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

// TestFileUpdateHoldsTheLockAcrossReadAndSave: a second File on the same
// path (another process, in effect: its own lock descriptor) waits for the
// first's update to finish, then sees what it saved.
func TestFileUpdateHoldsTheLockAcrossReadAndSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	a, b := &File{Path: path}, &File{Path: path}
	ctx := context.Background()
	a.Save(ctx, "x", auth.Record{RefreshToken: "r0"})
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Update(ctx, "x", func(cur *auth.Record) (*auth.Record, error) {
			close(inside)
			<-release
			return &auth.Record{RefreshToken: cur.RefreshToken + "-a"}, nil
		})
	}()
	<-inside
	// While a holds the lock, b cannot take it.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := b.Update(short, "x", func(*auth.Record) (*auth.Record, error) {
		t.Error("ran while another update held the lock")
		return nil, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a held lock: %v", err)
	}
	bRead, bDone := make(chan string, 1), make(chan error, 1)
	go func() {
		bDone <- b.Update(ctx, "x", func(cur *auth.Record) (*auth.Record, error) {
			bRead <- cur.RefreshToken
			return &auth.Record{RefreshToken: cur.RefreshToken + "-b"}, nil
		})
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := <-bRead; got != "r0-a" {
		t.Errorf("the second update read %q, want the first's r0-a", got)
	}
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}
	// A failing fn saves nothing.
	boom := errors.New("boom")
	if err := a.Update(ctx, "x", func(*auth.Record) (*auth.Record, error) { return &auth.Record{RefreshToken: "no"}, boom }); err != boom {
		t.Errorf("got %v", err)
	}
	if r, err := a.Load(ctx, "x"); err != nil || r == nil || r.RefreshToken != "r0-a-b" {
		t.Errorf("got %+v, %v; want r0-a-b", r, err)
	}
}

func TestMemoryUpdate(t *testing.T) {
	m := &Memory{}
	ctx := context.Background()
	m.Update(ctx, "x", func(cur *auth.Record) (*auth.Record, error) {
		if cur != nil {
			t.Errorf("empty store gave %+v", cur)
		}
		return &auth.Record{RefreshToken: "r1"}, nil
	})
	m.Update(ctx, "x", func(cur *auth.Record) (*auth.Record, error) { return nil, nil }) // keeps r1
	if r, _ := m.Load(ctx, "x"); r == nil || r.RefreshToken != "r1" {
		t.Errorf("got %+v", r)
	}
}
