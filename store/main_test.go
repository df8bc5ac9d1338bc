package store

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/authproxy/authproxy/internal/skipreport"
)

// TestMain fails the run if a goroutine outlives the tests: a closed
// Redis store must leave no subscription or connection running.
// It also says in one line, even without -v, how many tests were skipped
// for a missing redis-server, and why (skipreport).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(skipreport.Wrap(m))
}
