package skipreport

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// output is where the summary goes. The go command runs a test binary
// with its output in a pipe of its own and, without -v, drops it when the
// package passes; with -v, or testing the current directory, it hands the
// binary its own stdout instead. So: if this process's stdout is the
// parent's, stdout; otherwise the parent's stderr, opened through /proc,
// where the user reads the go command's own lines. Not when that is a
// regular file opened without O_APPEND (`go test ./... >log 2>&1`): the go
// command would write over the line from its own offset. Then, and where
// there is no /proc, stdout, shown with -v.
func output() (io.Writer, func()) {
	parent := fmt.Sprintf("/proc/%d/fd/", os.Getppid())
	if sameFile(os.Stdout, parent+"1") {
		return os.Stdout, func() {}
	}
	if !safeToAppend(parent+"2", fmt.Sprintf("/proc/%d/fdinfo/2", os.Getppid())) {
		return os.Stdout, func() {}
	}
	f, err := os.OpenFile(parent+"2", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return os.Stdout, func() {}
	}
	return f, func() { f.Close() }
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// safeToAppend says whether a line written at the end of path, the
// parent's descriptor, cannot be overwritten by the parent's next write:
// a terminal, a pipe or a socket, or a file the parent appends to.
func safeToAppend(path, fdinfo string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if !st.Mode().IsRegular() {
		return true
	}
	info, err := os.ReadFile(fdinfo)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(l, "flags:"); ok {
			var flags int
			fmt.Sscanf(strings.TrimSpace(v), "%o", &flags)
			return flags&syscall.O_APPEND != 0
		}
	}
	return false
}
