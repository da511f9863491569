// Package prometheus is Kinto's kinto.plugins.prometheus: GET
// /v1/__metrics__ exposes the server's metrics in Prometheus' formats,
// with Kinto's names and labels for the request metrics
// (kinto.core.initialization.setup_metrics), the prometheus capability,
// and kintogo's own gauges of push, the answer cache, commits and the
// delivery of other nodes' changes.
//
// Every metric name starts with the prefix (prometheus_prefix, default
// project_name) cleaned as Kinto cleans it: `remote-settings` gives
// `remotesettings_`, the default `kinto` gives `kinto_`. Each server has a
// registry of its own, with the Go runtime's and the process' collectors.
package prometheus

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/httpapi"
)

// Plugin is kinto.plugins.prometheus.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.prometheus" }

// Names of the metrics, without the prefix, as prometheus_disabled_metrics
// names them. Kinto's first, then kintogo's own.
const (
	RequestSummary  = "request_summary"          // counter {method, endpoint, <matchdict fields>, status}
	RequestDuration = "request_duration_seconds" // histogram {method, endpoint, <matchdict fields>}
	RequestSize     = "request_size"             // summary of answer body bytes {method, endpoint, <matchdict fields>}
	Authentication  = "authentication"           // counter {type}: requests that identified their caller
	// AuthenticationSeconds is, per policy of multiauth.policies,
	// authentication_{policy}_seconds, a histogram {method} (Kinto's
	// timers of its policies' methods; see auth.Observer).
	AuthenticationSeconds = "authentication_%s_seconds"
	Users                 = "users"                    // counter {auth, userid}
	EventStreams          = "event_streams"            // gauge
	LongPolls             = "long_polls"               // gauge
	CacheBytes            = "answer_cache_bytes"       // gauge
	CacheEntries          = "answer_cache_entries"     // gauge
	Commits               = "commits"                  // counter
	NotificationLag       = "notification_lag_seconds" // histogram
	ReplicationLag        = "replication_lag_seconds"  // gauge
	LogPosition           = "change_log_position"      // gauge
)

// lagBuckets are the buckets of the notification lag, in seconds: a
// notification usually arrives within milliseconds.
var lagBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Settings are the plugin's settings, read once.
type Settings struct {
	Prefix          string   // cleaned: "kinto_"
	Disabled        []string // as given, for the capability
	disabled        map[string]bool
	Buckets         []float64
	Created         bool
	MatchdictFields []string
}

