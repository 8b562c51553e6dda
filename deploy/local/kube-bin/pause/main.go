// Command pause holds a pod's namespaces open, as the pause image of every Kubernetes
// distribution does: it waits for SIGINT or SIGTERM and exits 0. Built here so the local
// cluster (deploy/local/kube) needs no registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
