// Command kintogo runs a Kinto-compatible JSON storage server with the
// changes feed built in, and the administrative commands Kinto's users
// know (init, migrate, create-user, purge-deleted).
//
//	kintogo [start] [--ini FILE] [--port 8888] [--bind 127.0.0.1]
//	kintogo init [--ini FILE] [--backend sqlite|postgresql|memory]
//	kintogo migrate [--ini FILE] [--dry-run]
//	kintogo create-user [--ini FILE] --username NAME [--password PASSWORD]
//	kintogo purge-deleted [--ini FILE] RESOURCE... AGE|MAX_RETAINED
//	kintogo signer-keys [--subject NAME] [--days 90] [--issuer-certificate FILE --issuer-key FILE] DIR
//	kintogo resign [--ini FILE] [--within 720h] [--all]
//	kintogo version
//
// Run `kintogo help COMMAND` for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"kintogo/internal/app"
	"kintogo/internal/config"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kintogo:", err)
		}
		var exit exitCode
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

// exitCode is an error with a process exit status of its own (Kinto's
// create-user has distinct ones).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// command is one subcommand: its one-line summary, the arguments its usage
// shows, and what it does with its flags parsed.
type command struct {
	summary string
	args    string
	about   string // more lines for `help COMMAND`
	flags   func(fs *flag.FlagSet) func(c *ctx, args []string) error
}

// ctx is what every command gets: where to write, and the settings file
// named by --ini (or $KINTO_INI).
type ctx struct {
	out, errOut io.Writer
	ini         string
}

// settings loads the settings: the --ini file, else config/kinto.ini when
// it exists, else none (kintogo's zero-configuration start), each
// overridden by the environment.
func (c *ctx) settings() (*config.Settings, error) {
	path := c.ini
	if path == "" {
		if _, err := os.Stat(defaultINI); err == nil {
			path = defaultINI
		}
	}
	s, err := config.Load(path, os.Environ())
	if err != nil {
		return nil, err
	}
	// What has no effect is said, once per command.
	log := c.logger(s)
	for _, u := range s.Unknown() {
		if u.Suggestion != "" {
			log.Warn("unknown setting, ignored: did you mean "+u.Suggestion+"?", "setting", u.Name, "in", u.Where)
		} else {
			log.Warn("unknown setting, ignored", "setting", u.Name, "in", u.Where)
		}
	}
	for _, name := range s.Compatibility() {
		log.Info("setting accepted for compatibility with Kinto, without effect", "setting", "kinto."+name)
	}
	return s, nil
}

// logger writes the command's logs to stderr, in the configured format.
func (c *ctx) logger(s *config.Settings) *slog.Logger { return app.NewLogger(s, c.errOut) }

// defaultINI is Kinto's default settings file.
const defaultINI = "config/kinto.ini"

