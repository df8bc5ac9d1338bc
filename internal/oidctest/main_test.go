package oidctest

import (
	"os"
	"testing"

	"github.com/authproxy/authproxy/internal/skipreport"
)

// TestMain says in one line, also without -v, how many tests were skipped
// for want of Node.js or npm, and why.
func TestMain(m *testing.M) { os.Exit(skipreport.Wrap(m).Run()) }
