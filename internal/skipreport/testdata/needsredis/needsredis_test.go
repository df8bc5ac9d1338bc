// Package needsredis is run by skipreport's tests with no redis-server
// on PATH: its two tests skip, and its TestMain must say so in one line.
package needsredis

import (
	"os"
	"testing"

	"github.com/authproxy/authproxy/internal/redistest"
	"github.com/authproxy/authproxy/internal/skipreport"
)

func TestMain(m *testing.M) { os.Exit(skipreport.Wrap(m).Run()) }

func TestOne(t *testing.T) { redistest.Start(t) }

func TestTwo(t *testing.T) { redistest.Start(t) }

func TestRuns(t *testing.T) {}
