package data

import "syscall"

// adviseSequential tells the kernel that m will be read front to back, so
// that it reads ahead aggressively. A failure only costs speed.
func adviseSequential(m []byte) { _ = syscall.Madvise(m, syscall.MADV_SEQUENTIAL) }
