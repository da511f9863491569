package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/plugins/accounts"
	"kintogo/internal/plugins/admin"
	"kintogo/internal/plugins/changes"
	"kintogo/internal/storage/sqlite"
)

func startFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	port := fs.Int("port", 0, "port to listen on (default: [server:main] port, else 8888)")
	bind := fs.String("bind", "", "address to listen on (default: [server:main] host, else 127.0.0.1)")
	return func(c *ctx, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("start takes no arguments (got %q)", args)
		}
		settings, err := c.settings()
		if err != nil {
			return err
		}
		return serve(context.Background(), c, settings, *bind, *port)
	}
}

func serve(ctx context.Context, c *ctx, settings *config.Settings, bind string, port int) error {
	log := c.logger(settings)
	if bind == "" {
		bind = settings.String("server.host")
	}
	if bind == "" {
		bind = "127.0.0.1"
	}
	if port == 0 {
		port, _ = strconv.Atoi(settings.String("server.port"))
	}
	if port == 0 {
		port = 8888
	}
	// Signals are caught before the server exists: a SIGHUP from an
	// administrative command must never end it.
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	// The port first: nothing is created (a database file) for a server
	// that cannot listen.
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%w (choose another with --port, or [server:main] port)", err)
	}
	handler, store, err := app.New(ctx, settings, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer store.Close()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("kintogo listening", "addr", "http://"+addr+"/v1/", "backend", settings.String("storage_backend"), "version", app.Version)
	warnOpenSignUp(log, settings, bind)
	banner(c.out, settings, addr, handler)
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			// An administrative command wrote the database (create-user,
			// purge-deleted): its commits are in the change log, which
			// this process reads now, before confirming.
			caught, cancel := context.WithTimeout(ctx, 5*time.Second)
			handler.Engine().CatchUp(caught)
			cancel()
			log.Info("the database changed outside this process: its change log read")
			if sq, ok := store.(*sqlite.Store); ok {
				if err := sq.Refreshed(); err != nil {
					log.Warn("could not confirm the refresh to the command", "error", err)
				}
			}
			continue
		case <-stop:
		}
		break
	}
	// Requests held open (event streams, long-polls) end at once, the
	// others finish (within 10 s); a second signal ends the process now.
	log.Info("shutting down (a second Ctrl-C or SIGTERM exits at once)")
	handler.Drain()
	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(shutdownCtx) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("shutting down: %w", err)
		}
		return nil
	case <-stop:
		log.Warn("second signal: exiting without waiting for requests in flight")
		store.Close()
		os.Exit(1)
		return nil
	}
}

// warnOpenSignUp warns when anyone may create an account on a server that
// others than this machine can reach.
func warnOpenSignUp(log *slog.Logger, s *config.Settings, bind string) {
	if !s.Has("includes", accounts.Plugin{}.Name()) || !s.Has("account_create_principals", "system.Everyone") {
		return
	}
	if ip := net.ParseIP(bind); bind == "localhost" || (ip != nil && ip.IsLoopback()) {
		return
	}
	log.Warn("anyone who reaches this address may create an account (account_create_principals = system.Everyone)", "bind", bind)
}

// banner tells whoever started the server where everything is, and what
// to do next.
func banner(w io.Writer, s *config.Settings, addr string, h *httpapi.Server) {
	base := "http://" + addr + "/v1/"
	fmt.Fprintf(w, "\nkintogo %s is serving %s\n", app.Version, base)
	if app.Includes(s, admin.Plugin{}) {
		note := ""
		if !admin.Found(s.String("admin_assets_path")) {
			note = "  (not installed: ./scripts/admin.sh installs it)"
		}
		fmt.Fprintf(w, "  admin UI:   %s%s\n", strings.TrimSuffix(base, "/v1/")+admin.Prefix, note)
	}
	if app.Includes(s, changes.Plugin{}) {
		fmt.Fprintf(w, "  live feed:  %s\n", strings.TrimSuffix(base, "/v1/")+changes.LivePrefix)
		fmt.Fprintf(w, "  monitor:    %sbuckets/monitor/collections/changes/records\n", base)
	}
	switch backend := s.StorageBackend(); backend {
	case config.SQLite:
		path, _ := filepath.Abs(s.String("storage_url"))
		fmt.Fprintf(w, "  database:   %s (SQLite)\n", path)
	case config.Memory:
		fmt.Fprintf(w, "  database:   in memory (nothing is kept when the server stops)\n")
	default:
		fmt.Fprintf(w, "  database:   %s\n", backend)
	}
	if s.Path != "" {
		fmt.Fprintf(w, "  settings:   %s\n", s.Path)
	} else {
		fmt.Fprintf(w, "  settings:   none: kintogo's zero-configuration start (`kintogo init` writes a settings file)\n")
	}
	if name := firstAdministrator(s); name != "" && s.StorageBackend() != config.Memory {
		exists, err := accounts.Exists(context.Background(), h, name)
		if err == nil && !exists {
			iniFlag := ""
			if s.Path != "" {
				iniFlag = " --ini " + s.Path
			}
			fmt.Fprintf(w, "\nNo administrator yet. Create one (it may run while the server runs):\n\n    kintogo create-user%s --username %s\n\n", iniFlag, name)
			fmt.Fprintf(w, "then log in to the admin UI with it (Kinto Account Auth), or: curl -u %s:PASSWORD %s\n", name, base)
		}
	}
	fmt.Fprintln(w)
}

// firstAdministrator is the first account named in
// account_write_principals, when the accounts plugin is included.
func firstAdministrator(s *config.Settings) string {
	if !s.Has("includes", accounts.Plugin{}.Name()) {
		return ""
	}
	for _, p := range s.List("account_write_principals") {
		if name, ok := strings.CutPrefix(p, "account:"); ok && name != "" {
			return name
		}
	}
	return ""
}
