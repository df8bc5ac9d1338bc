package app

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
)

// A file written in pieces is read once, a settle after the last piece;
// SIGHUP reloads at once; and the file gets one look at start.
func TestSettleLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done, changes, hup := make(chan struct{}), make(chan struct{}, 1), make(chan os.Signal, 1)
		var mu sync.Mutex
		var reloads []string
		got := func() []string { synctest.Wait(); mu.Lock(); defer mu.Unlock(); return slices.Clone(reloads) }
		go settleLoop(done, changes, hup, 200*time.Millisecond, func(trigger string) {
			mu.Lock()
			reloads = append(reloads, trigger)
			mu.Unlock()
		})
		time.Sleep(199 * time.Millisecond)
		if r := got(); len(r) != 0 {
			t.Fatalf("before the first settle: %q", r)
		}
		time.Sleep(time.Millisecond)
		if r := got(); !slices.Equal(r, []string{"file changed"}) {
			t.Fatalf("the look at start: %q", r)
		}
		for range 3 { // three pieces, 150 ms apart
			changes <- struct{}{}
			time.Sleep(150 * time.Millisecond)
		}
		if r := got(); len(r) != 1 {
			t.Fatalf("read before the writer was done: %q", r)
		}
		time.Sleep(50 * time.Millisecond)
		if r := got(); !slices.Equal(r, []string{"file changed", "file changed"}) {
			t.Fatalf("after the last piece settled: %q", r)
		}
		hup <- syscall.SIGHUP
		if r := got(); len(r) != 3 || r[2] != "SIGHUP" {
			t.Fatalf("SIGHUP: %q", r)
		}
		close(done)
	})
}

// The name proxy.yaml repointed to another file that stays where it is
// (ln -sfn releases/v2.yaml proxy.yaml, or a ConfigMap whose old directory
// is not yet removed) leaves the watched file untouched: only the
// directory's watch sees it.
func TestWatchSeesTheConfigSymlinkRepointed(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"v1.yaml", "v2.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "proxy.yaml")
	if err := os.Symlink("v1.yaml", path); err != nil {
		t.Fatal(err)
	}
	changes := make(chan struct{}, 1)
	log := logrus.New()
	log.Out = io.Discard
	fw, err := watchConfigFile(path, changes, log)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.close()
	if err := os.Symlink("v2.yaml", path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change seen when proxy.yaml was repointed")
	}
}
