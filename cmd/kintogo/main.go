// Command kintogo runs a Kinto-compatible JSON storage server with the
// changes feed built in.
//
//	kintogo [start] [--ini FILE] [--port 8888] [--bind 127.0.0.1]
//	kintogo migrate [--ini FILE]
//	kintogo version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"kintogo/internal/app"
	"kintogo/internal/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kintogo:", err)
		os.Exit(1)
	}
}

const usage = `usage: kintogo [command] [flags]

commands:
  start     serve the API (the default)
  migrate   create or upgrade the database schema
  version   print the version

flags:
`

func run(args []string) error {
	cmd := "start"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("kintogo "+cmd, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	ini := fs.String("ini", os.Getenv("KINTO_INI"), "INI settings file (default: config/kinto.ini when it exists)")
	port := fs.Int("port", 0, "port to listen on (default: [server:main] port, else 8888)")
	bind := fs.String("bind", "", "address to listen on (default: [server:main] host, else 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "version":
		fmt.Println(app.Version)
		return nil
	case "start", "migrate":
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	path := *ini
	if path == "" {
		if _, err := os.Stat("config/kinto.ini"); err == nil {
			path = "config/kinto.ini"
		}
	}
	settings, err := config.Load(path, os.Environ())
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx := context.Background()
	if cmd == "migrate" {
		store, err := app.OpenStorage(ctx, settings, true)
		if err != nil {
			return err
		}
		log.Info("schema is up to date", "backend", settings.String("storage_backend"))
		return store.Close()
	}
	return serve(ctx, settings, log, *bind, *port)
}

func serve(ctx context.Context, settings *config.Settings, log *slog.Logger, bind string, port int) error {
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
	handler, store, err := app.New(ctx, settings, log)
	if err != nil {
		return err
	}
	defer store.Close()
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("kintogo listening", "addr", "http://"+addr+"/v1/", "backend", settings.String("storage_backend"), "version", app.Version)
	select {
	case err := <-errc:
		return err
	case <-stop:
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
