package skipreport

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	for _, c := range []struct {
		reasons map[string]int
		want    string
	}{
		{nil, ""},
		{map[string]int{"redis-server is not installed (apt-get install redis-server)": 1},
			"store: skipped 1 test: 1 because redis-server is not installed (apt-get install redis-server)\n"},
		{map[string]int{"redis-server is not installed": 7, "node is not installed": 23},
			"store: skipped 30 tests: 23 because node is not installed; 7 because redis-server is not installed\n"},
	} {
		if got := summary("store", c.reasons); got != c.want {
			t.Errorf("summary(%v) = %q, want %q", c.reasons, got, c.want)
		}
	}
}

// pathWithout returns a PATH of one directory holding a link to every
// program on PATH except those whose name starts with prefix.
func pathWithout(t *testing.T, prefix string) string {
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())) // the first on PATH wins
		}
	}
	return dir
}

// goTest runs `go test ARGS ./testdata/needsredis` as a user would, with
// no redis-server on PATH, its stdout and stderr to the files or pipes
// that setup gives.
func goTest(t *testing.T, setup func(cmd *exec.Cmd), args ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command(goBin, append(append([]string{"test", "-count=1"}, args...), "./testdata/needsredis")...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "AUTHPROXY_REQUIRE_REDIS=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+pathWithout(t, "redis-"))
	setup(cmd)
	if err := cmd.Run(); err != nil {
		t.Fatalf("go test: %v", err)
	}
}

const wantLine = "needsredis: skipped 2 tests: 2 because redis-server is not installed (apt-get install redis-server)\n"

// Without -v, the go command prints nothing of a passing package but its
// "ok" line; the summary must reach the user anyway, once, and leave the
// go command's own lines whole.
func TestTheSummaryShowsWithoutV(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	var stdout, stderr strings.Builder
	goTest(t, func(cmd *exec.Cmd) { cmd.Stdout, cmd.Stderr = &stdout, &stderr })
	if !strings.HasPrefix(stdout.String(), "ok  \tgithub.com/authproxy/authproxy/internal/skipreport/testdata/needsredis\t") {
		t.Errorf("stdout: %q", stdout.String())
	}
	if stderr.String() != wantLine {
		t.Errorf("stderr: %q; want %q", stderr.String(), wantLine)
	}

	// With -v the binary's own output shows: the line is there once.
	stdout.Reset()
	stderr.Reset()
	goTest(t, func(cmd *exec.Cmd) { cmd.Stdout, cmd.Stderr = &stdout, &stderr }, "-v")
	if n := strings.Count(stdout.String()+stderr.String(), wantLine); n != 1 {
		t.Errorf("with -v the summary is there %d times:\n%s\n%s", n, stdout.String(), stderr.String())
	}
}

// `go test ./... >log 2>&1`: the go command writes to the file from an
// offset of its own, so a line added at the end would be written over.
// The go command's lines must stay whole; with `>>`, the summary is there.
func TestTheSummaryNeverGarblesARedirectedLog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	for _, flag := range []int{os.O_TRUNC, os.O_APPEND} {
		log := filepath.Join(t.TempDir(), "log")
		f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|flag, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		goTest(t, func(cmd *exec.Cmd) { cmd.Stdout, cmd.Stderr = f, f })
		f.Close()
		out, _ := os.ReadFile(log)
		lines := strings.SplitAfter(string(out), "\n")
		ok := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "ok  \tgithub.com/") })
		if ok < 0 {
			t.Errorf("flag %o: no ok line in %q", flag, out)
		}
		if flag == os.O_APPEND && !slices.Contains(lines, wantLine) {
			t.Errorf("appending: no summary in %q", out)
		}
		for _, l := range lines {
			if l != "" && l != wantLine && !strings.HasPrefix(l, "ok  \t") {
				t.Errorf("flag %o: a garbled line %q in %q", flag, l, out)
			}
		}
	}
}

// Every package whose tests can skip for a missing redis-server or
// Node.js wraps its TestMain with skipreport, or its skips go unsaid.
func TestEveryPackageThatCanSkipReports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/authproxy/authproxy/"
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.Contains(f[0], "/testdata/") {
			continue
		}
		imports := f[1:]
		if !slices.Contains(imports, mod+"internal/redistest") && !slices.Contains(imports, mod+"internal/oidctest") {
			continue
		}
		if !slices.Contains(imports, mod+"internal/skipreport") {
			t.Errorf("%s: its tests can skip for want of redis-server or Node.js, and no TestMain wraps m with skipreport.Wrap", f[0])
		}
	}
}
