package mailer

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

var (
	frWeekdays = [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	frMonths   = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
	enWeekdays = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	enMonths   = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// formatDeadline writes t out in lang ("fr" or "en") in loc's wall time:
// "jeudi 26 novembre 2026 à 23:59 (heure de Paris)",
// "Thursday 26 November 2026 at 23:59 (Paris time)".
func formatDeadline(t time.Time, loc *time.Location, lang string) string {
	l := t.In(loc)
	city, zone := zoneCity(loc), l.Format("MST")
	if lang == "fr" {
		day := fmt.Sprint(l.Day())
		if l.Day() == 1 {
			day = "1er"
		}
		label := zone
		if city != "" {
			label = "heure de " + city
			if startsWithVowel(city) {
				label = "heure d'" + city
			}
		}
		return fmt.Sprintf("%s %s %s %d à %s (%s)", frWeekdays[l.Weekday()], day, frMonths[l.Month()-1], l.Year(), l.Format("15:04"), label)
	}
	label := zone
	if city != "" {
		label = city + " time"
	}
	return fmt.Sprintf("%s %d %s %d at %s (%s)", enWeekdays[l.Weekday()], l.Day(), enMonths[l.Month()-1], l.Year(), l.Format("15:04"), label)
}

// zoneCity is the city of an IANA zone name ("Europe/Paris" → "Paris",
// "America/Argentina/Buenos_Aires" → "Buenos Aires"); "" for names without
// a city (UTC, Local, CET).
func zoneCity(loc *time.Location) string {
	name := loc.String()
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return strings.ReplaceAll(name[i+1:], "_", " ")
}

func startsWithVowel(s string) bool {
	for _, r := range s {
		return strings.ContainsRune("aeiouyàâéèêëîïôöùûü", unicode.ToLower(r))
	}
	return false
}
