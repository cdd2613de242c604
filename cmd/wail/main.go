// Command wail is the wail server and command line client: see
// internal/cli for the commands.
package main

import (
	"context"
	"os"

	"github.com/wail-cdc/wail/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
