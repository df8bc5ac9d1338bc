package integration

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: a client
// going away, a shutdown, a cut-off body must leave nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
