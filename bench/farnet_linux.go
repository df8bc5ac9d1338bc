package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// farNet is a network namespace of the bench's own, joined to this one by
// a link that delays every packet by half the round trip each way: a far
// API that is still on this machine. Its addresses are a /30 of
// 10.231.0.0/16 that exists only between the link's two ends; nothing
// else is routed there, and the shared loopback is never delayed.
//
// The link is a pair of TUN devices, one in each namespace, with this
// process moving each IP packet from one to the other after the delay:
// tc netem on a veth pair would do the same in the kernel, but kernels
// built without CONFIG_NET_SCH_NETEM (this project's machines among them)
// have no netem. Every packet is delayed, the TCP handshake's too, so a
// new connection costs the round trips it costs against a real far API.
type farNet struct {
	ns               string // `ip netns` name
	hostIf           string // the link's end in this namespace
	hostAddr, nsAddr string // 10.231.x.y, without the prefix length
	tuns             []*os.File
}

// newFarNet makes the namespace and the delayed link. The error says why
// when it is not permitted (not root, no CAP_NET_ADMIN, no /dev/net/tun),
// so that -far can skip with it.
func newFarNet(rtt time.Duration) (*farNet, error) {
	pid := os.Getpid()
	// A /30 picked by process id, so that two runs at once do not share one.
	n := pid % (256 * 64)
	f := &farNet{
		ns:       fmt.Sprintf("apbench%d", pid),
		hostIf:   fmt.Sprintf("apb%dh", pid),
		hostAddr: fmt.Sprintf("10.231.%d.%d", n/64, n%64*4+1),
		nsAddr:   fmt.Sprintf("10.231.%d.%d", n/64, n%64*4+2),
	}
	nsIf := fmt.Sprintf("apb%dn", pid)
	if out, err := exec.Command("ip", "netns", "add", f.ns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cannot make a network namespace (run as root, with CAP_NET_ADMIN): ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	host, err := openTun(f.hostIf)
	if err != nil {
		f.close()
		return nil, err
	}
	f.tuns = append(f.tuns, host)
	far, err := openTun(nsIf)
	if err != nil {
		f.close()
		return nil, err
	}
	f.tuns = append(f.tuns, far)
	steps := [][]string{
		{"ip", "link", "set", nsIf, "netns", f.ns},
		{"ip", "addr", "add", f.hostAddr + "/30", "dev", f.hostIf},
		{"ip", "link", "set", f.hostIf, "up"},
		{"ip", "netns", "exec", f.ns, "ip", "addr", "add", f.nsAddr + "/30", "dev", nsIf},
		{"ip", "netns", "exec", f.ns, "ip", "link", "set", nsIf, "up"},
		{"ip", "netns", "exec", f.ns, "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			f.close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	go delayPackets(host, far, rtt/2)
	go delayPackets(far, host, rtt/2)
	return f, nil
}

// openTun makes a TUN device (IFF_TUN|IFF_NO_PI: whole IP packets, no
// header) that lives as long as the returned file is open.
func openTun(name string) (*os.File, error) {
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	const iffTun, iffNoPI, tunSetIff = 0x0001, 0x1000, 0x400454ca
	var ifr [40]byte // struct ifreq: the name, then the flags
	copy(ifr[:15], name)
	*(*uint16)(unsafe.Pointer(&ifr[16])) = iffTun | iffNoPI
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), tunSetIff, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, errno)
	}
	// Non-blocking, so that the runtime's poller serves reads and Close
	// ends one under way.
	return os.NewFile(uintptr(fd), name), nil
}

// delayPackets writes each packet read from `from` to `to`, delay after
// it was read, in order, until from is closed.
func delayPackets(from, to *os.File, delay time.Duration) {
	type packet struct {
		data []byte
		due  time.Time
	}
	queue := make(chan packet, 8192)
	go func() {
		for p := range queue {
			time.Sleep(time.Until(p.due))
			to.Write(p.data)
		}
	}()
	defer close(queue)
	buf := make([]byte, 1<<16)
	for {
		n, err := from.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		queue <- packet{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
	}
}

// command runs name inside the namespace.
func (f *farNet) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", f.ns, name}, args...)...)
}

// close removes the namespace and both TUN devices.
func (f *farNet) close() {
	for _, t := range f.tuns {
		t.Close()
	}
	exec.Command("ip", "netns", "del", f.ns).Run()
}
