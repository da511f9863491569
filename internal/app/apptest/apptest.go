// Package apptest builds kintogo servers for tests: the real assembly
// (app.NewServer: settings, plugins, engine) over a given storage.
package apptest

import (
	"context"
	"testing"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage"
)

// Server builds a server over store with the settings of each map in
// turn (later maps override earlier ones); an error fails t.
func Server(t testing.TB, store storage.Storage, opts httpapi.Options, settings ...map[string]string) *httpapi.Server {
	t.Helper()
	m := map[string]string{}
	for _, s := range settings {
		for k, v := range s {
			m[k] = v
		}
	}
	s, err := config.FromMap(m)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app.NewServer(s, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	// It follows the change log, as a server does.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		app.Follow(ctx, srv, s, opts.Logger)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv
}
