package config

import (
	"fmt"
	"testing"
	"time"
)

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "1MiB": 1 << 20, "512 KiB": 512 << 10, "2MB": 2e6, "1gib": 1 << 30,
		"1TiB": 1 << 40, "1TB": 1e12, "1024GiB": 1 << 40, "1099511627776": 1 << 40} {
		var s size
		if err := s.UnmarshalText([]byte(in)); err != nil || int64(s) != want {
			t.Errorf("%q: %d %v", in, s, err)
		}
	}
	// The limit the error names is the largest size accepted.
	for _, in := range []string{"2TiB", "2TB", "1025GiB", "1099511627777", "99999999999999999999"} {
		var s size
		if err := s.UnmarshalText([]byte(in)); err == nil || err.Error() != fmt.Sprintf("%q is too large; write at most 1TiB", in) {
			t.Errorf("%q: %d %v", in, s, err)
		}
	}
	var s size
	if err := s.UnmarshalText([]byte("lots")); err == nil || err.Error() != `"lots" is not a size; write e.g. 1MiB, 512KiB or 0` {
		t.Errorf("lots: %v", err)
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "0s": 0, "30s": 30 * time.Second, "1h10m": 70 * time.Minute, "500ms": 500 * time.Millisecond} {
		var d duration
		if err := d.UnmarshalText([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("%q: %v %v", in, time.Duration(d), err)
		}
	}
	for _, in := range []string{"10", "soon", "-5s", ""} {
		var d duration
		if err := d.UnmarshalText([]byte(in)); err == nil || err.Error() != fmt.Sprintf("%q is not a duration; write it with a unit, like 30s, 10m or 1h", in) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// A key left unset gets its default; one written, even as 0, does not.
func TestUnsetUnitsTakeTheirDefault(t *testing.T) {
	var unsetD *duration
	var unsetS *size
	zeroD, zeroS := duration(0), size(0)
	if unsetD.or(time.Minute) != time.Minute || unsetS.or(7) != 7 || zeroD.or(time.Minute) != 0 || zeroS.or(7) != 0 {
		t.Error("or does not tell an unset key from a zero")
	}
}
