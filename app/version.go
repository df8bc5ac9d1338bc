package app

import (
	"context"
	"flag"
	"fmt"
)

// versionCommand is `authproxy version` (and --version).
var versionCommand = command{
	name: "version", summary: "print the version", about: "Print the version.", example: "authproxy version",
	flags: func(fs *flag.FlagSet, opts Options) func(context.Context, string) error {
		return func(context.Context, string) error { fmt.Fprintln(opts.Stdout, "authproxy", Version); return nil }
	},
}
