package health

// counters is a polled check's debounce state: the State and how many
// attempts in a row passed or failed. Only one of the two runs is non-zero.
type counters struct {
	State         State
	Passes, Fails int
}

// step applies one attempt to c with rise/fall hysteresis. A pass resets
// the failure run and a failure resets the pass run, so from Unknown
// whichever threshold is reached first wins; a Passing check turns Failing
// only after fall failures in a row and a Failing one Passing only after
// rise passes in a row. rise and fall below 1 count as 1.
func step(c counters, ok bool, rise, fall int) counters {
	rise, fall = max(rise, 1), max(fall, 1)
	if ok {
		c.Fails = 0
		if c.Passes < rise { // saturate: a long healthy run never overflows
			c.Passes++
		}
		if c.Passes >= rise {
			c.State = Passing
		}
		return c
	}
	c.Passes = 0
	if c.Fails < fall {
		c.Fails++
	}
	if c.Fails >= fall {
		c.State = Failing
	}
	return c
}
