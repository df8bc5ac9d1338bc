package app

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/config"
	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// reloadSettle lets a writer finish before the file is read: every event
// restarts the wait, so a file written in pieces is read once, whole.
const reloadSettle = 200 * time.Millisecond

// watch reloads the config at path when its text changes, and on SIGHUP,
// until the returned stop is called.
//
// Two things are watched. The directory: an editor renames a new file
// over the old one, and Kubernetes swaps the ..data symlink that
// proxy.yaml points through, so the event is on ..data and never on
// proxy.yaml. And the file itself, that is the inode it resolves to now:
// a bind mount of one file (docker -v ./proxy.yaml:/etc/authproxy/...)
// shares that inode with the host, and an edit made on the host reaches
// the container only as an event on it. Any event restarts the settle
// wait; then the file is read, and applied only if its text differs from
// the last read and it validates. An invalid file is logged once and the
// running config stays.
func (p *program) watch(ctx context.Context, path string, opts Options) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	changes := make(chan struct{}, 1)
	fw, err := watchConfigFile(path, changes, p.log)
	if err != nil {
		p.log.WithError(err).Warn("cannot watch the config file; reload with SIGHUP")
	}
	text := &configText{seen: p.state.Load().cfg.Digest}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		settleLoop(done, changes, hup, reloadSettle, func(trigger string) {
			fw.rearm()
			p.reloadIfChanged(ctx, path, text, opts, trigger)
		})
	})
	return func() {
		close(done)
		wg.Wait()
		signal.Stop(hup)
		fw.close()
	}
}

// settleLoop calls reload once no change has come for settle, and at once
// on SIGHUP, until done is closed. It also looks once, settle after it
// starts: the file may have changed while the proxy was starting.
func settleLoop(done <-chan struct{}, changes <-chan struct{}, hup <-chan os.Signal, settle time.Duration, reload func(trigger string)) {
	timer := time.NewTimer(settle)
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case <-hup:
			reload("SIGHUP")
		case <-changes:
			timer.Reset(settle)
		case <-timer.C:
			reload("file changed")
		}
	}
}

// configText remembers what the config file last held, so that an event
// that changed nothing in it (a chmod, another file in the directory,
// Kubernetes removing an old timestamped directory) reloads nothing, and a
// file that was rejected is not rejected again at every event.
type configText struct {
	seen         string // the digest of the text last read, or the error of the last read
	orphanWarned bool   // the file is a bind mount's, replaced outside; said once
}

// changed records what was read and reports whether it differs from the
// last time.
func (c *configText) changed(now string) bool {
	if now == c.seen {
		return false
	}
	c.seen = now
	return true
}

// reloadIfChanged reads the config file and applies it if its text
// changed; SIGHUP applies it in any case, for a changed secret file or
// environment.
func (p *program) reloadIfChanged(ctx context.Context, path string, text *configText, opts Options, trigger string) {
	log := p.log.WithField("trigger", trigger)
	data, err := os.ReadFile(path)
	if err != nil {
		if text.changed("error: " + err.Error()) {
			log.WithError(err).Error("cannot read the config file; the running config stays")
		}
		return
	}
	if fi, err := os.Stat(path); err == nil && !text.orphanWarned {
		// A name that leads to a file with no name left: a bind mount of
		// one file whose original was replaced (renamed over) outside. Its
		// text, as seen here, has not changed, and never will.
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
			text.orphanWarned = true
			log.Warn("the config file was replaced where it is mounted from, but this process still sees the old one: a bind mount of one file keeps the file it was given. Mount its directory instead, or restart")
		}
	}
	if !text.changed(config.Digest(data)) && trigger != "SIGHUP" {
		log.Debug("the config file's text is as last read; nothing to reload")
		return
	}
	p.reload(ctx, path, data, opts, trigger)
}

