// Command goclient is an unmodified Go app: it GETs each URL given with
// http.DefaultClient (http.ProxyFromEnvironment, the system's roots or
// SSL_CERT_FILE) and prints each status and body, one a line.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	for _, u := range os.Args[1:] {
		resp, err := http.Get(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s\n", resp.StatusCode, b)
	}
}
