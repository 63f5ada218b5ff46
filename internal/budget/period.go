package budget

import "time"

// Lifetime is the period start of limits that never reset.
var Lifetime = time.Unix(0, 0).UTC()

// PeriodStart is the start of the UTC period containing now: the day, the
// week (from Monday) or the month; Lifetime for "".
func PeriodStart(reset string, now time.Time) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch reset {
	case "daily":
		return day
	case "weekly":
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case "monthly":
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return Lifetime
}

// NextReset is when the period containing now ends; false for lifetime.
func NextReset(reset string, now time.Time) (time.Time, bool) {
	start := PeriodStart(reset, now)
	switch reset {
	case "daily":
		return start.AddDate(0, 0, 1), true
	case "weekly":
		return start.AddDate(0, 0, 7), true
	case "monthly":
		return start.AddDate(0, 1, 0), true
	}
	return time.Time{}, false
}
