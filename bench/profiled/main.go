// Command profiled is authproxy's main with net/http/pprof served on a
// listener of its own, for the bench's -profile mode only. The real
// binary's admin listener has no pprof, and the bench must not change
// the program it measures; this wrapper runs the same app.Run.
//
// AUTHPROXY_BENCH_PPROF is the pprof listener's address (unset: none, as
// for `profiled check`);
// AUTHPROXY_BENCH_MEMPROFILERATE sets runtime.MemProfileRate (default
// 4096 bytes, finer than Go's 512 KiB, so that per-request allocation
// sites are counted well in a few seconds).
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/authproxy/authproxy/app"
)

func main() {
	runtime.MemProfileRate = 4096
	if v, err := strconv.Atoi(os.Getenv("AUTHPROXY_BENCH_MEMPROFILERATE")); err == nil {
		runtime.MemProfileRate = v
	}
	if addr := os.Getenv("AUTHPROXY_BENCH_PPROF"); addr != "" {
		servePprof(addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, app.Options{Args: os.Args[1:]})
	stop()
	os.Exit(code)
}

func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	// WriteTimeout stays zero: a CPU profile takes as long as it is asked
	// to. The server lives as long as the process.
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			fmt.Fprintln(os.Stderr, "profiled: pprof listener:", err)
		}
	}()
}
