package app

import (
	"io"
	"log/slog"

	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/mozlog"
)

// NewLogger returns kintogo's logger, writing to w in the format the
// log_format setting names: text (slog's text lines, the default) or json
// (Mozilla's JSON lines, as Kinto's kinto.core.JsonLogFormatter writes
// them, with project_name as their Logger and the request id of the
// request a line is written for). With json, the server also writes one
// request.summary line per request (httpapi.New).
func NewLogger(s *config.Settings, w io.Writer) *slog.Logger {
	if s.String("log_format") == "json" {
		return slog.New(mozlog.New(w, mozlog.Options{
			Logger: s.String("project_name"), Type: "kintogo", RequestID: httpapi.RequestID,
		}))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
