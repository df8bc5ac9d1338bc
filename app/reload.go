package app

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// reloadSettle lets an editor finish writing before the file is read.
const reloadSettle = 200 * time.Millisecond

// watch reloads the config at path when the file changes or on SIGHUP,
// until the returned stop is called. The directory is watched, not the
// file: editors and Kubernetes replace a file by renaming another over it.
func (rt *program) watch(ctx context.Context, path string, opts Options) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(filepath.Dir(path))
	}
	if err != nil {
		rt.log.WithError(err).Warn("cannot watch the config file; reload with SIGHUP")
	} else {
		events, errs = w.Events, w.Errors
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		settle := time.NewTimer(time.Hour)
		settle.Stop()
		defer settle.Stop()
		target := filepath.Clean(path)
		for {
			select {
			case <-done:
				return
			case <-hup:
				rt.reload(ctx, path, opts, "SIGHUP")
			case ev := <-events:
				if filepath.Clean(ev.Name) == target && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					settle.Reset(reloadSettle)
				}
			case <-settle.C:
				rt.reload(ctx, path, opts, "file changed")
			case err := <-errs:
				rt.log.WithError(err).Warn("config file watch")
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		signal.Stop(hup)
		if w != nil {
			w.Close()
		}
	}
}

// reload applies a new config without a restart. An invalid file is
// rejected and the running config stays.
func (rt *program) reload(ctx context.Context, path string, opts Options, trigger string) {
	log := rt.log.WithField("trigger", trigger)
	cfg, err := config.Load(path, config.Options{Lookup: opts.LookupEnv})
	if err != nil {
		log.WithError(err).Error("config reload rejected; the running config stays")
		return
	}
	prev := rt.state.Load()
	next, err := rt.build(ctx, cfg, prev)
	if err != nil {
		log.WithError(err).Error("config reload rejected; the running config stays")
		return
	}
	if cfg.Listen != prev.cfg.Listen || cfg.AdminListen != prev.cfg.AdminListen || cfg.Limits != prev.cfg.Limits ||
		cfg.Log != prev.cfg.Log || cfg.Store != prev.cfg.Store {
		log.Warn("listen, admin, limits, log and store changes take effect at the next restart")
	}
	rt.state.Store(next)
	names := make([]string, len(next.upstreams))
	for i, u := range next.upstreams {
		names[i] = u.name
	}
	rt.metrics.SetUpstreams(names)
	kept, fresh := 0, 0
	for _, u := range next.upstreams {
		if prev.has(u) {
			kept++
		} else {
			fresh++
		}
	}
	log.WithFields(logrus.Fields{"upstreams": len(next.upstreams), "tokens_kept": kept, "tokens_new": fresh}).Info("config reloaded")
}

// has reports whether s already ran u with the same token identity.
func (s *proxyState) has(u upstreamRuntime) bool {
	for _, p := range s.upstreams {
		if p.cache == u.cache {
			return true
		}
	}
	return false
}