var (
	validPrefix = regexp.MustCompile(`^([a-z_:][a-z0-9_:]*)?$`)
	validLabel  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Prefix cleans a prefix as Kinto's PrometheusService does: "-", "." and
// " " become "_", then every "_" goes, the rest is lower-cased and
// followed by "_" ("" stays "").
func Prefix(raw string) string {
	if raw == "" {
		return ""
	}
	fixed := strings.NewReplacer("-", "_", ".", "_", " ", "_").Replace(raw)
	return strings.ToLower(strings.ReplaceAll(fixed, "_", "") + "_")
}

// ReadSettings reads and checks the plugin's settings.
func ReadSettings(s *config.Settings) (*Settings, error) {
	raw := s.String("prometheus_prefix")
	if raw == "" {
		raw = s.String("project_name")
	}
	out := &Settings{Prefix: Prefix(raw), Disabled: s.List("prometheus_disabled_metrics"), disabled: map[string]bool{},
		Created: s.Bool("prometheus_created_metrics_enabled"), MatchdictFields: s.List("metrics_matchdict_fields")}
	if !validPrefix.MatchString(out.Prefix) {
		return nil, fmt.Errorf("prometheus_prefix: %q gives the prefix %q, which is not valid in metric names", raw, out.Prefix)
	}
	if out.Disabled == nil {
		out.Disabled = []string{}
	}
	for _, m := range out.Disabled {
		if out.Prefix != "" {
			m = strings.ReplaceAll(m, out.Prefix, "")
		}
		out.disabled[m] = true
	}
	for _, b := range s.List("prometheus_histogram_buckets") {
		f, err := strconv.ParseFloat(b, 64)
		if err != nil || math.IsNaN(f) {
			return nil, fmt.Errorf("prometheus_histogram_buckets: %q is not a number", b)
		}
		if n := len(out.Buckets); n > 0 && f <= out.Buckets[n-1] {
			return nil, fmt.Errorf("prometheus_histogram_buckets: the buckets must increase (%s)", s.String("prometheus_histogram_buckets"))
		}
		out.Buckets = append(out.Buckets, f)
	}
	if len(out.Buckets) == 0 || (len(out.Buckets) == 1 && math.IsInf(out.Buckets[0], 1)) {
		return nil, fmt.Errorf("prometheus_histogram_buckets: no bucket below Inf")
	}
	seen := map[string]bool{"method": true, "endpoint": true, "status": true}
	for _, f := range out.MatchdictFields {
		if !validLabel.MatchString(f) || strings.HasPrefix(f, "__") || seen[f] {
			return nil, fmt.Errorf("metrics_matchdict_fields: %q is not a label name of its own", f)
		}
		seen[f] = true
	}
	return out, nil
}

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	cfg, err := ReadSettings(h.Settings())
	if err != nil {
		return err
	}
	reg := prom.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := newMetrics(cfg, reg, h)
	h.ObserveRequests(m.observe)
	h.Capability("prometheus", map[string]any{
		"description":      "Prometheus metrics.",
		"url":              "https://github.com/Kinto/kinto/",
		"prefix":           cfg.Prefix,
		"disabled_metrics": cfg.Disabled,
	})
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics:                   true,
		EnableOpenMetricsTextCreatedSamples: cfg.Created,
	})
	h.Handle("/v1/__metrics__", httpapi.Endpoint{Name: "prometheus_metrics", Expose: httpapi.BaseExpose, Public: true,
		Methods: map[string]httpapi.Handler{"GET": func(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
			metrics.ServeHTTP(w, r)
			return nil
		}}})
	return nil
}

// metrics are the request metrics (nil when disabled) and the fields of
// their labels.
type metrics struct {
	fields   []string
	summary  *prom.CounterVec
	duration *prom.HistogramVec
	size     *prom.SummaryVec
	authn    *prom.CounterVec
	users    *prom.CounterVec
}

