package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// requestInfo collects what the access log reports of one request; the
// transport and the error writer fill it in through the context.
type requestInfo struct {
	upstream string
	// replay is "" when the request was not replayed, else its outcome
	// as the transport saw it: "success", "rejected" or "error".
	replay string
	// fail is what went wrong, if anything, and err its error.
	fail failureKind
	err  error
	// body is the client's request body; nil without one.
	body *clientBody
	// tee is the body's replay copy, if one was made; replaySkip says
	// why none was when one could have been.
	tee        *teeBody
	replaySkip string
	// truncated: the upstream's body ended before its end; expectedBytes
	// is the length it had declared (-1: none).
	truncated     bool
	expectedBytes int64
}

// replaySkipped says why the request's body streamed without a copy
// although it could have been replayed; "" if it had one or needed none.
func (info *requestInfo) replaySkipped() string {
	if info.tee != nil {
		return info.tee.skipReason()
	}
	return info.replaySkip
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

// responseRecorder notes the status and size of a response. Unwrap lets
// http.ResponseController reach Flush and Hijack on the real writer, which
// ReverseProxy needs for streaming and upgrades.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *responseRecorder) WriteHeader(code int) {
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logAccess writes one line per request. It logs the path without the
// query string, which may carry keys, and never a header value.
func (h *Handler) logAccess(r *http.Request, rec *responseRecorder, info *requestInfo, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	duration := h.now().Sub(start)
	if h.onRequest != nil {
		ev := RequestEvent{Upstream: info.upstream, Method: r.Method, Status: status, Duration: duration}
		ev.Replay = info.replay
		ev.ReplaySkipped = info.replaySkipped()
		ev.Truncated = info.truncated
		if info.fail != failNone {
			f := failures[info.fail]
			ev.Error, ev.Fault = f.Code, f.Fault
			if ev.Replay != "" {
				ev.Replay = "error" // answered after the replay, then failed (a cut-off body)
			}
		}
		h.onRequest(ev)
	}
	fields := logrus.Fields{
		"method":      r.Method,
		"path":        r.URL.Path,
		"status":      status,
		"duration_ms": float64(duration.Microseconds()) / 1000,
		"bytes":       rec.bytes,
		"replayed":    info.replay != "",
		"remote":      r.RemoteAddr,
	}
	if info.upstream != "" {
		fields["upstream"] = info.upstream
	}
	if skip := info.replaySkipped(); skip != "" {
		fields["replay_skipped"] = skip
	}
	if info.truncated && info.expectedBytes >= 0 {
		fields["expected_bytes"] = info.expectedBytes
	}
	entry := h.log.WithFields(fields)
	if info.fail != failNone {
		f := failures[info.fail]
		entry = entry.WithField("error", f.Code).WithField("fault", string(f.Fault))
		if info.err != nil {
			entry = entry.WithField("detail", info.err.Error())
		}
	}
	entry.Info("request")
}