// fileWatch turns every event in the config file's directory, and on the
// file, into a change.
type fileWatch struct {
	path    string
	watcher *fsnotify.Watcher
	done    chan struct{} // closed when the forwarding goroutine has ended
}

func watchConfigFile(path string, changes chan<- struct{}, log logrus.FieldLogger) (*fileWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, err
	}
	fw := &fileWatch{path: path, watcher: w, done: make(chan struct{})}
	fw.rearm()
	go func() {
		defer close(fw.done)
		for {
			select {
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				select {
				case changes <- struct{}{}:
				default: // one pending change is as good as many
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.WithError(err).Warn("config file watch")
			}
		}
	}()
	return fw, nil
}

// rearm watches the file the path leads to now: after a rename over it or
// a swap of ..data, that is another inode than before. Not there (between
// an editor's delete and create), the directory's watch sees it come.
func (fw *fileWatch) rearm() {
	if fw == nil {
		return
	}
	fw.watcher.Remove(fw.path)
	fw.watcher.Add(fw.path)
}

func (fw *fileWatch) close() {
	if fw == nil {
		return
	}
	fw.watcher.Close()
	<-fw.done
}

// reload applies data, the config file's text, without a restart. An
// invalid file is rejected and the running config stays.
func (p *program) reload(ctx context.Context, path string, data []byte, opts Options, trigger string) {
	log := p.log.WithField("trigger", trigger)
	cfg, err := config.LoadData(path, data, opts.config())
	if err != nil {
		log.WithError(err).Error("config reload rejected; the running config stays")
		return
	}
	prev := p.state.Load()
	next, err := p.build(ctx, cfg, prev)
	if err != nil {
		log.WithError(err).Error("config reload rejected; the running config stays")
		return
	}
	if keys := restartOnly(prev.cfg, cfg); len(keys) > 0 {
		log.WithField("keys", strings.Join(keys, ", ")).Warn("these changes take effect at the next restart; the rest is applied")
	}
	p.state.Store(next)
	prev.closeCachesNotIn(next)
	names := make([]string, len(next.upstreams))
	for i, u := range next.upstreams {
		names[i] = u.name
	}
	p.metrics.SetUpstreams(names)
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

// closeCachesNotIn closes the token caches of s that next does not run:
// their background refreshes end. Requests still holding them (begun
// before a reload) are served all the same.
func (s *proxyState) closeCachesNotIn(next *proxyState) {
	for _, u := range s.upstreams {
		if next == nil || !next.has(u) {
			u.cache.Close()
		}
	}
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

// restartOnly names the keys changed from prev to next that a running
// proxy cannot apply: its listeners, its servers' limits, its logger and
// its store are made once, at start. The other limits (max_request_body,
// body_read_timeout, replay_memory) apply at once.
func restartOnly(prev, next *config.Config) []string {
	var keys []string
	for _, c := range []struct {
		key     string
		changed bool
	}{
		{"listen", prev.Listen != next.Listen},
		{"admin.listen", prev.AdminListen != next.AdminListen},
		{"forward_proxy.listen", prev.ForwardProxy.Listen != next.ForwardProxy.Listen},
		{"forward_proxy.max_tunnels", prev.ForwardProxy.MaxTunnels != next.ForwardProxy.MaxTunnels},
		{"shutdown_timeout", prev.ShutdownTimeout != next.ShutdownTimeout},
		{"limits.max_header_bytes", prev.Limits.MaxHeaderBytes != next.Limits.MaxHeaderBytes},
		{"limits.read_header_timeout", prev.Limits.ReadHeaderTimeout != next.Limits.ReadHeaderTimeout},
		{"limits.idle_timeout", prev.Limits.IdleTimeout != next.Limits.IdleTimeout},
		{"log", prev.Log != next.Log},
		{"store", prev.Store != next.Store},
		{"tracing", prev.Tracing != next.Tracing},
	} {
		if c.changed {
			keys = append(keys, c.key)
		}
	}
	return keys
}
