package app

import (
	"errors"
	"fmt"
	"io"
)

// Every command returns an error, and exit is the one place that turns it
// into the exit code, and writes it out unless that was done already:
//
//	nil                          0: done, or help that was asked for
//	a refusal (refuse, refusef)  2: a mistake in what was asked, the
//	                                command line or the config, or a name
//	                                the config does not have
//	any other error              1: a failure of what was tried
//
// A message a command wrote itself (serve's, through the log in its
// format; a usage error's, with the usage) is marked with said, so that
// it is written once.

// refusal marks a mistake in what was asked, not a failure of what was
// tried: exit 2.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// refuse marks err as a refusal; nil stays nil.
func refuse(err error) error {
	if err == nil {
		return nil
	}
	return refusal{err}
}

// refusef is a refusal saying what fmt.Errorf would.
func refusef(format string, args ...any) error { return refusal{fmt.Errorf(format, args...)} }

// saidError is an error whose message was written where it belongs
// already; exit writes nothing more of it.
type saidError struct{ err error }

func (s saidError) Error() string { return s.err.Error() }
func (s saidError) Unwrap() error { return s.err }

// said marks err as written already; nil stays nil.
func said(err error) error {
	if err == nil {
		return nil
	}
	return saidError{err}
}

// exitCode is the exit code for a command's error: 0, 1 or 2 as above.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.As(err, new(refusal)):
		return 2
	default:
		return 1
	}
}

// exit writes err to stderr, one line, unless it was said already, and
// returns its exit code.
func exit(stderr io.Writer, err error) int {
	if err != nil && !errors.As(err, new(saidError)) {
		fmt.Fprintln(stderr, err)
	}
	return exitCode(err)
}
