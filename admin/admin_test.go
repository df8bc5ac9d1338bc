package admin

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// The handler is served by many connections at once from its first
// request on; run with -race.
func TestConcurrentFirstRequests(t *testing.T) {
	h := &Handler{Upstreams: func() []Upstream { return nil }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("/healthz: %d", rec.Code)
			}
		})
	}
	wg.Wait()
}
