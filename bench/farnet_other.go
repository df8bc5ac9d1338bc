//go:build !linux

package main

import (
	"errors"
	"os/exec"
	"time"
)

type farNet struct{ ns, hostIf, hostAddr, nsAddr string }

func newFarNet(time.Duration) (*farNet, error) {
	return nil, errors.New("network namespaces and tc netem are Linux's")
}

func (f *farNet) command(name string, args ...string) *exec.Cmd { return nil }
func (f *farNet) close()                                        {}
