package pki

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxKeyFileSize bounds what ReadFile reads: a PEM key is a few KiB, and
// a wrong path (a log, a device) must not be read whole into memory.
const maxKeyFileSize = 1 << 20

// ReadFile reads a key, certificate or token file: a regular file of at
// most 1 MiB. Anything else is refused before it is opened: opening a
// named pipe blocks until a writer comes, beyond any timeout, and a
// device may never end. Its errors are os's (a *fs.PathError naming the
// path) or say what is wrong with the file without naming it.
func ReadFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		if info.IsDir() {
			return nil, errors.New("is a directory")
		}
		return nil, fmt.Errorf("not a regular file (%s)", FileKind(info.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileSize {
		clear(b)
		return nil, fmt.Errorf("larger than %d bytes, too large for a key, certificate or token", maxKeyFileSize)
	}
	return b, nil
}

// FileKind names the kind of a file that is not regular, in the words
// the errors of pki and config use: "a named pipe", "a socket", "a
// device", or the mode's type letters.
func FileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return m.Type().String()
	}
}

// unwrapPath drops the *PathError wrapper whose message repeats the path
// the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
