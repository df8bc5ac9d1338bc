package main

import "syscall"

// dieWithParent makes a proxy's process get SIGKILL if the bench dies
// without stopping it, so that no proxy outlives a killed run.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
