package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// withRequestState is req as Handler.serve hands it on: with a request
// state in its context and its body, if any, wrapped as the client's
// (without a limit or a timeout). A test that runs the transport on its
// own sends it this.
func withRequestState(req *http.Request) (*http.Request, *requestState) {
	st := newRequestState(req.Context(), time.Now())
	req = req.WithContext(&st.ctx)
	st.wrapBody(req, nil, 0, 0)
	return req, st
}

// The transport finds the request's bodies wherever it has a body to
// keep: wrapBody makes them for every body but one of length zero, which
// ReverseProxy does not send.
func TestWrapBodyMakesTheBodiesOfEveryBodyTheTransportSees(t *testing.T) {
	for _, tt := range []struct {
		name   string
		body   io.ReadCloser
		length int64
		bodies bool
	}{
		{"none", nil, 0, false},
		{"NoBody", http.NoBody, 0, false},
		{"empty", io.NopCloser(strings.NewReader("")), 0, false},
		{"sized", io.NopCloser(strings.NewReader("body")), 4, true},
		{"chunked", io.NopCloser(strings.NewReader("body")), -1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/x", nil)
			req.Body, req.ContentLength = tt.body, tt.length
			req, st := withRequestState(req)
			if got := st.info.bodies != nil; got != tt.bodies {
				t.Fatalf("bodies made: %v, want %v", got, tt.bodies)
			}
			if tt.bodies && req.Body != &st.info.bodies.client {
				t.Errorf("the request's body is %T, not the state's clientBody", req.Body)
			}
			if stateFrom(req.Context()) != st {
				t.Error("the request's context does not hold its state")
			}
		})
	}
}

// What the transport decides is recorded in the request's state, where
// the access log reads it: a replay's outcome, and why a body was not
// kept.
func TestTransportRecordsInTheRequestsState(t *testing.T) {
	api, tokens := &rejectingAPI{}, &fakeTokens{}
	tr := newRejectingTransport(api, tokens, io.Discard, nil)
	tr.maxBody = 4
	api.revoke("t1")
	send := func(body string) *requestState {
		t.Helper()
		req, st := withRequestState(httptest.NewRequest("POST", "http://api.example/ok", strings.NewReader(body)))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return st
	}
	if st := send("body"); st.info.replay != "success" || st.info.replaySkipped() != "" {
		t.Errorf("a replayed request: replay %q, skipped %q; want success, none", st.info.replay, st.info.replaySkipped())
	}
	if st := send("a larger body"); st.info.replay != "" || st.info.replaySkipped() != skipMaxBody {
		t.Errorf("a body over max_body: replay %q, skipped %q; want none, %s", st.info.replay, st.info.replaySkipped(), skipMaxBody)
	}
}

// The forward proxy's inner server refuses a request that did not come
// through a tunnel before serve makes its state: it gives the refusal a
// state of its own, which writeError records the failure in.
func TestInnerServerRefusesARequestFromNoTunnel(t *testing.T) {
	f := NewForwardServer(func() *Handler { return nil }, ForwardLimits{})
	defer f.Close()
	w := httptest.NewRecorder()
	f.inner.Handler.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "inside a tunnel, send the path only") {
		t.Errorf("%d %s, want 400 naming the tunnel's form", w.Code, w.Body)
	}
}

// A request's state is one allocation in the 256-byte size class: a
// field that pushes it past doubles what every request costs in it.
func TestRequestStateFitsIn256Bytes(t *testing.T) {
	if size := unsafe.Sizeof(requestState{}); size > 256 {
		t.Errorf("requestState is %d bytes, want at most 256", size)
	}
}
