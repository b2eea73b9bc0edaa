// Command nnp prints its effective uid ("Effective uid: N"). Installed
// setuid root in a test image and run as another user, it shows whether
// the container's no_new_privs flag stopped the privilege gain.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