func newMetrics(cfg *Settings, reg *prom.Registry, h *httpapi.Server) *metrics {
	on := func(name string) bool { return !cfg.disabled[name] }
	name := func(n string) string { return cfg.Prefix + n }
	labels := append([]string{"method", "endpoint"}, cfg.MatchdictFields...)
	m := &metrics{fields: cfg.MatchdictFields}
	// Kinto's metrics, with its help texts.
	if on(RequestSummary) {
		m.summary = prom.NewCounterVec(prom.CounterOpts{Name: name(RequestSummary) + "_total", Help: "Counter of " + name(RequestSummary)},
			append(slices.Clone(labels), "status"))
		reg.MustRegister(m.summary)
	}
	if on(RequestDuration) {
		m.duration = prom.NewHistogramVec(prom.HistogramOpts{Name: name(RequestDuration), Help: "Histogram of " + name(RequestDuration),
			Buckets: cfg.Buckets}, labels)
		reg.MustRegister(m.duration)
	}
	if on(RequestSize) {
		m.size = prom.NewSummaryVec(prom.SummaryOpts{Name: name(RequestSize), Help: "Summary of " + name(RequestSize)}, labels)
		reg.MustRegister(m.size)
	}
	if on(Authentication) {
		m.authn = prom.NewCounterVec(prom.CounterOpts{Name: name(Authentication) + "_total", Help: "Counter of " + name(Authentication)},
			[]string{"type"})
		reg.MustRegister(m.authn)
	}
	timers := map[string]*prom.HistogramVec{}
	for _, policy := range h.Settings().List("multiauth.policies") {
		n := fmt.Sprintf(AuthenticationSeconds, policy)
		if !on(n) || !validLabel.MatchString(policy) || timers[policy] != nil {
			continue
		}
		timers[policy] = prom.NewHistogramVec(prom.HistogramOpts{Name: name(n), Help: "Histogram of " + name(n), Buckets: cfg.Buckets}, []string{"method"})
		reg.MustRegister(timers[policy])
	}
	if len(timers) > 0 {
		h.ObserveAuthentication(func(policy, method string, d time.Duration) {
			if t := timers[policy]; t != nil {
				t.WithLabelValues(method).Observe(d.Seconds())
			}
		})
	}
	if on(Users) {
		m.users = prom.NewCounterVec(prom.CounterOpts{Name: name(Users) + "_total", Help: "Counter of " + name(Users)},
			[]string{"auth", "userid"})
		reg.MustRegister(m.users)
	}

	// kintogo's own, read from the server's counters when scraped.
	gauge := func(n, help string, f func() float64) {
		if on(n) {
			reg.MustRegister(prom.NewGaugeFunc(prom.GaugeOpts{Name: name(n), Help: help}, f))
		}
	}
	gauge(EventStreams, "Event streams (Server-Sent Events) open on this node.", func() float64 {
		streams, _ := h.PushStats()
		return float64(streams)
	})
	gauge(LongPolls, "Long-polls (_wait) waiting for a change on this node.", func() float64 {
		_, polls := h.PushStats()
		return float64(polls)
	})
	gauge(ReplicationLag, "How far behind its primary the PostgreSQL standby this node reads is (0 on a primary).", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return h.ReplicationLag(ctx).Seconds()
	})
	gauge(LogPosition, "The newest position of the change log this node read (the same position is the same commits on every node).", func() float64 {
		return float64(h.LogPosition())
	})
	gauge(CacheBytes, "Bytes the answer cache holds (within response_cache_max_bytes).", func() float64 {
		_, bytes := h.AnswerCacheStats()
		return float64(bytes)
	})
	gauge(CacheEntries, "Answers the answer cache holds.", func() float64 {
		entries, _ := h.AnswerCacheStats()
		return float64(entries)
	})
	if on(Commits) {
		commits := prom.NewCounter(prom.CounterOpts{Name: name(Commits) + "_total",
			Help: "Transactions this node committed that changed something."})
		reg.MustRegister(commits)
		h.Engine().Feed().Subscribe(func(b events.Batch) {
			if b.Local {
				commits.Inc()
			}
		})
	}
	if on(NotificationLag) {
		lag := prom.NewHistogram(prom.HistogramOpts{Name: name(NotificationLag), Buckets: lagBuckets,
			Help: "Delay between a commit on another node and its delivery to this node's views (PostgreSQL notifications; the nodes' clocks must agree)."})
		reg.MustRegister(lag)
		h.ObserveNotifications(func(d time.Duration) { lag.Observe(d.Seconds()) })
	}
	return m
}

// methods are the methods labelled by their name; any other is "other",
// so that clients cannot grow the label's values at will.
var methods = map[string]string{
	"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete", "OPTIONS": "options",
}

// observe records one request, as Kinto's on_new_response does.
func (m *metrics) observe(rs *httpapi.RequestSummary) {
	method, ok := methods[rs.Method]
	if !ok {
		method = "other"
	}
	var buf [16]string
	labels := append(buf[:0], method, rs.Endpoint)
	for _, f := range m.fields {
		v := ""
		if rs.Status < 400 {
			// Kinto: no values of failed requests (404s would make
			// random ones).
			v = rs.Match(f)
		}
		labels = append(labels, v)
	}
	if m.summary != nil {
		m.summary.WithLabelValues(append(labels, strconv.Itoa(rs.Status))...).Inc()
	}
	if m.duration != nil {
		m.duration.WithLabelValues(labels...).Observe(rs.Duration.Seconds())
	}
	if m.size != nil {
		m.size.WithLabelValues(labels...).Observe(float64(rs.Bytes))
	}
	if rs.UserID == "" {
		return
	}
	if m.users != nil {
		auth, uid, _ := strings.Cut(rs.UserID, ":")
		m.users.WithLabelValues(auth, strings.ReplaceAll(uid, ":", ".")).Inc()
	}
	if m.authn != nil {
		m.authn.WithLabelValues(rs.AuthnType).Inc()
	}
}
