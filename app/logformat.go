package app

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// jsonFormatter writes what logrus.JSONFormatter writes (one object a
// line, keys sorted, "level", "msg" and "time" among the fields) without
// its per-line map copy and reflection: the access log is one line per
// request, and encoding it was the proxy's largest cost under load.
type jsonFormatter struct{}

var _ logrus.Formatter = jsonFormatter{}

func (jsonFormatter) Format(e *logrus.Entry) ([]byte, error) {
	b := e.Buffer
	if b == nil {
		b = &bytes.Buffer{}
	}
	keys := make([]string, 0, len(e.Data)+3)
	// A field that would take the name of a key the entry writes itself
	// is written as "fields.<name>", as logrus does, so that no key is
	// written twice; renamed maps the written name back to the field.
	var renamed map[string]string
	for k := range e.Data {
		out := k
		for out == logrus.FieldKeyLevel || out == logrus.FieldKeyMsg || out == logrus.FieldKeyTime || out != k && hasField(e.Data, out) {
			out = "fields." + out
		}
		if out != k {
			if renamed == nil {
				renamed = map[string]string{}
			}
			renamed[out] = k
		}
		keys = append(keys, out)
	}
	keys = append(keys, logrus.FieldKeyLevel, logrus.FieldKeyMsg, logrus.FieldKeyTime)
	sort.Strings(keys)
	buf := b.AvailableBuffer()
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, k)
		buf = append(buf, ':')
		switch k {
		case logrus.FieldKeyLevel:
			buf = appendJSONString(buf, e.Level.String())
			continue
		case logrus.FieldKeyMsg:
			buf = appendJSONString(buf, e.Message)
			continue
		case logrus.FieldKeyTime:
			buf = appendJSONString(buf, e.Time.Format(time.RFC3339))
			continue
		}
		if field, ok := renamed[k]; ok {
			k = field
		}
		buf = appendJSONValue(buf, e.Data[k])
	}
	buf = append(buf, '}', '\n')
	b.Write(buf)
	return b.Bytes(), nil
}

func hasField(data logrus.Fields, k string) bool {
	_, ok := data[k]
	return ok
}

func appendJSONValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendJSONString(buf, x)
	case int:
		return strconv.AppendInt(buf, int64(x), 10)
	case int64:
		return strconv.AppendInt(buf, x, 10)
	case bool:
		return strconv.AppendBool(buf, x)
	case float64:
		return appendJSONFloat(buf, x)
	case error:
		return appendJSONString(buf, x.Error())
	default:
		j, err := json.Marshal(x)
		if err != nil {
			return appendJSONString(buf, err.Error())
		}
		return append(buf, j...)
	}
}

func appendJSONFloat(buf []byte, x float64) []byte {
	if x != x || x > 1e300 || x < -1e300 { // NaN, ±Inf: not JSON
		return append(buf, "null"...)
	}
	return strconv.AppendFloat(buf, x, 'f', -1, 64)
}

// appendJSONString quotes s as JSON does, invalid UTF-8 becoming U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}
