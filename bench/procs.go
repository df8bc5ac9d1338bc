package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proxyProc is one proxy under test, running as a process of its own so
// that its CPU, allocations and memory can be read apart from the load
// generator's and the upstream's.
type proxyProc struct {
	name    string
	addr    string // host:port the load goes to
	metrics string // a Prometheus endpoint with Go's allocation counters; "" for nginx
	pprof   string // base URL of net/http/pprof; only authproxy in -profile mode
	pids    []int  // whose CPU and RSS count: the process, and nginx's workers
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
}

// startProc starts a proxy's process with its output going to out.
func startProc(name, path string, args, env []string, out *os.File) (*proxyProc, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proxyProc{name: name, cmd: cmd, pids: []int{cmd.Process.Pid}, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the process to finish, and kills it if it has not within 10s.
func (p *proxyProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitReady waits until a GET through the proxy answers 200 (for
// authproxy: it has its token) and its metrics answer.
func (p *proxyProc) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	urls := []string{"http://" + p.addr + "/size/1"}
	if p.metrics != "" {
		urls = append(urls, p.metrics)
	}
	for _, u := range urls {
		for {
			resp, err := client.Get(u)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited (%v) before answering %s", p.name, p.cmd.ProcessState, u)
			case <-ctx.Done():
				return fmt.Errorf("%s did not answer %s with 200 within %s (last: %v)", p.name, u, timeout, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// freeAddr finds a loopback port nobody listens on. The port is released
// before the proxy takes it; on a loopback-only machine nothing else
// takes it in between.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// procStat is a process's CPU time in clock ticks (utime+stime, fields
// 14 and 15 of /proc/PID/stat, every thread included) and its parent.
func procStat(pid int) (ticks int64, ppid int, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, ppid, errors.Join(err1, err2)
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times. It is 100 on
// every Linux architecture Go supports (getconf CLK_TCK).
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU the processes have used so far.
func cpuTime(pids []int) (time.Duration, error) {
	var total int64
	for _, pid := range pids {
		t, _, err := procStat(pid)
		if err != nil {
			return 0, err
		}
		total += t
	}
	return time.Duration(total) * clockTick, nil
}

// children lists the processes whose parent is ppid (nginx's workers).
func children(ppid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, parent, err := procStat(pid); err == nil && parent == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// resetPeakRSS starts each process's VmHWM afresh from its current RSS
// (Linux 4.0+), so that the peak read after a measurement is that
// measurement's. A kernel without it leaves the peak since start.
func resetPeakRSS(pids []int) {
	for _, pid := range pids {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

// peakRSS sums VmHWM over the processes. For nginx, pages its master and
// workers share are counted once in each.
func peakRSS(pids []int) int64 { return sumStatus(pids, "VmHWM:") }

// sumStatus sums a size field of /proc/PID/status (in kB there) over the
// processes, in bytes; a process gone is counted as 0.
func sumStatus(pids []int, field string) int64 {
	var total int64
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
				kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// heapCounters are a Go process's allocation counters so far.
type heapCounters struct {
	objects, bytes float64 // go_memstats_mallocs_total, go_memstats_alloc_bytes_total
}

func (a heapCounters) minus(b heapCounters) heapCounters {
	return heapCounters{a.objects - b.objects, a.bytes - b.bytes}
}

// readHeapCounters reads the allocation counters from a Prometheus
// endpoint serving Go's collector.
func readHeapCounters(client *http.Client, url string) (heapCounters, error) {
	var c heapCounters
	resp, err := client.Get(url)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for name, into := range map[string]*float64{"go_memstats_mallocs_total ": &c.objects, "go_memstats_alloc_bytes_total ": &c.bytes} {
			if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
				if *into, err = strconv.ParseFloat(strings.TrimSpace(rest), 64); err != nil {
					return c, err
				}
				found++
			}
		}
	}
	if found != 2 {
		return c, fmt.Errorf("%s: no go_memstats_mallocs_total or go_memstats_alloc_bytes_total", url)
	}
	return c, nil
}

// goBuild builds pkg into dir and returns the binary's path.
func goBuild(dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}
