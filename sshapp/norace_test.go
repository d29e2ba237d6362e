//go:build !race

package sshapp_test

const raceEnabled = false
