//go:build !linux

package main

import "syscall"

// dieWithParent has nothing to ask for outside Linux; the bench reads
// /proc and so measures only on Linux anyway.
func dieWithParent() *syscall.SysProcAttr { return nil }
