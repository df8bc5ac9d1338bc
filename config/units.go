package config

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The types here are the values written as text with a unit, or read
// from text as the environment sets them (onOff, ratio). They decode
// themselves (encoding.TextUnmarshaler), so the decoder reports a bad one
// under its key with an example of what to write. A file struct holds
// them as pointers: nil is a key left unset, which gets its default.

// duration is a time.Duration written with a unit: 30s, 10m, 1h.
type duration time.Duration

func (d *duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil || v < 0 {
		return valuef("%q is not a duration; write it with a unit, like 30s, 10m or 1h", text)
	}
	*d = duration(v)
	return nil
}

// or returns the duration written, or def if the key was left unset.
func (d *duration) or(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

// size is a number of bytes with an optional unit: 512KiB, 1MiB, 2MB, 0.
type size int64

var sizePattern = regexp.MustCompile(`^(?i)\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$`)

var sizeUnits = map[string]int64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20, "gb": 1e9, "gib": 1 << 30,
	"tb": 1e12, "tib": 1 << 40}

// maxSize is the largest size accepted; the error for a larger one names it.
const maxSize = 1 << 40

func (s *size) UnmarshalText(text []byte) error {
	m := sizePattern.FindStringSubmatch(string(text))
	if m == nil {
		return valuef("%q is not a size; write e.g. 1MiB, 512KiB or 0", text)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := sizeUnits[strings.ToLower(m[2])]
	if err != nil || n > maxSize/unit {
		return valuef("%q is too large; write at most 1TiB", text)
	}
	*s = size(n * unit)
	return nil
}

// or returns the size written, or def if the key was left unset.
func (s *size) or(def int64) int64 {
	if s == nil {
		return def
	}
	return int64(*s)
}

// onOff is a boolean written as text (true, false, on, off), as the
// environment can set it too.
type onOff bool

func (b *onOff) UnmarshalText(text []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(text))) {
	case "true", "on", "yes", "1":
		*b = true
	case "false", "off", "no", "0":
		*b = false
	default:
		return valuef("%q is not true or false; write true or false", text)
	}
	return nil
}

// ratio is a number from 0 to 1.
type ratio float64

func (r *ratio) UnmarshalText(text []byte) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(string(text)), 64)
	if err != nil || v < 0 || v > 1 {
		return valuef("%q is not a number from 0 to 1; write e.g. 0.1 to keep one trace in ten, or 1 for all", text)
	}
	*r = ratio(v)
	return nil
}
