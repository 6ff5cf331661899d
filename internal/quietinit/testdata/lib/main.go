// Command lib is a program that links modelgate as a library does, for
// TestLibraryPrintsNothingAtInit.
package main

import (
	"fmt"
	"os"

	"github.com/modelgate/modelgate/router"
)

func main() {
	fmt.Println(router.Config{}.MaxBodySize == 0)
	fmt.Fprintln(os.Stderr, "stderr after init")
}
