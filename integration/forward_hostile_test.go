package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// rawStatus sends raw to addr and reads the status of the answer.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, raw)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.Fields(raw)[0]})
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Clients naming hundreds of hosts of their choosing, through the binary:
// each is refused and nothing is sent anywhere; the metrics' host label,
// /status and the access log stay bounded, and a Proxy-Authorization
// value sent along is in none of them. The proxy's own listener still
// refuses absolute form and CONNECT.
func TestForwardProxyHostileHostsStayBounded(t *testing.T) {
	fe := startForwardProxy(t, "")
	const secret = "cHJveHktYXV0aC1zZWNyZXQtdmFsdWU"
	for i := range 200 {
		host := fmt.Sprintf("h%d.evil.example", i)
		for _, raw := range []string{
			"CONNECT " + host + ":443 HTTP/1.1\r\nHost: " + host + ":443\r\nProxy-Authorization: Basic " + secret + "\r\n\r\n",
			"GET http://" + host + "/x HTTP/1.1\r\nHost: " + host + "\r\nProxy-Authorization: Basic " + secret + "\r\n\r\n",
		} {
			if status := rawStatus(t, fe.forward, raw); status != 403 {
				t.Fatalf("%q: %d, want 403", raw, status)
			}
		}
	}
	for _, raw := range []string{
		"GET http://" + apiName + "/api/3/me HTTP/1.1\r\nHost: " + apiName + "\r\n\r\n",
		"CONNECT " + apiName + ":443 HTTP/1.1\r\nHost: " + apiName + ":443\r\n\r\n",
	} {
		if status := rawStatus(t, fe.reverse, raw); status != 400 {
			t.Errorf("the proxy's own listener: %q: %d, want 400", raw, status)
		}
	}
	if n := len(fe.api.APIRequests()); n != 0 {
		t.Errorf("the API got %d requests", n)
	}
	metrics := get(t, fe.admin+"/metrics")
	hosts := map[string]bool{}
	for _, m := range regexp.MustCompile(`authproxy_forward_requests_total\{host="([^"]*)"`).FindAllStringSubmatch(metrics, -1) {
		hosts[m[1]] = true
	}
	if len(hosts) != 1 || !hosts["other"] {
		t.Errorf("forward requests' host labels %v, want other alone", hosts)
	}
	status := get(t, fe.admin+"/status")
	for _, out := range []string{metrics, status} {
		if strings.Contains(out, "evil.example") || strings.Contains(out, secret) {
			t.Errorf("a client's host or proxy credential in:\n%s", out)
		}
	}
	if strings.Contains(fe.logs.String(), secret) {
		t.Error("the Proxy-Authorization value is in the logs")
	}
}
