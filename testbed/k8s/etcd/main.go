// etcd for the kelp test bed: the etcd server binary, built from the Go module
// go.etcd.io/etcd/server/v3 (whose own main package cannot be `go install`ed because
// its go.mod has replace directives). testbed/testbed (svc_k8s_fetch) generates the
// go.mod next to a copy of this file and builds it with `go build`.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
