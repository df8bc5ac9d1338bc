// Package spelling measures how far apart two words are, for the
// "did you mean" of config's keys and values and of the command line's
// flags. It is a leaf that config and app share without knowing each
// other's names.
package spelling

// Distance is the Levenshtein distance between a and b: the fewest
// insertions, deletions and substitutions of bytes that make one the
// other.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
