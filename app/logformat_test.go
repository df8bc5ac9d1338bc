package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// The fast formatter must write what logrus's own JSON formatter writes.
func TestJSONFormatterMatchesLogrus(t *testing.T) {
	e := &logrus.Entry{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Level: logrus.WarnLevel, Message: "héllo \"world\"\n\x01",
		Data: logrus.Fields{"status": 200, "bytes": int64(1234), "duration_ms": 1.25, "replayed": true,
			"path": "/a\\b\t</x>", "error": errors.New("boom"), "list": []string{"a"}, "bad": "\xff"},
	}
	got, err := jsonFormatter{}.Format(e)
	if err != nil {
		t.Fatal(err)
	}
	e.Buffer = nil
	want, _ := (&logrus.JSONFormatter{}).Format(e)
	var g, w map[string]any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	json.Unmarshal(want, &w)
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(w)
	if !bytes.Equal(gj, wj) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func BenchmarkJSONFormatter(b *testing.B) {
	e := &logrus.Entry{Time: time.Now(), Level: logrus.InfoLevel, Message: "request",
		Data: logrus.Fields{"method": "GET", "path": "/x", "status": 200, "duration_ms": 1.5, "bytes": int64(10), "replayed": false, "remote": "127.0.0.1:1", "upstream": "api"}}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e.Buffer = &bytes.Buffer{}
			jsonFormatter{}.Format(e)
		}
	})
	b.Run("logrus", func(b *testing.B) {
		b.ReportAllocs()
		f := &logrus.JSONFormatter{}
		for b.Loop() {
			e.Buffer = &bytes.Buffer{}
			f.Format(e)
		}
	})
}

// A field named like one of the keys the formatter writes itself must not
// make a second "time" (or "level", "msg"): that line is not JSON a log
// shipper accepts. Like logrus, the field is kept as "fields.time".
func TestJSONFormatterKeepsEveryKeyOnce(t *testing.T) {
	e := &logrus.Entry{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Level: logrus.InfoLevel, Message: "the message",
		Data: logrus.Fields{"time": "a field", "level": 7, "msg": "another", "fields.msg": "taken", "upstream": "api"},
	}
	got, err := jsonFormatter{}.Format(e)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(got))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", got)
	}
	seen := map[string]int{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatalf("%v in %s", err, got)
		}
		seen[key.(string)]++
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v in %s", err, got)
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%q written %d times: %s", k, n, got)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	if m["time"] != "2026-01-02T03:04:05Z" || m["level"] != "info" || m["msg"] != "the message" ||
		m["fields.time"] != "a field" || m["fields.level"] != 7.0 || m["upstream"] != "api" || len(m) != 8 {
		t.Errorf("the entry's own keys or the fields are lost: %s", got)
	}
}
