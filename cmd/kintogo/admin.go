package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/model"
	"kintogo/internal/plugins/accounts"
)

func migrateFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	dryRun := fs.Bool("dry-run", false, "only say what would be done")
	return func(c *ctx, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("migrate takes no arguments (got %q)", args)
		}
		settings, err := c.settings()
		if err != nil {
			return err
		}
		ctx := context.Background()
		backend := settings.String("storage_backend")
		if *dryRun {
			plan, err := app.MigrationPlan(ctx, settings)
			if err != nil {
				return err
			}
			switch {
			case plan.Latest == 0:
				fmt.Fprintf(c.out, "%s storage has no schema: nothing to do\n", backend)
			case plan.Version > plan.Latest:
				return fmt.Errorf("the database's schema (version %d) is newer than this kintogo's (%d)", plan.Version, plan.Latest)
			case len(plan.Pending) == 0:
				fmt.Fprintf(c.out, "the %s schema is up to date (version %d): nothing to do\n", backend, plan.Version)
			default:
				fmt.Fprintf(c.out, "the %s schema is at version %d; migrate would bring it to version %d:\n", backend, plan.Version, plan.Latest)
				for i, name := range plan.Pending {
					fmt.Fprintf(c.out, "  %d. %s\n", plan.Version+i+1, name)
				}
			}
			return nil
		}
		store, err := app.OpenStorage(ctx, settings, app.OpenOptions{Migrate: true})
		if err != nil {
			return err
		}
		c.logger(settings).Info("schema is up to date", "backend", backend)
		return store.Close()
	}
}

// Kinto's create-user exit statuses.
const (
	exitReadOnly   exitCode = 51
	exitNoAccounts exitCode = 52
	exitAborted    exitCode = 53
)

func createUserFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	var username, password string
	fs.StringVar(&username, "username", "", "the account's name (asked when not given)")
	fs.StringVar(&username, "u", "", "short for --username")
	fs.StringVar(&password, "password", "", "its password (read from the terminal when not given)")
	fs.StringVar(&password, "p", "", "short for --password")
	return func(c *ctx, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("create-user takes no arguments (got %q)", args)
		}
		settings, err := c.settings()
		if err != nil {
			return err
		}
		if err := adminStorage(settings); err != nil {
			return err
		}
		if settings.Bool("readonly") {
			fmt.Fprintln(c.errOut, "Cannot create a user with a readonly server.")
			return exitReadOnly
		}
		if !settings.Has("includes", accounts.Plugin{}.Name()) {
			fmt.Fprintln(c.errOut, "Cannot create a user when the accounts plugin is not installed.")
			return exitNoAccounts
		}
		in := lineReader{os.Stdin}
		if username == "" {
			if username, err = prompt(c, in, "Username: "); err != nil {
				fmt.Fprintln(c.errOut, "User creation aborted")
				return exitAborted
			}
		}
		if !model.Account.ValidID(username) {
			return fmt.Errorf("%q is not a valid username: letters, digits and . - _ @ + only (at most 255)", username)
		}
		if password == "" {
			if password, err = readPassword(c, in, username); err != nil {
				fmt.Fprintln(c.errOut, "User creation aborted:", err)
				return exitAborted
			}
		}
		ctx := context.Background()
		a, err := app.OpenAdmin(ctx, settings, c.logger(settings))
		if err != nil {
			return err
		}
		created, err := accounts.SetPassword(ctx, a.Server.Engine(), username, password)
		if e := a.Close(); err == nil {
			err = e
		}
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(c.out, "Created user '%s'\n", username)
		} else {
			fmt.Fprintf(c.out, "Changed the password of user '%s'\n", username)
		}
		return nil
	}
}

// adminStorage refuses the memory backend: a command's memory is gone
// when it ends.
func adminStorage(s *config.Settings) error {
	if s.StorageBackend() == config.Memory {
		return errors.New("storage_backend is memory: a command cannot reach a server's memory (use sqlite or postgresql)")
	}
	return nil
}

