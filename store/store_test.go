package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/auth"
)

func TestFileSavesDurablyAndPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "tokens.json")
	f := &File{Path: path}
	ctx := context.Background()
	if r, err := f.Load(ctx, "redbooth"); r != nil || err != nil {
		t.Fatalf("empty store: %v, %v", r, err)
	}
	rec := auth.Record{Fingerprint: "fp", RefreshToken: "r1", AccessToken: "a1", TokenType: "bearer",
		Expiry: time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC), Updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := f.Save(ctx, "redbooth", rec); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(ctx, "other", auth.Record{Fingerprint: "x", RefreshToken: "o1"}); err != nil {
		t.Fatal(err)
	}
	// A new File on the same path, as after a restart.
	got, err := (&File{Path: path}).Load(ctx, "redbooth")
	if err != nil || got == nil || *got != rec {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestFileLeavesACorruptStoreUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	corrupt := []byte(`{"version":1,"tokens":{"redbooth":{"refresh_token":"r1"`)
	os.WriteFile(path, corrupt, 0o600)
	f := &File{Path: path}
	if err := f.Check(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "left untouched") {
		t.Errorf("Check: %v", err)
	}
	if err := f.Save(context.Background(), "redbooth", auth.Record{RefreshToken: "r2"}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Save over a corrupt file: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(corrupt) {
		t.Errorf("the corrupt file was changed to %q", got)
	}
}

func TestFileConcurrentSavesLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A File per writer, as two processes would have.
			if err := (&File{Path: path}).Save(context.Background(), fmt.Sprint("u", i), auth.Record{RefreshToken: fmt.Sprint("r", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		r, err := (&File{Path: path}).Load(context.Background(), fmt.Sprint("u", i))
		if err != nil || r == nil || r.RefreshToken != fmt.Sprint("r", i) {
			t.Errorf("u%d: %+v, %v", i, r, err)
		}
	}
}

func TestMemory(t *testing.T) {
	var m Memory
	m.Save(context.Background(), "a", auth.Record{RefreshToken: "r"})
	if r, _ := m.Load(context.Background(), "a"); r == nil || r.RefreshToken != "r" {
		t.Errorf("got %+v", r)
	}
}
