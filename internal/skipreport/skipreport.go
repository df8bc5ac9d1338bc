// Package skipreport counts the tests skipped because something they need
// is not installed (redis-server, Node.js), and says so in one line at the
// end of the package's run, also without -v.
//
// Without -v, `go test ./...` shows nothing a passing package prints, not
// even from TestMain: a user could not tell that the shared-store or the
// OAuth-server tests never ran. So the line goes to the go command's own
// stderr when the package's output is being held back (see Report).
//
// A package whose tests can skip this way wraps its TestMain's m:
//
//	func TestMain(m *testing.M) { os.Exit(skipreport.Wrap(m).Run()) }
//
// or, with goleak, goleak.VerifyTestMain(skipreport.Wrap(m)).
package skipreport

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	reasons = map[string]int{} // reason -> tests skipped for it
)

// Skip records that t is skipped for reason (what is missing and how to
// install it) and skips it with detail, the full message.
func Skip(t testing.TB, reason, detail string) {
	t.Helper()
	mu.Lock()
	reasons[reason]++
	mu.Unlock()
	t.Skip(detail)
}

// Summary is the one line that says how many tests were skipped and why,
// or "" if none was. pkg names the package.
func Summary(pkg string) string {
	mu.Lock()
	defer mu.Unlock()
	return summary(pkg, reasons)
}

func summary(pkg string, reasons map[string]int) string {
	if len(reasons) == 0 {
		return ""
	}
	total := 0
	var parts []string
	for r, n := range reasons {
		total += n
		parts = append(parts, fmt.Sprintf("%d because %s", n, r))
	}
	slices.Sort(parts)
	tests := "tests"
	if total == 1 {
		tests = "test"
	}
	return fmt.Sprintf("%s: skipped %d %s: %s\n", pkg, total, tests, strings.Join(parts, "; "))
}

type wrapped struct{ m *testing.M }

// Wrap returns m, whose Run also reports the skipped tests once they ran;
// goleak.VerifyTestMain takes it as it takes m.
func Wrap(m *testing.M) interface{ Run() int } { return wrapped{m} }

func (w wrapped) Run() int {
	code := w.m.Run()
	Report(strings.TrimSuffix(filepath.Base(os.Args[0]), ".test"))
	return code
}

// Report writes the summary, if any, where the user sees it: see output.
func Report(pkg string) {
	if line := Summary(pkg); line != "" {
		out, closeOut := output()
		defer closeOut()
		io.WriteString(out, line)
	}
}
