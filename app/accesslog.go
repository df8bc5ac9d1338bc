package app

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/authproxy/authproxy/proxy"
	"github.com/sirupsen/logrus"
)

// accessLog writes the proxy's access lines straight to the log's output,
// in the very bytes that logger's formatter writes for the same fields
// (jsonFormatter's, or logrus's TextFormatter's), without building a
// logrus entry: there is a line for every request, and the entry, its
// map of boxed values and its copies were most of what logging cost.
// When the level drops the line, nothing is built at all.
type accessLog struct {
	logger *logrus.Logger // for its level
	out    *logOutput
	text   bool
}

var _ proxy.AccessLogger = (*accessLog)(nil)

// newAccessLog makes logger's output a logOutput, through which its own
// lines and the access lines are written whole, and returns the access
// log writing there. The caller closes the output when it is done
// serving, so that the access lines it holds are written. It returns nil (the proxy then logs through logger)
// where it could not write what logger would: coloured text, on a
// terminal.
func newAccessLog(logger *logrus.Logger, format string) *accessLog {
	text := format == "text"
	if text && colours(logger) {
		return nil
	}
	out, ok := logger.Out.(*logOutput)
	if !ok {
		out = newLogOutput(logger.Out)
		logger.Out = out
	}
	return &accessLog{logger: logger, out: out, text: text}
}

// colours says whether logrus's TextFormatter colours its lines on
// logger's output, as it does on a terminal: asked of logrus itself, so
// that the answer is its own.
func colours(logger *logrus.Logger) bool {
	probe := &logrus.Logger{Out: logger.Out, Formatter: &logrus.TextFormatter{}}
	b, _ := probe.Formatter.Format(&logrus.Entry{Logger: probe, Level: logrus.InfoLevel, Message: "probe"})
	return bytes.Contains(b, []byte("\x1b["))
}

// lineBuffers recycles the buffers lines are encoded into.
var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (a *accessLog) LogAccess(line proxy.AccessLine) {
	if !a.logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	var b []byte
	if a.text {
		b = appendTextAccessLine((*bp)[:0], &line)
	} else {
		b = appendJSONAccessLine((*bp)[:0], &line)
	}
	if line.Error != "" {
		a.out.Write(b) // an error line goes out at once, with what was held before it
	} else {
		a.out.writeHeld(b)
	}
	if cap(b) <= 64<<10 { // a line with a huge detail is not kept
		*bp = b
		lineBuffers.Put(bp)
	}
}

// appendJSONAccessLine writes line as jsonFormatter writes the logrus
// entry of its fields: keys in sorted order, "level", "msg" and "time"
// among them.
func appendJSONAccessLine(b []byte, line *proxy.AccessLine) []byte {
	b = append(b, `{"bytes":`...)
	b = strconv.AppendInt(b, line.Bytes, 10)
	if line.Error != "" && line.Detail != nil {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, line.Detail.Error())
	}
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, durationMillis(line.Duration))
	if line.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, line.Error)
	}
	if line.ExpectedBytes >= 0 {
		b = append(b, `,"expected_bytes":`...)
		b = strconv.AppendInt(b, line.ExpectedBytes, 10)
	}
	if line.Error != "" {
		b = append(b, `,"fault":`...)
		b = appendJSONString(b, string(line.Fault))
	}
	if line.Host != "" {
		b = append(b, `,"host":`...)
		b = appendJSONString(b, line.Host)
	}
	b = append(b, `,"level":"info","method":`...)
	b = appendJSONString(b, line.Method)
	if line.Mode != proxy.ModeReverse { // left out for reverse, so that those lines stay as they were
		b = append(b, `,"mode":`...)
		b = appendJSONString(b, line.Mode.String())
	}
	b = append(b, `,"msg":"request","path":`...)
	b = appendJSONString(b, line.Path)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, line.Remote)
	if line.ReplaySkipped != "" {
		b = append(b, `,"replay_skipped":`...)
		b = appendJSONString(b, line.ReplaySkipped)
	}
	b = append(b, `,"replayed":`...)
	b = strconv.AppendBool(b, line.Replayed)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(line.Status), 10)
	b = append(b, `,"time":"`...)
	b = line.Time.AppendFormat(b, time.RFC3339) // no character JSON escapes
	b = append(b, '"')
	if line.Upstream != "" {
		b = append(b, `,"upstream":`...)
		b = appendJSONString(b, line.Upstream)
	}
	return append(b, '}', '\n')
}

// appendTextAccessLine writes line as logrus's TextFormatter (with
// FullTimestamp, without colours) writes the logrus entry of its fields:
// time, level and msg first, then the fields in sorted order, a value
// quoted as Go quotes strings when it holds anything but letters, digits
// and -._/@^+.
func appendTextAccessLine(b []byte, line *proxy.AccessLine) []byte {
	b = append(b, `time="`...)
	b = line.Time.AppendFormat(b, time.RFC3339) // always has a ':', so always quoted, never escaped
	b = append(b, `" level=info msg=request bytes=`...)
	b = strconv.AppendInt(b, line.Bytes, 10)
	if line.Error != "" && line.Detail != nil {
		b = append(b, " detail="...)
		b = appendTextString(b, line.Detail.Error())
	}
	b = append(b, " duration_ms="...)
	b = strconv.AppendFloat(b, durationMillis(line.Duration), 'g', -1, 64)
	if line.Error != "" {
		b = append(b, " error="...)
		b = appendTextString(b, line.Error)
	}
	if line.ExpectedBytes >= 0 {
		b = append(b, " expected_bytes="...)
		b = strconv.AppendInt(b, line.ExpectedBytes, 10)
	}
	if line.Error != "" {
		b = append(b, " fault="...)
		b = appendTextString(b, string(line.Fault))
	}
	if line.Host != "" {
		b = append(b, " host="...)
		b = appendTextString(b, line.Host)
	}
	b = append(b, " method="...)
	b = appendTextString(b, line.Method)
	if line.Mode != proxy.ModeReverse {
		b = append(b, " mode="...)
		b = appendTextString(b, line.Mode.String())
	}
	b = append(b, " path="...)
	b = appendTextString(b, line.Path)
	b = append(b, " remote="...)
	b = appendTextString(b, line.Remote)
	if line.ReplaySkipped != "" {
		b = append(b, " replay_skipped="...)
		b = appendTextString(b, line.ReplaySkipped)
	}
	b = append(b, " replayed="...)
	b = strconv.AppendBool(b, line.Replayed)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(line.Status), 10)
	if line.Upstream != "" {
		b = append(b, " upstream="...)
		b = appendTextString(b, line.Upstream)
	}
	return append(b, '\n')
}

// durationMillis is the access log's duration_ms: milliseconds, to the
// microsecond.
func durationMillis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// appendTextString writes s as logrus's TextFormatter does.
func appendTextString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !textSafe(s[i]) {
			return strconv.AppendQuote(b, s)
		}
	}
	return append(b, s...)
}

func textSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '/', '@', '^', '+':
		return true
	}
	return false
}
