// A Benthos (v4) binary with only the components the benchmark's Benthos party uses:
// http_server input, mapping/unarchive processors and the kafka_franz output. Importing
// everything (public/components/all) would build for several minutes more and pull in
// cloud SDKs the benchmark never runs.
package main

import (
	"context"

	"github.com/benthosdev/benthos/v4/public/service"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
)

func main() {
	service.RunCLI(context.Background())
}
