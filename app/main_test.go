package app

import (
	"os"
	"testing"

	"github.com/authproxy/authproxy/internal/skipreport"
)

// TestMain says in one line, also without -v, how many tests were skipped
// for want of redis-server (login's store test) and why.
func TestMain(m *testing.M) { os.Exit(skipreport.Wrap(m).Run()) }
