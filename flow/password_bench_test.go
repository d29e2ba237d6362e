package flow

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trustelem/zxcvbn"
)

// BenchmarkPasswordCheck measures zxcvbn alone on a whole password, then
// the policy's check (zxcvbn on at most two zxcvbnWindow windows), by
// password length: the figures behind zxcvbnWindow.
//
//	go test -run XXX -bench PasswordCheck ./flow/
func BenchmarkPasswordCheck(b *testing.B) {
	const phrase = "Correct-Horse-Battery-Staple-plum-violin-harbor-7291-zebra-quartz-lantern-mosaic-orbit-"
	long := strings.Repeat(phrase, 4)
	inputs := []string{"jdupont", "Jeanne", "Dupont", "Université", "Exemple"}
	for _, n := range []int{16, 24, 32, 64, 100, 256} {
		pw := long[:n]
		if n <= 100 {
			b.Run(fmt.Sprintf("zxcvbn/%d", n), func(b *testing.B) {
				for b.Loop() {
					zxcvbn.PasswordStrength(pw, inputs)
				}
			})
		}
		b.Run(fmt.Sprintf("check/%d", n), func(b *testing.B) {
			for b.Loop() {
				DefaultPasswordPolicy.Check(pw, "jdupont", "Jeanne", "Dupont", "Université Exemple")
			}
		})
	}
}
