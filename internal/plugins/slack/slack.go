// Package slack is kinto_slack (mozilla/remote-settings' kinto-slack):
// hooks in a collection's or bucket's metadata ("kinto-slack": {"hooks":
// [...]}) post a message to a Slack incoming webhook when a record or the
// collection changes, or on the signer's review events. Messages are
// posted after the commit, never holding or failing the write; a failed
// post is retried, then logged.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/plugins/notify"
	"kintogo/internal/storage"
)

// Plugin is kinto_slack.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto_slack" }

const key = "kinto-slack"

// message is what a hook posts: Slack's incoming webhook payload.
type message struct {
	Channel any    `json:"channel"` // null when the hook names none
	Text    string `json:"text"`
}

type plugin struct {
	h        *httpapi.Server
	log      *slog.Logger
	debugDir string
	client   *http.Client
}

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	p := &plugin{h: h, log: h.Logger(), client: &http.Client{Timeout: 5 * time.Second}}
	p.debugDir, _ = h.Settings().LookupEnv("slack.debug_dir")
	h.Capability("slack", map[string]any{"description": "Slack notifications plugin for Kinto",
		"url": "https://github.com/mozilla/remote-settings/blob/main/kinto-slack/"})
	notify.Check(h, key, validate)
	q := notify.NewQueue("kinto_slack", p.log, 1000, 3, []time.Duration{time.Second, 5 * time.Second}, p.post)
	notify.Watch(h, key, p.build, q)
	return nil
}

// validate refuses hooks without a template on buckets and collections.
func validate(conf any, _ string) error {
	m, _ := conf.(map[string]any)
	hooks, _ := m["hooks"].([]any)
	for _, h := range hooks {
		if m, ok := h.(map[string]any); !ok || m["template"] == nil {
			return kerr.InvalidParam("body", kerr.Name(key), "Hook is missing 'template'")
		}
	}
	return nil
}

// build renders the hooks that select the event; a template that does
// not render (a brace missing, a nested key missing) is logged and
// skipped, where Kinto fails the write. A missing top-level variable
// renders as "" (Kinto's defaultdict).
func (p *plugin) build(ctx context.Context, tx storage.Tx, hooks []map[string]any, vars map[string]any) ([]any, error) {
	var out []any
	for _, hook := range hooks {
		if !notify.Matches(hook, vars) {
			continue
		}
		tmpl, _ := hook["template"].(string)
		text, err := notify.Format(tmpl, func(name string) (any, bool) {
			if v, ok := vars[name]; ok {
				return v, true
			}
			return "", true
		})
		if err != nil {
			p.log.Warn("kinto_slack: a hook's template does not render; no message", "template", tmpl, "err", err)
			continue
		}
		out = append(out, message{Channel: hook["channel"], Text: text})
	}
	return out, nil
}

// post sends a message to its channel's webhook (slack.{channel}.webhook_url),
// else to slack.webhook_url, and writes it in slack.debug_dir when set.
func (p *plugin) post(ctx context.Context, m any) error {
	msg := m.(message)
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	settings := p.h.Settings()
	url, _ := settings.LookupEnv("slack.webhook_url")
	if url == "" {
		url = os.Getenv("SLACK_WEBHOOK_URL")
	}
	if channel, _ := msg.Channel.(string); channel != "" {
		name := "slack." + strings.ReplaceAll(channel, "#", "") + ".webhook_url"
		if u, _ := settings.LookupEnv(name); u != "" {
			url = u
		} else if url != "" {
			p.log.Warn("kinto_slack: " + name + " not found in config or environment. Fallback to default")
		}
	}
	if p.debugDir != "" {
		if err := os.MkdirAll(p.debugDir, 0o755); err != nil {
			return err
		}
		name := filepath.Join(p.debugDir, fmt.Sprintf("%d.json", time.Now().UnixNano()))
		if err := os.WriteFile(name, body, 0o644); err != nil {
			return err
		}
	}
	if url == "" {
		if p.debugDir == "" {
			p.log.Warn("kinto_slack: no Slack webhook URL or debug dir configured")
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}
