//go:build !linux

package data

func adviseSequential([]byte) {}
