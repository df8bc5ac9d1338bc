// Command legacy-app stands for an app that cannot be re-pointed at
// authproxy: it calls an API by the API's own https:// URL with Go's
// default client, which takes its proxy from HTTPS_PROXY and its trusted
// roots from SSL_CERT_FILE. Nothing in it knows authproxy, and it sends
// no token. docker-compose.yml's forward profile runs it in the golang
// image as it is (go run main.go URL...), as curl would be run.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	failed := false
	for _, url := range os.Args[1:] {
		resp, err := http.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "legacy-app:", err)
			os.Exit(1)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "legacy-app:", err)
			os.Exit(1)
		}
		fmt.Printf("GET %s: %s\n%s\n", url, resp.Status, body)
		failed = failed || resp.StatusCode != http.StatusOK
	}
	if failed {
		os.Exit(1)
	}
}
