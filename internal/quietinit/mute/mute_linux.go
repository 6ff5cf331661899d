// Package mute points file descriptor 2 at /dev/null while packages
// initialize, until package quietinit restores it. It imports nothing but
// syscall, so that it initializes before any package that logs at init
// (packages are initialized in import-path order among those whose imports
// are ready; see package quietinit).
package mute

import "syscall"

// saved is the original stderr, -1 if muting failed or was undone.
var saved = func() int {
	null, err := syscall.Open("/dev/null", syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer syscall.Close(null)
	fd, err := syscall.Dup(2)
	if err != nil {
		return -1
	}
	syscall.CloseOnExec(fd)
	if syscall.Dup3(null, 2, 0) != nil {
		syscall.Close(fd)
		return -1
	}
	return fd
}()

// Restore points file descriptor 2 back at the original stderr. Only the
// first call does anything.
func Restore() {
	if saved < 0 {
		return
	}
	_ = syscall.Dup3(saved, 2, 0)
	syscall.Close(saved)
	saved = -1
}
