// Command etcd is the etcd server, built from the published
// go.etcd.io/etcd/server/v3 module so it can be pinned in our go.mod.
// The upstream main package lives in a module whose go.mod replaces its
// siblings with local paths, which `go install module@version` refuses.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
