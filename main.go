// Command authproxy is an authenticating reverse proxy: legacy apps send
// it plain requests, and it forwards them to OAuth2-protected APIs with an
// access token attached, fetching and refreshing the token as needed.
// See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/authproxy/authproxy/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, app.Options{Args: os.Args[1:]})
	stop()
	os.Exit(code)
}
