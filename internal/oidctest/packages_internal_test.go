package oidctest

import "testing"

func TestNodeSupported(t *testing.T) {
	for v, want := range map[string]bool{
		"v18.20.4": false, "v20.18.9": false, "v20.19.0": true, "v20.20.2": true,
		"v21.7.0": false, "v22.11.0": false, "v22.12.0": true, "v24.1.0": true, "garbage": false,
	} {
		if got := nodeSupported(v); got != want {
			t.Errorf("nodeSupported(%q) = %v, want %v", v, got, want)
		}
	}
}