var commands = map[string]command{
	"start": {
		summary: "serve the API (the default command)",
		about: `With no settings file, kintogo serves at once on 127.0.0.1:8888, with its data in
./kintogo.db: the changes feed of every bucket, accounts, history, the admin UI
and the permissions endpoint. It prints the URLs and the command that creates
the first administrator. SIGHUP makes it read the change log at once (the
administrative commands send it after they write). SIGINT or SIGTERM end its
event streams and long-polls at once and stop it once the requests in flight
are done; a second one stops it at once.`,
		flags: startFlags,
	},
	"init": {
		summary: "write a commented settings file, with fresh secrets",
		about: `Writes --ini (default config/kinto.ini) like Kinto's template, for the chosen
storage backend, with random HMAC secrets. Never overwrites a file.`,
		flags: initFlags,
	},
	"migrate": {
		summary: "create or upgrade the database schema",
		about: `start refuses a database whose schema is older than the binary's: migrate
upgrades it (on PostgreSQL, once for all nodes). --dry-run only says what it
would do.`,
		flags: migrateFlags,
	},
	"create-user": {
		summary: "create an account, or set its password",
		about: `Creates the account NAME in the configured database (the accounts plugin must be
included), or sets its password when it exists. Without --password, the
password is read from the terminal (twice), or from one line of standard input
when it is not a terminal. It may run while the server runs.`,
		flags: createUserFlags,
	},
	"purge-deleted": {
		summary: "delete old tombstones",
		args:    "RESOURCE... AGE|MAX_RETAINED",
		about: `Deletes the tombstones (what remains of deleted objects, for clients syncing
with _since) of the RESOURCE kinds (record, collection, group, bucket,
account): older than AGE (a duration: 90d, 36h, 30m), or, given a number
as Kinto's command takes, all but the MAX_RETAINED newest of each parent.
Prints how many it deleted; live objects are never touched. Clients that
last synced before a purged deletion will not see it: purge beyond the
longest time a client may stay offline. It may run while the server runs.`,
		flags: purgeFlags,
	},
	"signer-keys": {
		summary: "make the signer's key and its certificate chain",
		args:    "DIR",
		about: `Writes in DIR a P-384 key for the signer's local backend (signer-key.pem), its
certificate chain (chain.pem: the leaf, with the code-signing usage, an
intermediate and a root), the root alone (root.pem), the intermediate with the
root (issuer.pem) and the intermediate's key, and prints the settings to use
and the root's hash that clients verify with. kintogo serves chain.pem as the
x5u of its signatures. Never overwrites a file.

With --issuer-certificate and --issuer-key, issues only the leaf, under that
intermediate: the next leaf of a chain made before (issuer.pem,
intermediate-key.pem), an organization's content-signing CA, or Autograph's
development intermediate, which Firefox trusts for a server on localhost (see
README, Firefox). The leaf expires with its issuer at the latest.`,
		flags: signerKeysFlags,
	},
	"resign": {
		summary: "sign again what an old or expiring certificate chain signed",
		about: `Signs again every preview and destination of signer.resources whose signature
was made with another certificate chain than the signer's, or with one that
expires within --within (--all: every one). The records and their timestamp
do not change. It may run while the server runs.`,
		flags: resignFlags,
	},
	"version": {
		summary: "print the version",
		flags: func(fs *flag.FlagSet) func(*ctx, []string) error {
			return func(c *ctx, args []string) error {
				fmt.Fprintf(c.out, "kintogo %s (commit %s, %s, %s/%s)\n", app.Version, app.Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	},
}

func usage(w io.Writer) {
	fmt.Fprint(w, `kintogo: a Kinto-compatible JSON storage server, with the changes feed built in.

usage: kintogo [command] [flags]

commands:
`)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-14s %s\n", name, commands[name].summary)
	}
	fmt.Fprint(w, `  help COMMAND   what a command does, and its flags

Every command reads --ini FILE (default: $KINTO_INI, else config/kinto.ini when
it exists, else no file), and KINTO_* environment variables override settings.
`)
}

func run(args []string, out, errOut io.Writer) error {
	switch {
	case len(args) == 0:
	case args[0] == "-h" || args[0] == "--help" || args[0] == "-help":
		usage(out)
		return nil
	case args[0] == "help" && (len(args) == 1 || args[1] == "help"):
		usage(out)
		return nil
	case args[0] == "help":
		args = []string{args[1], "--help"}
	}
	name := "start"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("unknown command %q (kintogo help lists them)", name)
	}
	fs := flag.NewFlagSet("kintogo "+name, flag.ContinueOnError)
	// The flag package's own messages are replaced by ours: the usage
	// once, on stdout, when asked; an error in one line otherwise.
	fs.SetOutput(io.Discard)
	c := &ctx{out: out, errOut: errOut}
	fs.StringVar(&c.ini, "ini", os.Getenv("KINTO_INI"), "settings file (default: config/kinto.ini when it exists, else none)")
	do := cmd.flags(fs)
	printUsage := func(w io.Writer) {
		fs.SetOutput(w)
		defer fs.SetOutput(io.Discard)
		if cmd.args != "" {
			fmt.Fprintf(w, "usage: kintogo %s [flags] %s\n\n", name, cmd.args)
		} else {
			fmt.Fprintf(w, "usage: kintogo %s [flags]\n\n", name)
		}
		fmt.Fprintf(w, "%s.\n", strings.ToUpper(cmd.summary[:1])+cmd.summary[1:])
		if cmd.about != "" {
			fmt.Fprintf(w, "\n%s\n", cmd.about)
		}
		fmt.Fprint(w, "\nflags:\n")
		fs.PrintDefaults()
	}
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out)
			return err
		}
		return fmt.Errorf("%w (kintogo help %s lists its flags)", err, name)
	}
	if name != "start" {
		// A server's SIGHUP (see Admin.Close) must never end a command
		// that happens to hold the database.
		signal.Ignore(syscall.SIGHUP)
	}
	return do(c, fs.Args())
}
