//go:build !unix

package oidctest

import (
	"errors"
	"os/exec"
	"syscall"
)

// On systems without process groups the server is a single node process,
// stopped by killing it.
func setProcessGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ syscall.Signal) {
	if cmd.Process != nil {
		cmd.Process.Kill()
	}
}

func lockFile(string) (func(), error) {
	return nil, errors.New("oidctest: installing npm packages needs file locks; run " + InstallCommand)
}
