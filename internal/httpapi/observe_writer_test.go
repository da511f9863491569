package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The observed writer keeps what http.ResponseController reaches on the
// connection's writer (deadlines, flushes), and counts what goes
// through.
func TestObservedWriterKeepsTheConnectionsMethods(t *testing.T) {
	var o *observed
	errs := make(chan error, 4)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o = &observed{w: w}
		rc := http.NewResponseController(o)
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
		o.WriteHeader(http.StatusEarlyHints) // informational: not the status
		o.Write([]byte("part"))
		errs <- rc.Flush()
		if _, ok := any(o).(http.Flusher); !ok {
			errs <- http.ErrNotSupported
		}
		o.Write([]byte("s"))
		errs <- nil
	}))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("through the observed writer: %v", err)
		}
	}
	if resp.StatusCode != 200 || string(body) != "parts" || o.sum.Status != 200 || o.sum.Bytes != 5 {
		t.Errorf("status %d %d, body %q, %d bytes", resp.StatusCode, o.sum.Status, body, o.sum.Bytes)
	}
}
