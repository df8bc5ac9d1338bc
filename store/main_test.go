package store

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: a closed
// Redis store must leave no subscription or connection running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
