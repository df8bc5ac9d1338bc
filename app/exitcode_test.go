package app

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// exit is the one place a command's error becomes the exit code, and is
// written unless it was already: a refusal is 2 wherever it sits in the
// chain, every other error 1.
func TestExit(t *testing.T) {
	failed := errors.New("authproxy health: connection refused")
	for _, tt := range []struct {
		name    string
		err     error
		code    int
		written string
	}{
		{"nil", nil, 0, ""},
		{"a failure", failed, 1, failed.Error() + "\n"},
		{"a refusal", refusef("authproxy ca: unknown action %q", "make"), 2, "authproxy ca: unknown action \"make\"\n"},
		{"a refusal, wrapped", fmt.Errorf("context: %w", refuse(failed)), 2, "context: " + failed.Error() + "\n"},
		{"a refusal of nil", refuse(nil), 0, ""},
		{"a failure said already", said(failed), 1, ""},
		{"a refusal said already", said(refuse(failed)), 2, ""},
		{"said already, then wrapped", fmt.Errorf("context: %w", said(failed)), 1, ""},
		{"said of nil", said(nil), 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			if code := exit(&w, tt.err); code != tt.code || w.String() != tt.written {
				t.Errorf("exit(%v) = %d, wrote %q; want %d, %q", tt.err, code, w.String(), tt.code, tt.written)
			}
			if code := exitCode(tt.err); code != tt.code {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, code, tt.code)
			}
		})
	}
}
