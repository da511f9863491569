package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
)

// errorBody is Kinto's error JSON.
type errorBody struct {
	Code    int    `json:"code"`
	Errno   int    `json:"errno"`
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
	Info    string `json:"info,omitempty"`
	Details any    `json:"details,omitempty"`
}

// mapping is the one place where kinds become statuses and errnos.
var mapping = map[kerr.Kind]struct {
	status, errno int
	message       string
}{
	kerr.Invalid:              {400, 107, ""},
	kerr.NotFound:             {404, 110, ""},
	kerr.MissingResource:      {404, 111, "The resource you are looking for could not be found."},
	kerr.VersionNotAvailable:  {404, 116, "The requested API version is not available on this server."},
	kerr.Unauthenticated:      {401, 104, "Please authenticate yourself to use this endpoint."},
	kerr.Forbidden:            {403, 121, "This user cannot access this resource."},
	kerr.MethodNotAllowed:     {405, 115, "Method not allowed on this endpoint."},
	kerr.NotAcceptable:        {406, 107, ""},
	kerr.PreconditionFailed:   {412, 114, "Resource was modified meanwhile"},
	kerr.UnsupportedMediaType: {415, 107, ""},
	kerr.Conflict:             {409, 122, "Integrity constraint violated, please retry."},
	kerr.Unavailable:          {503, 201, "Service temporary unavailable due to overloading or maintenance, please retry later."},
	kerr.TooLarge:             {413, 113, "Request body too large."},
	kerr.Gone:                 {410, 202, "The service you are trying to connect no longer exists at this location."},
	kerr.Other:                {500, 999, "A programmatic error occurred, developers have been informed."},
}

// renderError writes err as Kinto's JSON error, with the headers that go
// with its status (WWW-Authenticate, Retry-After).
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var ke *kerr.Error
	switch {
	case storage.IsRetryable(err):
		// A conflict between transactions that was not retried (a read):
		// the client may simply try again.
		ke = &kerr.Error{Kind: kerr.Unavailable, Err: err}
	case !errors.As(err, &ke):
		ke = &kerr.Error{Kind: kerr.Other, Err: err}
	}
	if ke == errTooManyHeld {
		// Its connection would go on holding a file descriptor.
		w.Header().Set("Connection", "close")
	}
	if ke.Kind == kerr.NotModified {
		// 304: the ETag the client has, and nothing else.
		setTimestamp(w, ke.Timestamp)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	m, ok := mapping[ke.Kind]
	if !ok {
		m = mapping[kerr.Other]
	}
	body := errorBody{Code: m.status, Errno: m.errno, Error: http.StatusText(m.status), Details: ke.Details}
	switch ke.Kind {
	case kerr.Invalid, kerr.NotAcceptable, kerr.UnsupportedMediaType:
		body.Error = "Invalid parameters"
		if details, ok := ke.Details.([]kerr.Detail); ok && len(details) > 0 {
			sort.SliceStable(details, func(i, j int) bool { return nameOf(details[i]) < nameOf(details[j]) })
			body.Message = validationMessage(details[0])
		}
		if ke.Message != "" {
			body.Message = ke.Message
			if ke.Details == nil {
				body.Error = http.StatusText(m.status)
			}
		}
	case kerr.Other:
		body.Message = m.message
		body.Info = "https://github.com/Kinto/kinto/issues/"
		body.Details = nil
		s.log.ErrorContext(r.Context(), "unexpected error", "method", r.Method, "path", r.URL.Path, "err", err)
	case kerr.Unavailable, kerr.Conflict:
		body.Message = m.message
		if ke.Message != "" {
			body.Message = ke.Message
		}
		w.Header().Set("Retry-After", strconv.FormatInt(s.cfg.HTTP.RetryAfter, 10))
		if ke.Kind == kerr.Unavailable && r.Context().Err() == nil && ke != errTooManyHeld {
			// (A request whose client went away is no backend failure.)
			s.log.WarnContext(r.Context(), "backend unavailable", "path", r.URL.Path, "err", err)
		}
	case kerr.NotFound:
		// Kinto sends no message with an object's 404.
	case kerr.MissingResource:
		if ke.Details == nil {
			body.Message = m.message
		}
	default:
		body.Message = m.message
		if ke.Message != "" {
			body.Message = ke.Message
		}
	}
	if ke.Errno != 0 {
		body.Errno = ke.Errno
	}
	if ke.Title != "" {
		body.Error, body.Message = ke.Title, ke.Message
	}
	if ke.Kind == kerr.Unauthenticated && ke.Title == "" {
		for _, c := range s.challenges {
			w.Header().Add("WWW-Authenticate", c)
		}
	}
	if ke.Kind == kerr.MethodNotAllowed {
		w.Header().Del("Access-Control-Expose-Headers")
	}
	if ke.Kind == kerr.PreconditionFailed && ke.Timestamp != 0 {
		// A 412 carries the ETag it was compared with.
		setTimestamp(w, ke.Timestamp)
	} else if ke.Kind != kerr.PreconditionFailed {
		w.Header().Del("ETag")
		w.Header().Del("Last-Modified")
	}
	w.Header().Del("Cache-Control")
	w.Header().Del("Expires")
	w.Header().Del("Pragma")
	w.Header().Del("Next-Page")
	observeErrno(w, body.Errno)
	s.writeJSON(w, m.status, body)
}

func nameOf(d kerr.Detail) string {
	if d.Name == nil {
		return ""
	}
	return *d.Name
}

// validationMessage is Kinto's message rule (kinto-protocol.md §8.3).
func validationMessage(d kerr.Detail) string {
	if d.Name == nil {
		return d.Location + ": " + d.Description
	}
	if strings.Contains(d.Description, *d.Name) {
		return d.Description
	}
	return *d.Name + " in " + d.Location + ": " + d.Description
}

// logger is the server's logger, never nil.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
