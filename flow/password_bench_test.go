package flow

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkPasswordCheck measures the policy check, zxcvbn included, by
// password length: the figures behind zxcvbnLimit.
//
//	go test -run XXX -bench PasswordCheck ./flow/
func BenchmarkPasswordCheck(b *testing.B) {
	const phrase = "Correct-Horse-Battery-Staple-plum-violin-harbor-7291-zebra-quartz-lantern-mosaic-orbit-"
	long := strings.Repeat(phrase, 4)
	for _, n := range []int{16, 24, 32, 48, 64, 100, 256} {
		pw := long[:n]
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				DefaultPasswordPolicy.Check(pw, "jdupont", "Jeanne", "Dupont", "Université Exemple")
			}
		})
	}
}
