// Package filekind names what a path is when it is not the regular file
// a config key asks for, in the words auth's and config's errors use.
// Both refuse such files before opening them: opening a named pipe blocks
// until a writer comes, and a device may never end.
package filekind

import "io/fs"

// Of names the kind of a file that is not regular: "a named pipe", "a
// socket", "a device", or the mode's type letters.
func Of(m fs.FileMode) string {
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
