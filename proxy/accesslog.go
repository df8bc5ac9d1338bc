package proxy

import (
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// AccessLine is what the access log says of one answered request. Each
// field is a key of the line; the comments say when one is left out.
type AccessLine struct {
	// Time is when the answer was done ("time").
	Time     time.Time
	Method   string
	Path     string // without the query string, which may carry keys
	Remote   string
	Upstream string // "": left out (no upstream took the request)
	// Mode is the way the request came in ("mode": "forward"; left out
	// for ModeReverse, whose lines are as before it); Host the host:port
	// a forward request named ("host"; "": left out).
	Mode     Mode
	Host     string
	Status   int
	Duration time.Duration // written as "duration_ms", to the microsecond
	Bytes    int64
	Replayed bool
	// ReplaySkipped says why the body streamed without a replay copy;
	// "": left out.
	ReplaySkipped string
	// ExpectedBytes is the length a truncated answer had declared; -1:
	// left out.
	ExpectedBytes int64
	// Error and Fault say what failed; "": both left out, and Detail too.
	Error string
	Fault Fault
	// Detail is the error itself; nil: left out.
	Detail error
}

// AccessLogger writes the access log. LogAccess is called once per
// answered request, on the request's goroutine: it must not block for
// long, and must not keep line. Writing a line is the proxy's most
// frequent work after proxying itself, so an implementation should skip
// it cheaply when its level drops it.
type AccessLogger interface {
	LogAccess(line AccessLine)
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

// logAccess reports one answered request: to OnRequest, and one access
// line. It logs the path without the query string, which may carry keys,
// and never a header value.
func (h *Handler) logAccess(r *http.Request, st *requestState) {
	info := &st.info
	status := st.rec.status
	if status == 0 {
		status = http.StatusOK
	}
	end := h.now()
	duration := end.Sub(st.start)
	skip := info.replaySkipped()
	var f Failure
	if info.fail != failNone {
		f = failures[info.fail]
	}
	if h.trace.tracer != nil {
		h.trace.end(r, info, status, f)
	}
	if h.onRequest != nil {
		ev := RequestEvent{Upstream: info.upstream, Mode: info.mode, Host: info.host, Method: r.Method, Status: status, Duration: duration,
			Replay: info.replay, ReplaySkipped: skip, Truncated: info.truncated, Error: f.Code, Fault: f.Fault}
		if info.fail != failNone && ev.Replay != "" {
			ev.Replay = "error" // answered after the replay, then failed (a cut-off body)
		}
		h.onRequest(ev)
	}
	line := AccessLine{
		Time: end, Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr, Upstream: info.upstream, Mode: info.mode, Host: info.host,
		Status: status, Duration: duration, Bytes: st.rec.bytes, Replayed: info.replay != "",
		ReplaySkipped: skip, ExpectedBytes: -1, Error: f.Code, Fault: f.Fault,
	}
	if info.truncated {
		line.ExpectedBytes = info.expectedBytes
	}
	if info.fail != failNone {
		line.Detail = info.err
	}
	if h.accessLog != nil {
		h.accessLog.LogAccess(line)
		return
	}
	logAccessTo(h.log, line)
}

// logAccessTo writes line as a logrus entry, for a Handler without an
// AccessLogger. Its fields are the line's, whatever the formatter.
func logAccessTo(log logrus.FieldLogger, line AccessLine) {
	fields := logrus.Fields{
		"method":      line.Method,
		"path":        line.Path,
		"status":      line.Status,
		"duration_ms": float64(line.Duration.Microseconds()) / 1000,
		"bytes":       line.Bytes,
		"replayed":    line.Replayed,
		"remote":      line.Remote,
	}
	if line.Mode != ModeReverse {
		fields["mode"] = line.Mode.String()
	}
	if line.Host != "" {
		fields["host"] = line.Host
	}
	if line.Upstream != "" {
		fields["upstream"] = line.Upstream
	}
	if line.ReplaySkipped != "" {
		fields["replay_skipped"] = line.ReplaySkipped
	}
	if line.ExpectedBytes >= 0 {
		fields["expected_bytes"] = line.ExpectedBytes
	}
	if line.Error != "" {
		fields["error"] = line.Error
		fields["fault"] = string(line.Fault)
		if line.Detail != nil {
			fields["detail"] = line.Detail.Error()
		}
	}
	log.WithFields(fields).Info("request")
}
