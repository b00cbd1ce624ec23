package loadgen

import "testing"

// FuzzParseProcStat feeds arbitrary stat lines (a process chooses its own
// command name, which the line embeds) to the parser: it must not panic,
// must return zero times with an error, and never negative times.
func FuzzParseProcStat(f *testing.F) {
	f.Add("1234 (senderbound) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0 100 0 0")
	f.Add("77 (a) b (c) d) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0")
	f.Add("1 () R")
	f.Add(")(")
	f.Fuzz(func(t *testing.T, line string) {
		u, s, err := parseProcStat(line)
		if err != nil && (u != 0 || s != 0) {
			t.Fatalf("error %v with times %v %v", err, u, s)
		}
		if u < 0 || s < 0 {
			t.Fatalf("negative times %v %v", u, s)
		}
	})
}
