package integration

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/authproxy/authproxy/internal/skipreport"
)

// TestMain fails the run if any goroutine outlives the tests: a client
// going away, a shutdown, a cut-off body must leave nothing running.
// It also says in one line, even without -v, how many tests were skipped
// for a missing redis-server or Node.js, and why (skipreport).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(skipreport.Wrap(m))
}
