package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"kintogo/internal/config"
	"kintogo/internal/kerr"
)

// endOfService is Kinto's `eos` settings: before the date, every answer
// carries a soft-eol Alert; from it on, every request (the root, the
// heartbeats, pre-flights and batches included; a batch's sub-requests
// are not checked again) gets 410, errno 202, with a hard-eol Alert.
type endOfService struct {
	date       time.Time
	soft, hard []string // the Alert headers
}

// eosLayouts are the forms of dates the eos setting takes (Kinto parses
// it with dateparser, which takes these and many more): without a zone,
// the server's local time, as Kinto compares it.
var eosLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

func parseEndOfService(s *config.Settings) (*endOfService, error) {
	raw := strings.TrimSpace(s.String("eos"))
	if raw == "" {
		return nil, nil
	}
	var date time.Time
	var err error
	for _, layout := range eosLayouts {
		if date, err = time.ParseInLocation(layout, raw, time.Local); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("eos: %q is not a date (2027-06-30, or 2027-06-30T12:00:00Z)", raw)
	}
	var message any // null when unset, as Kinto's
	if m := s.String("eos_message"); m != "" {
		message = m
	}
	url := s.String("eos_url")
	if url == "" {
		url = s.String("project_docs")
	}
	alert := func(code string) []string {
		b, _ := json.Marshal(struct {
			Code    string `json:"code"`
			Message any    `json:"message"`
			URL     string `json:"url"`
		}{code, message, url})
		return []string{string(b)}
	}
	return &endOfService{date: date, soft: alert("soft-eol"), hard: alert("hard-eol")}, nil
}

// check sets the Alert of a request answered before the end of service
// and reports false, or answers the 410 after it and reports true.
func (e *endOfService) check(s *Server, w http.ResponseWriter, r *http.Request, now time.Time) bool {
	if now.Before(e.date) {
		w.Header()["Alert"] = e.soft
		return false
	}
	h := w.Header()
	h["Alert"] = e.hard
	// The CORS headers of every answer (serve set them) stay: a page
	// can read the 410 and its Alert.
	h.Set("Access-Control-Expose-Headers", strings.Join(exposeBase, ", "))
	s.renderError(w, r, kerr.E(kerr.Gone, ""))
	return true
}