func prompt(c *ctx, in lineReader, question string) (string, error) {
	fmt.Fprint(c.errOut, question)
	line, err := in.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return line, nil
}

// lineReader reads standard input a line at a time, a byte at a time:
// what follows the line is left for the next command (a script piping
// the passwords of several create-user commands).
type lineReader struct{ r io.Reader }

// ReadString reads up to and including delim.
func (l lineReader) ReadString(delim byte) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := l.r.Read(buf)
		if n == 1 {
			b.WriteByte(buf[0])
			if buf[0] == delim {
				return b.String(), nil
			}
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// readPassword asks twice on a terminal; otherwise it reads one line
// (`echo "$PASSWORD" | kintogo create-user -u admin`).
func readPassword(c *ctx, in lineReader, username string) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		pw, err := prompt(c, in, "")
		if err == nil && pw == "" {
			err = errors.New("empty password")
		}
		return pw, err
	}
	for {
		fmt.Fprintf(c.errOut, "Please enter a password for %s: ", username)
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(c.errOut)
		if err != nil {
			return "", err
		}
		fmt.Fprint(c.errOut, "Please confirm the password: ")
		confirm, err := term.ReadPassword(fd)
		fmt.Fprintln(c.errOut)
		if err != nil {
			return "", err
		}
		if string(pw) == string(confirm) && len(pw) > 0 {
			return string(pw), nil
		}
		fmt.Fprintln(c.errOut, "Sorry, passwords do not match (or are empty), please try again.")
	}
}

func purgeFlags(fs *flag.FlagSet) func(*ctx, []string) error {
	return func(c *ctx, args []string) error {
		if len(args) < 2 {
			return errors.New("usage: kintogo purge-deleted RESOURCE... AGE|MAX_RETAINED (e.g. record 90d)")
		}
		resources, limit := args[:len(args)-1], args[len(args)-1]
		var before int64
		keep := 0
		if n, err := strconv.Atoi(limit); err == nil {
			if n < 0 {
				return fmt.Errorf("MAX_RETAINED %d is negative", n)
			}
			keep = n
		} else {
			age, err := parseAge(limit)
			if err != nil {
				return err
			}
			before = time.Now().Add(-age).UnixMilli()
		}
		for _, r := range resources {
			if !knownResource(r) {
				return fmt.Errorf("unknown resource %q (bucket, collection, group, record, account)", r)
			}
		}
		settings, err := c.settings()
		if err != nil {
			return err
		}
		if err := adminStorage(settings); err != nil {
			return err
		}
		ctx := context.Background()
		a, err := app.OpenAdmin(ctx, settings, c.logger(settings))
		if err != nil {
			return err
		}
		n, err := a.PurgeTombstones(ctx, resources, before, keep)
		if e := a.Close(); err == nil {
			err = e
		}
		if err != nil {
			return err
		}
		if before > 0 {
			fmt.Fprintf(c.out, "%d tombstone(s) older than %s deleted.\n", n, time.UnixMilli(before).UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintf(c.out, "%d tombstone(s) deleted (at most %d kept per parent).\n", n, keep)
		}
		return nil
	}
}

var agePattern = regexp.MustCompile(`^([0-9]+)d$`)

// parseAge reads a duration: Go's (36h, 90m, 1h30m), or days (90d).
func parseAge(s string) (time.Duration, error) {
	if m := agePattern.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 100000 {
			return 0, fmt.Errorf("AGE %q is too large", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("AGE %q is not a positive duration (90d, 36h, 30m) nor a number of tombstones to keep", s)
	}
	return d, nil
}

func knownResource(name string) bool {
	for _, k := range []*model.Kind{model.Bucket, model.Collection, model.Group, model.Record, model.Account} {
		if k.Name == name {
			return true
		}
	}
	return false
}
